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

  // ---- Outputs. A node has num_outputs() outputs, its "siblings" (Tensor::make_siblings): they
  // share the node (primitive and inputs), and evaluating any of them runs the primitive once and
  // fills them all. The engine runs every node through eval_outputs_cpu / eval_outputs_cuda and
  // differentiates it through vjp_outputs; their defaults forward to the single-output eval_cpu /
  // eval_cuda / vjp below, which are all a primitive of one output writes. A primitive of several
  // outputs overrides the *_outputs versions instead (WICK_DECLARE_EVAL_OUTPUTS) and leaves the
  // single-output ones to their defaults, which fail.
  virtual int num_outputs() const { return 1; }

  // Fill `out` (shape, dtype and device already set) from evaluated inputs. Most primitives call
  // out.allocate() and write contiguous data; views call out.set_data() with the input's storage.
  virtual void eval_cpu(const std::vector<Tensor>& inputs, const Tensor& out);
  virtual void eval_cuda(const std::vector<Tensor>& inputs, const Tensor& out);

  // Fill every output, as eval_cpu / eval_cuda fill one. `outputs` has num_outputs() tensors, all
  // defined: an output that nobody holds any more is a temporary of its shape, freed after the
  // evaluation.
  virtual void eval_outputs_cpu(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs);
  virtual void eval_outputs_cuda(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs);

  // Cotangents of inputs[argnums[i]] given the cotangent of the output, written with ordinary ops
  // (so they run on any device and can reuse `out`, the forward output). An undefined result
  // means a zero gradient.
  virtual std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& cotangent,
                                  const std::vector<int>& argnums, const Tensor& out);

  // The same for a node of several outputs: cotangents[i] is that of outputs[i], undefined when no
  // gradient reaches that output (read it as zero); outputs[i] is undefined when nobody holds that
  // output any more (it then has no cotangent either). At least one cotangent is defined.
  virtual std::vector<Tensor> vjp_outputs(const std::vector<Tensor>& inputs, const std::vector<Tensor>& cotangents,
                                          const std::vector<int>& argnums, const std::vector<Tensor>& outputs);

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

  // Whether vjp() reads `out`, the forward output (vjp_outputs: any of the outputs). A primitive whose gradient reads only its
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

// The same for a primitive of several outputs (num_outputs() > 1).
#define WICK_DECLARE_EVAL_OUTPUTS                                                                          \
  void eval_outputs_cpu(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) override; \
  void eval_outputs_cuda(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) override;

}  // namespace wick
