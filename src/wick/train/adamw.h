// AdamW with PyTorch's semantics (torch.optim.AdamW): decoupled weight decay applied first,
// bias-corrected moments, per-parameter step counts.
#pragma once

#include <vector>

#include "wick/core/tensor.h"

namespace wick::train {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  explicit AdamW(AdamWOptions options) : options_(options) {}
  // Updates params in place (new tensors replace them) from grads of the same shapes; `lr`
  // overrides the options' rate (schedules).
  void step(std::vector<Tensor>& params, const std::vector<Tensor>& grads, double lr = -1);

  const std::vector<Tensor>& first_moments() const { return m_; }
  const std::vector<Tensor>& second_moments() const { return v_; }
  const std::vector<int64_t>& steps() const { return steps_; }
  // Restores the moments and step counts saved from another optimizer (checkpoint resume).
  void restore(std::vector<Tensor> m, std::vector<Tensor> v, std::vector<int64_t> steps);

 private:
  AdamWOptions options_;
  std::vector<Tensor> m_, v_;
  std::vector<int64_t> steps_;
};

}  // namespace wick::train
