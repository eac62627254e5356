// Softmax and log-softmax (over any dim; the primitives work on the last), with their fused backward.
#pragma once

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

Tensor softmax(const Tensor& x, int dim = -1);
Tensor log_softmax(const Tensor& x, int dim = -1);

namespace reference {
Tensor softmax(const Tensor& x, int dim = -1);
Tensor log_softmax(const Tensor& x, int dim = -1);
}  // namespace reference

// Softmax / log-softmax over the last dim.
class Softmax : public Primitive {
 public:
  explicit Softmax(bool log) : log_(log) {}
  const char* name() const override { return log_ ? "log_softmax" : "softmax"; }
  bool log() const { return log_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
 private:
  bool log_;
};

// The input gradient of Softmax / LogSoftmax over the last dim; inputs y (the forward output), d_out.
class SoftmaxBackward : public Primitive {
 public:
  explicit SoftmaxBackward(bool log) : log_(log) {}
  const char* name() const override { return log_ ? "log_softmax_backward" : "softmax_backward"; }
  bool log() const { return log_; }
  WICK_DECLARE_EVAL
 private:
  bool log_;
};

}  // namespace wick
