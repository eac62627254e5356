// The paged KV-cache ops and the batched-adapter LoRA op on the CPU against their reference
// compositions of basic ops (take + scaled_dot_product_attention; take + batched matmuls).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "wick/core/ops.h"

using namespace wick;

namespace {

double max_rel(const Tensor& got, const Tensor& want) {
  double num = max(abs(astype(got, Dtype::F64) - astype(want, Dtype::F64))).item<double>();
  double den = max(abs(astype(want, Dtype::F64))).item<double>();
  return num / std::max(den, 1e-30);
}

// Rows whose blocks are scattered over the pool in a random order.
struct Paging {
  Tensor tables;                    // [R, W] i32
  std::vector<std::vector<int32_t>> blocks;
};
Paging random_paging(int64_t rows, int64_t width, int64_t num_blocks, std::mt19937& rng) {
  std::vector<int32_t> ids(size_t(num_blocks - 1));
  std::iota(ids.begin(), ids.end(), 1);
  std::shuffle(ids.begin(), ids.end(), rng);
  WICK_CHECK(int64_t(ids.size()) >= rows * width, "test paging: too few blocks");
  Paging p;
  std::vector<int32_t> flat(size_t(rows * width));
  for (int64_t r = 0; r < rows; ++r) {
    p.blocks.emplace_back(ids.begin() + r * width, ids.begin() + (r + 1) * width);
    std::copy(p.blocks.back().begin(), p.blocks.back().end(), flat.begin() + r * width);
  }
  p.tables = Tensor::from_vector(flat, {rows, width});
  return p;
}

struct Case {
  Dtype dtype;
  int64_t hq, hkv, d, block_size;
};

class PagedAttention : public ::testing::TestWithParam<Case> {};

TEST_P(PagedAttention, MatchesTheReferenceForPrefillAndDecodeTokens) {
  Case c = GetParam();
  std::mt19937 rng(7);
  int64_t rows = 3, width = 5, num_blocks = 20;
  Paging pg = random_paging(rows, width, num_blocks, rng);
  manual_seed(3);
  Tensor cache = astype(normal({num_blocks, 2, c.hkv, c.block_size, c.d}), c.dtype);
  // Row 0: a prefill chunk at positions 3..9; row 1: one decode token at its last position; row 2:
  // the first token of a sequence.
  std::vector<int32_t> token_rows{0, 0, 0, 0, 0, 0, 0, 1, 2};
  std::vector<int32_t> positions{3, 4, 5, 6, 7, 8, 9, int32_t(width * c.block_size - 1), 0};
  int64_t n = int64_t(positions.size());
  Tensor q = astype(normal({n, c.hq, c.d}), c.dtype);
  Tensor tr = Tensor::from_vector(token_rows, {n}), pos = Tensor::from_vector(positions, {n});
  Tensor got = paged_attention(q, cache, pg.tables, tr, pos, width * c.block_size);
  Tensor want = reference::paged_attention(astype(q, Dtype::F64), astype(cache, Dtype::F64), pg.tables, tr, pos);
  ASSERT_EQ(got.shape(), (Shape{n, c.hq, c.d}));
  EXPECT_LE(max_rel(got, want), c.dtype == Dtype::F32 ? 1e-5 : 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PagedAttention,
                         ::testing::Values(Case{Dtype::F32, 4, 2, 16, 4}, Case{Dtype::F32, 7, 1, 64, 16},
                                           Case{Dtype::BF16, 14, 2, 64, 16}, Case{Dtype::F16, 8, 8, 32, 8}));

TEST(PagedKVWrite, WritesRotatedKeysAndValuesAtTheirBlocksInPlace) {
  std::mt19937 rng(1);
  int64_t heads = 2, d = 6, bs = 4, width = 3, num_blocks = 8;
  Paging pg = random_paging(2, width, num_blocks, rng);
  manual_seed(5);
  std::vector<int32_t> token_rows{0, 1, 1}, positions{5, 0, 11};
  Tensor tr = Tensor::from_vector(token_rows, {3}), pos = Tensor::from_vector(positions, {3});
  // Keys and values as strided views of one [3, 2 * heads * d] projection output, as the step has them.
  Tensor kv = normal({3, 2 * heads * d});
  Tensor k = reshape(narrow(kv, 1, 0, heads * d), {3, heads, d}), v = reshape(narrow(kv, 1, heads * d, heads * d), {3, heads, d});
  Tensor inv = rope_inv_freq(int(d), 10000.0);
  for (bool rope : {false, true}) {
    Tensor cache = normal({num_blocks, 2, heads, bs, d}).eval();
    Tensor want = reference::paged_kv_write(cache, k, v, pg.tables, tr, pos, rope ? std::optional<Tensor>(inv) : std::nullopt);
    const void* before = cache.data_ptr();
    Tensor got = paged_kv_write(std::move(cache), k, v, pg.tables, tr, pos, rope ? std::optional<Tensor>(inv) : std::nullopt);
    EXPECT_EQ(got.data_ptr(), before) << "a cache nobody else holds is written in place";
    EXPECT_LE(max_rel(got, want), 1e-6) << "rope " << rope;
  }
}

TEST(PagedKVWrite, KeepsAHeldCacheAndWritesACopy) {
  std::mt19937 rng(2);
  Paging pg = random_paging(1, 2, 4, rng);
  Tensor cache = zeros({4, 2, 1, 2, 2});
  Tensor held = cache;
  Tensor out = paged_kv_write(cache, ones({1, 1, 2}), ones({1, 1, 2}), pg.tables,
                              Tensor::from_vector(std::vector<int32_t>{0}, {1}), Tensor::from_vector(std::vector<int32_t>{1}, {1}));
  EXPECT_EQ(sum(held).item<double>(), 0.0);
  EXPECT_EQ(sum(out).item<double>(), 4.0);
}

TEST(PagedOps, BadPagingIsAnErrorNamingTheValue) {
  Tensor cache = zeros({4, 2, 1, 2, 2});
  Tensor tables = Tensor::from_vector(std::vector<int32_t>{1, 9}, {1, 2});  // block 9 does not exist
  Tensor rows = Tensor::from_vector(std::vector<int32_t>{0}, {1});
  Tensor one = ones({1, 1, 2});
  auto expect_error = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      FAIL() << "expected an error mentioning " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto at = [](int32_t p) { return Tensor::from_vector(std::vector<int32_t>{p}, {1}); };
  expect_error([&] { paged_kv_write(cache, one, one, tables, rows, at(3)).eval(); }, "block 9");
  expect_error([&] { paged_kv_write(cache, one, one, tables, rows, at(4)).eval(); }, "position 4");
  expect_error([&] { paged_attention(ones({1, 3, 2}), zeros({4, 2, 2, 2, 2}), tables, rows, at(0), 4); }, "heads");
  expect_error([&] { paged_kv_write(cache, one, one, astype(tables, Dtype::I64), rows, rows); }, "block_tables must be an i32");
  expect_error([&] { paged_kv_write(zeros({4, 1, 2, 2}), one, one, tables, rows, at(0)); }, "[num_blocks, 2, kv_heads");
}

TEST(LoraGatherAdd, MixedSlotsMatchTheReference) {
  manual_seed(11);
  int64_t n = 6, in = 12, out = 10, slots = 3, r = 5;
  for (Dtype dtype : {Dtype::F32, Dtype::BF16}) {
    Tensor base = astype(normal({n, out}), dtype), x = astype(normal({n, in}), dtype);
    Tensor a = astype(normal({slots, r, in}), dtype), b = astype(normal({slots, out, r}), dtype);
    Tensor scales = Tensor::from_vector(std::vector<float>{0.5f, 2.0f, -1.0f}, {slots});
    Tensor slot_ids = Tensor::from_vector(std::vector<int32_t>{2, -1, 0, 0, 1, -1}, {n});
    Tensor want = reference::lora_gather_add(astype(base, Dtype::F64), astype(x, Dtype::F64), slot_ids,
                                             astype(a, Dtype::F64), astype(b, Dtype::F64), scales);
    Tensor base_copy = astype(base, dtype);
    Tensor got = lora_gather_add(std::move(base_copy), x, slot_ids, a, b, scales);
    EXPECT_LE(max_rel(got, want), dtype == Dtype::F32 ? 1e-5 : 2e-2) << dtype_name(dtype);
    // Rows without a slot keep base exactly.
    EXPECT_EQ(max(abs(astype(narrow(got, 0, 1, 1), Dtype::F64) - astype(narrow(base, 0, 1, 1), Dtype::F64))).item<double>(), 0.0);
  }
}

TEST(LoraGatherAdd, ASlotPastTheStackIsAnError) {
  Tensor a = zeros({2, 1, 3}), b = zeros({2, 4, 1});
  try {
    lora_gather_add(zeros({1, 4}), zeros({1, 3}), Tensor::from_vector(std::vector<int32_t>{2}, {1}), a, b,
                    zeros({2}, Dtype::F32)).eval();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("slot 2"), std::string::npos) << e.what();
  }
}

}  // namespace
