// Rotary position embeddings (NeoX rotate-half or interleaved pairs, partial rotary dims).
#pragma once

#include <optional>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

struct RopeOptions {
  double theta = 10000.0;
  bool interleaved = false;  // false: rotate-half (NeoX/HF Llama); true: adjacent pairs (GPT-J)
  int rotary_dim = -1;       // -1: the whole head dim
  // Overrides theta when given (e.g. Llama 3 scaled frequencies), [rotary_dim / 2] f32.
  std::optional<Tensor> inv_freq;
};
// x[B, H, T, D]; positions[B, T] or [T] (integer), or `offset` + arange(T).
Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options = {});
Tensor rope(const Tensor& x, int64_t offset, const RopeOptions& options = {});
// The default inverse frequencies theta^(-2i/rotary_dim).
Tensor rope_inv_freq(int rotary_dim, double theta, Device device = default_device());

namespace reference {
Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options);
}  // namespace reference

// Rotary position embedding of x[B, H, T, D] (rotary part: the first `rotary_dim` features).
// Inputs: x, positions[B, T] (i32/i64), inv_freq[rotary_dim / 2] (f32).
// NeoX layout rotates (x[i], x[i + rd/2]); interleaved rotates (x[2i], x[2i+1]).
// `inverse` rotates by -angle (the vjp).
class RoPE : public Primitive {
 public:
  RoPE(bool interleaved, int rotary_dim, bool inverse) : interleaved_(interleaved), rotary_dim_(rotary_dim), inverse_(inverse) {}
  const char* name() const override { return "rope"; }
  bool interleaved() const { return interleaved_; }
  int rotary_dim() const { return rotary_dim_; }
  bool inverse() const { return inverse_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  bool interleaved_;
  int rotary_dim_;
  bool inverse_;
};

}  // namespace wick
