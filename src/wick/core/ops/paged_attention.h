// Attention over a paged KV cache: the keys and values of many sequences live in fixed-size blocks
// of one pool per layer, and each sequence's block table lists the blocks holding its positions.
// One op serves prefill chunks and decode steps alike: every new token carries its sequence (row)
// and position and attends to its row's cached positions 0..position. The ops read the rows, the
// positions and the block tables on the device, so a decode step keeps fixed shapes while sequences
// grow (it can be captured once and replayed).
#pragma once

#include <cstdint>
#include <optional>

#include "wick/core/primitive.h"
#include "wick/core/tensor.h"

namespace wick {

// The cache of one layer holds keys and values side by side: [num_blocks, 2, kv_heads, block_size,
// head_dim] (index 0 keys, 1 values). Position p of row r lives at block block_tables[r][p /
// block_size], slot p % block_size.
//
// Writes the keys k[N, kv_heads, head_dim] and values v[N, kv_heads, head_dim] of N new tokens
// (any strides) at the positions `positions[N]` of the rows `token_rows[N]` (both i32), with
// `block_tables[R, max_blocks]` (i32). With `rope_inv_freq` ([head_dim / 2] f32) the keys are rotated
// first (rotate-half RoPE at each token's position, as the rope op does). Returns the updated
// cache; pass it with std::move to have it written in place.
Tensor paged_kv_write(Tensor cache, const Tensor& k, const Tensor& v, const Tensor& block_tables,
                      const Tensor& token_rows, const Tensor& positions,
                      const std::optional<Tensor>& rope_inv_freq = std::nullopt);

// q[N, Hq, D] attends, per token n, to positions 0..positions[n] of row token_rows[n] in the paged
// cache (Hq a multiple of its kv_heads). `max_context` bounds positions[n] + 1 for every token (it
// sizes the work split; a token past it is an error, reported at the next synchronisation on
// CUDA). Returns [N, Hq, D] in q's dtype; scale defaults to 1/sqrt(D). With `rope_inv_freq`
// ([D / 2] f32) q is rotated first (rotate-half RoPE at each token's position, rounded to q's dtype
// as the rope op leaves it), so a decoder passes its unrotated queries, any view whose last dim is
// contiguous (e.g. the q columns of a fused qkv product), and no rope op runs.
Tensor paged_attention(const Tensor& q, const Tensor& cache, const Tensor& block_tables, const Tensor& token_rows,
                       const Tensor& positions, int64_t max_context, std::optional<double> scale = std::nullopt,
                       const std::optional<Tensor>& rope_inv_freq = std::nullopt);

namespace reference {
// The same attention by gathering each token's context out of the cache with take() and running
// scaled_dot_product_attention on it (one token at a time): the oracle of the fused kernels.
Tensor paged_attention(const Tensor& q, const Tensor& cache, const Tensor& block_tables, const Tensor& token_rows,
                       const Tensor& positions, std::optional<double> scale = std::nullopt,
                       const std::optional<Tensor>& rope_inv_freq = std::nullopt);
// The cache after the write, by scattering rope(k) and v with slice_update one token at a time.
Tensor paged_kv_write(const Tensor& cache, const Tensor& k, const Tensor& v, const Tensor& block_tables,
                      const Tensor& token_rows, const Tensor& positions, const std::optional<Tensor>& rope_inv_freq);
}  // namespace reference

// ---------------------------------------------------------------- primitives
// Inputs: cache, k, v, block_tables, token_rows, positions[, rope_inv_freq]. The output takes over
// the cache's buffer when nothing else holds it (can_overwrite), else it is a written copy.
class PagedKVWrite : public Primitive {
 public:
  explicit PagedKVWrite(bool rope) : rope_(rope) {}
  const char* name() const override { return "paged_kv_write"; }
  int in_place_input() const override { return 0; }
  bool rope() const { return rope_; }
  WICK_DECLARE_EVAL
 private:
  bool rope_;
};

// Inputs: q, cache, block_tables, token_rows, positions[, rope_inv_freq].
class PagedAttention : public Primitive {
 public:
  PagedAttention(double scale, int64_t max_context, bool rope)
      : scale_(scale), max_context_(max_context), rope_(rope) {}
  const char* name() const override { return "paged_attention"; }
  double scale() const { return scale_; }
  int64_t max_context() const { return max_context_; }
  bool rope() const { return rope_; }
  WICK_DECLARE_EVAL
 private:
  double scale_;
  int64_t max_context_;
  bool rope_;
};

}  // namespace wick
