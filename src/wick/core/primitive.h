// Primitive: one computation of the graph. A primitive declares, in one place, its CPU and CUDA
// evaluation and its vector-Jacobian product. It only computes: shapes and dtypes were checked by
// the public op (ops.h) that created the node.
#pragma once

#include <string>
#include <vector>

#include "wick/core/tensor.h"

namespace wick {

class Primitive {
 public:
  virtual ~Primitive() = default;
  virtual const char* name() const = 0;

  // Fill `out` (shape, dtype and device already set) from evaluated inputs. Most primitives call
  // out.allocate() and write contiguous data; views call out.set_data() with the input's storage.
  virtual void eval_cpu(const std::vector<Tensor>& inputs, const Tensor& out) = 0;
  virtual void eval_cuda(const std::vector<Tensor>& inputs, const Tensor& out) = 0;

  // Cotangents of inputs[argnums[i]] given the cotangent of the output, written with ordinary ops
  // (so they run on any device and can reuse `out`, the forward output).
  virtual std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& cotangent,
                                  const std::vector<int>& argnums, const Tensor& out);

  // ---- Declared properties. Fusion and buffer reuse ask these instead of naming concrete
  // primitives, so a new primitive changes their behaviour only by what it declares. Each default
  // is the safe answer: a primitive that declares nothing is never fused, never writes into an
  // input, and its output is never overwritten while a gradient may still read it.

  // How the primitive appears as one instruction of a fused elementwise kernel (fusion.h); kind
  // None (the default) keeps it out of fused chains.
  struct FusedOp {
    enum Kind : uint8_t { None, Unary, Arith, SwiGLU } kind = None;
    uint8_t id = 0;
  };
  virtual FusedOp fused_op() const { return {}; }

  // Whether vjp() reads `out`, the forward output. A primitive whose gradient reads only its
  // inputs (a product, a sum, a norm recomputing from x) declares false: its output's memory may
  // then be overwritten once the forward has run (lora_add adds its update into a projection's
  // output, see can_overwrite in tensor.h) without changing any gradient.
  virtual bool vjp_reads_output() const { return true; }

  // The input whose memory the output may take over, writing its result there instead of into
  // fresh memory; -1 (the default) when the output is always fresh memory or a view. The backends
  // of such a primitive call take_over_input().
  virtual int in_place_input() const { return -1; }

  // For eval_cpu / eval_cuda of a primitive with an in_place_input(): gives `out` that input's
  // memory when can_overwrite(input) allows it (nothing else holds or views it, and no gradient
  // reads its values) and returns true; otherwise returns false and leaves `out` without data, for
  // the backend to allocate and fill with a copy of the input.
  bool take_over_input(const std::vector<Tensor>& inputs, const Tensor& out) const;
};

// Declares eval_cpu and eval_cuda in a primitive class; the definitions live in the backends.
#define WICK_DECLARE_EVAL                                                                 \
  void eval_cpu(const std::vector<Tensor>& inputs, const Tensor& out) override;          \
  void eval_cuda(const std::vector<Tensor>& inputs, const Tensor& out) override;

}  // namespace wick
