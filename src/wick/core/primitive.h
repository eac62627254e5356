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

  // An elementwise primitive can be fused with its neighbours by the lazy graph (fusion.h).
  virtual bool is_elementwise() const { return false; }
  // How the primitive appears as one instruction of a fused kernel; kind None if it cannot.
  struct FusedOp {
    enum Kind : uint8_t { None, Unary, Arith, SwiGLU } kind = None;
    uint8_t id = 0;
  };
  virtual FusedOp fused_op() const { return {}; }
};

// Declares eval_cpu and eval_cuda in a primitive class; the definitions live in the backends.
#define WICK_DECLARE_EVAL                                                                 \
  void eval_cpu(const std::vector<Tensor>& inputs, const Tensor& out) override;          \
  void eval_cuda(const std::vector<Tensor>& inputs, const Tensor& out) override;

}  // namespace wick
