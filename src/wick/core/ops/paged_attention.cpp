// The paged-attention ops: argument checks, node creation, and the reference compositions.
#include "wick/core/ops/paged_attention.h"

#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

void check_i32(const char* op, const char* what, const Tensor& t, int ndim) {
  WICK_CHECK(t.dtype() == Dtype::I32 && t.ndim() == ndim, op, ": ", what, " must be an i32 tensor of ", ndim,
             " dims, got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
}

// Checks the cache, the block tables and the per-token rows and positions; returns the token count.
int64_t check_paging(const char* op, const Tensor& cache, const Tensor& block_tables, const Tensor& token_rows,
                     const Tensor& positions) {
  WICK_CHECK(cache.ndim() == 5 && cache.shape(1) == 2, op,
             ": the cache must be [num_blocks, 2, kv_heads, block_size, head_dim], got ", shape_str(cache.shape()));
  WICK_CHECK(is_floating(cache.dtype()), op, ": the cache must be floating, got ", dtype_name(cache.dtype()));
  check_i32(op, "block_tables", block_tables, 2);
  check_i32(op, "token_rows", token_rows, 1);
  check_i32(op, "positions", positions, 1);
  WICK_CHECK(token_rows.shape(0) == positions.shape(0), op, ": token_rows ", shape_str(token_rows.shape()),
             " and positions ", shape_str(positions.shape()), " must have one entry per token");
  for (const Tensor* t : {&block_tables, &token_rows, &positions})
    WICK_CHECK(t->device() == cache.device(), op, ": tensors are on different devices (", cache.device().str(), " and ",
               t->device().str(), ")");
  return positions.shape(0);
}

void check_rows(const char* op, const char* what, const Tensor& t, int64_t n, const Tensor& cache) {
  int64_t heads = cache.shape(2), d = cache.shape(4);
  WICK_CHECK(t.ndim() == 3 && t.shape(0) == n && t.shape(1) == heads && t.shape(2) == d, op, ": ", what,
             " must be [tokens=", n, ", kv_heads=", heads, ", head_dim=", d, "], got ", shape_str(t.shape()));
  WICK_CHECK(t.dtype() == cache.dtype() && t.device() == cache.device(), op, ": ", what, " is ", dtype_name(t.dtype()),
             " on ", t.device().str(), " but the cache is ", dtype_name(cache.dtype()), " on ", cache.device().str());
}

void check_inv_freq(const char* op, const Tensor& inv, int64_t d, Device device) {
  WICK_CHECK(d % 2 == 0 && inv.dtype() == Dtype::F32 && inv.shape() == Shape{d / 2} && inv.device() == device, op,
             ": rope_inv_freq must be f32 [", d / 2, "] on ", device.str(), ", got ", dtype_name(inv.dtype()), " ",
             shape_str(inv.shape()), " on ", inv.device().str());
}

// x[N, H, D] (queries or keys) rotated at each token's position by the rope op, or x itself.
Tensor rotated(const Tensor& q, const std::vector<int32_t>& pos, const std::optional<Tensor>& inv) {
  if (!inv) return q;
  int64_t n = q.shape(0), h = q.shape(1), d = q.shape(2);
  RopeOptions o;
  o.inv_freq = *inv;
  std::vector<int64_t> p64(pos.begin(), pos.end());
  return reshape(wick::rope(reshape(contiguous(q), {n, h, 1, d}), Tensor::from_vector(p64, {n, 1}, q.device()), o),
                 {n, h, d});
}

}  // namespace

Tensor paged_kv_write(Tensor cache, const Tensor& k, const Tensor& v, const Tensor& block_tables,
                      const Tensor& token_rows, const Tensor& positions, const std::optional<Tensor>& rope_inv_freq) {
  const char* op = "paged_kv_write";
  int64_t n = check_paging(op, cache, block_tables, token_rows, positions);
  check_rows(op, "k", k, n, cache);
  check_rows(op, "v", v, n, cache);
  std::vector<Tensor> inputs{std::move(cache), k, v, block_tables, token_rows, positions};
  if (rope_inv_freq) {
    check_inv_freq(op, *rope_inv_freq, inputs[0].shape(4), inputs[0].device());
    inputs.push_back(contiguous(*rope_inv_freq));
  }
  Shape shape = inputs[0].shape();
  Dtype dtype = inputs[0].dtype();
  Device device = inputs[0].device();
  return Tensor::make(shape, dtype, device, std::make_shared<PagedKVWrite>(rope_inv_freq.has_value()),
                      std::move(inputs));
}

Tensor paged_attention(const Tensor& q, const Tensor& cache, const Tensor& block_tables, const Tensor& token_rows,
                       const Tensor& positions, int64_t max_context, std::optional<double> scale,
                       const std::optional<Tensor>& rope_inv_freq) {
  const char* op = "paged_attention";
  int64_t n = check_paging(op, cache, block_tables, token_rows, positions);
  WICK_CHECK(q.dtype() == cache.dtype(), op, ": q is ", dtype_name(q.dtype()), " but the cache is ",
             dtype_name(cache.dtype()));
  WICK_CHECK(q.device() == cache.device(), op, ": q is on ", q.device().str(), ", the cache on ", cache.device().str());
  int64_t hkv = cache.shape(2), d = cache.shape(4);
  WICK_CHECK(q.ndim() == 3 && q.shape(0) == n && q.shape(2) == d && q.shape(1) % hkv == 0, op,
             ": q must be [tokens=", n, ", heads (a multiple of ", hkv, "), head_dim=", d, "], got ",
             shape_str(q.shape()));
  WICK_CHECK(d <= 256, op, ": head_dim ", d, " is over the supported 256");
  int64_t capacity = block_tables.shape(1) * cache.shape(3);
  WICK_CHECK(max_context > 0 && max_context <= capacity, op, ": max_context ", max_context, " must be in 1..",
             capacity, " (block table width x block size)");
  double s = scale ? *scale : 1.0 / std::sqrt(double(d));
  std::vector<Tensor> inputs{q, cache, block_tables, token_rows, positions};
  if (rope_inv_freq) {
    check_inv_freq(op, *rope_inv_freq, d, cache.device());
    inputs.push_back(contiguous(*rope_inv_freq));
  }
  return Tensor::make(q.shape(), q.dtype(), q.device(),
                      std::make_shared<PagedAttention>(s, max_context, rope_inv_freq.has_value()), std::move(inputs));
}

namespace reference {

namespace {
// The flat slot (block * block_size + offset) of position p of token t's row.
int64_t slot_of(const std::vector<int32_t>& tables, int64_t width, int64_t bs, int32_t row, int64_t p) {
  return int64_t(tables[row * width + p / bs]) * bs + p % bs;
}
}  // namespace

Tensor paged_attention(const Tensor& q_in, const Tensor& cache, const Tensor& block_tables, const Tensor& token_rows,
                       const Tensor& positions, std::optional<double> scale, const std::optional<Tensor>& rope_inv_freq) {
  int64_t n = q_in.shape(0), hkv = cache.shape(2), bs = cache.shape(3), d = cache.shape(4);
  std::vector<int32_t> rows = token_rows.to_vector<int32_t>(), pos = positions.to_vector<int32_t>();
  Tensor q = rotated(q_in, pos, rope_inv_freq);
  std::vector<int32_t> tables = block_tables.to_vector<int32_t>();
  int64_t width = block_tables.shape(1);
  // [blocks, Hkv, bs, D] -> [blocks * bs, Hkv, D], for keys and for values.
  auto flat = [&](int which) { return reshape(transpose(squeeze(narrow(cache, 1, which, 1), 1), 1, 2), {-1, hkv, d}); };
  Tensor keys = flat(0), values = flat(1);
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < n; ++t) {
    int64_t len = int64_t(pos[t]) + 1;
    std::vector<int64_t> slots(static_cast<size_t>(len));
    for (int64_t p = 0; p < len; ++p) slots[p] = slot_of(tables, width, bs, rows[t], p);
    Tensor index = Tensor::from_vector(slots, {len}, q.device());
    auto context = [&](const Tensor& all) { return unsqueeze(transpose(take(all, index, 0), 0, 1), 0); };  // [1, Hkv, len, D]
    Tensor qt = reshape(narrow(q, 0, t, 1), {1, q.shape(1), 1, d});
    Tensor a = wick::scaled_dot_product_attention(qt, context(keys), context(values), std::nullopt, false, scale);
    outs.push_back(reshape(a, {1, q.shape(1), d}));
  }
  return concat(outs, 0);
}

Tensor paged_kv_write(const Tensor& cache, const Tensor& k, const Tensor& v, const Tensor& block_tables,
                      const Tensor& token_rows, const Tensor& positions, const std::optional<Tensor>& rope_inv_freq) {
  int64_t n = k.shape(0), hkv = cache.shape(2), bs = cache.shape(3), d = cache.shape(4);
  std::vector<int32_t> rows = token_rows.to_vector<int32_t>(), pos = positions.to_vector<int32_t>();
  std::vector<int32_t> tables = block_tables.to_vector<int32_t>();
  int64_t width = block_tables.shape(1);
  Tensor keys = rotated(k, pos, rope_inv_freq);
  Tensor out = contiguous(cache);
  for (int64_t t = 0; t < n; ++t) {
    int64_t slot = slot_of(tables, width, bs, rows[t], pos[t]);
    for (int which = 0; which < 2; ++which) {
      Tensor src = reshape(narrow(which == 0 ? keys : v, 0, t, 1), {1, 1, hkv, 1, d});
      out = slice_update(std::move(out), src, {slot / bs, which, 0, slot % bs, 0});
    }
  }
  return out;
}

}  // namespace reference

}  // namespace wick
