// What the host side of the skinny products needs from the kernels without compiling them: the
// kernel parameters, the shared-memory geometry of each weight format, the format dispatch, and the
// per-format launchers (explicitly instantiated in gemv_dense.cu, gemv_q32.cu and gemv_kquant.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "wick/backend/cuda/gemv.h"
#include "wick/backend/cuda/gemv_decode.cuh"
#include "wick/base/error.h"

namespace wick::cuda::gemv {

// Threads per block at most: 512 for the decode shapes (up to 2 tiles of 8 activation rows), 256
// where each lane keeps more sums (f32 activations: 8 rows each; 4 or 8 tiles), which leaves ptxas
// up to 255 registers instead of 128 and no reason to spill.
constexpr int max_threads(bool f32_activations, int x_tiles) { return f32_activations || x_tiles >= 4 ? 256 : 512; }

struct SkinnyParams {
  const uint8_t* w;  // W [n, row_bytes], 16-byte aligned
  int64_t row_bytes;
  int n, k, units;  // units: k / the format's unit (32 or 256 values)
  const void* x;    // [m, k], 16-byte aligned
  int m;            // activation rows of this launch (at most 8 * x_tiles)
  void* y;          // [m, n]
  Dtype y_dtype;
  const void* bias;  // [n] or nullptr
  Dtype bias_dtype;
  const void* residual;  // [m, n] of y_dtype, added before the one rounding, or nullptr
  int k_warps, tiles_per_block;
};

// ---- shared-memory geometry (host and device)

template <class Dec>
constexpr bool is_dense() {
  return !requires { Dec::kZeroPoint; };
}
// Units one warp holds per stage: about 128-256 bytes of each of its rows.
template <class Dec>
constexpr int chunk_units(int warp_rows) {
  int u = Dec::kChunkUnits * 8 / warp_rows;
  return u < 1 ? 1 : u;
}
// 16-byte slots per staged row: the chunk's bytes plus up to 15 before them (the copy starts at the
// 16-byte boundary below the first byte), rounded up to an odd count so that the 8 rows a warp
// decodes at once start in different shared-memory banks.
template <class Dec>
constexpr int stage_stride(int warp_rows) {
  int slots = (15 + chunk_units<Dec>(warp_rows) * Dec::kUnitBytes + 15) / 16;
  return (slots | 1) * 16;
}
template <class Dec>
constexpr int stage_bytes_per_warp(int warp_rows) {
  if constexpr (is_dense<Dec>())
    return 0;
  else
    return 2 * warp_rows * stage_stride<Dec>(warp_rows);
}
constexpr int reduce_bytes_per_warp(int x_tiles) { return x_tiles * 4 * 32 * int(sizeof(float)); }

// One 16-byte copy into a warp's stage: copy v (of warp_rows x stage_stride / 16) of units
// [u0, u0 + count) of the tile starting at weight row row0. Row r of the tile goes to stage row r;
// its bytes start (offset % 16) into it (stage_delta), as the copy starts at the 16-byte boundary
// below. Rows past n repeat the last row (their results are never stored).
struct StageCopy {
  int row, slot;  // stage row and 16-byte slot within it
  int64_t src;    // byte offset in W of the (16-byte aligned) source
  int bytes;      // bytes to read, 1..16, the rest of the slot zero-filled; 0: none (past the chunk)
};
template <class Dec, int WR>
WICK_HD StageCopy stage_copy(int v, int64_t row0, int64_t n, int64_t row_bytes, int u0, int count) {
  constexpr int kSlots = stage_stride<Dec>(WR) / 16;
  StageCopy c;
  c.row = v / kSlots;
  c.slot = v - c.row * kSlots;
  const int64_t row = row0 + c.row < n ? row0 + c.row : n - 1;
  const int64_t begin = row * row_bytes + int64_t(u0) * Dec::kUnitBytes;
  const int64_t end = begin + int64_t(count) * Dec::kUnitBytes, total = n * row_bytes;
  c.src = (begin & ~int64_t(15)) + 16 * c.slot;
  c.bytes = c.src >= end ? 0 : total - c.src < 16 ? int(total - c.src) : 16;  // never past the matrix's end
  return c;
}
template <class Dec>
WICK_HD int stage_delta(int64_t row, int64_t row_bytes, int u0) {
  return int((row * row_bytes + int64_t(u0) * Dec::kUnitBytes) & 15);
}

// Dynamic shared memory of one block under `config`: each warp's two stages, then (when k is
// split) each warp's partial sums.
template <class Dec>
int skinny_smem_bytes(const SkinnyConfig& config) {
  int warps = config.k_warps * config.tiles_per_block;
  return warps * (stage_bytes_per_warp<Dec>(skinny_warp_rows(config)) +
                  (config.k_warps > 1 ? reduce_bytes_per_warp(config.x_tiles) : 0));
}

// Calls f.template operator()<Dec, T>() with the decoder of `type` and, for dense types, the element
// type T (uint8_t for blocks).
template <class F>
decltype(auto) with_format(ggml::GgmlType type, F&& f) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::BF16: return f.template operator()<DecDense<__nv_bfloat16>, __nv_bfloat16>();
    case GgmlType::F16: return f.template operator()<DecDense<__half>, __half>();
    case GgmlType::F32: return f.template operator()<DecDense<float>, float>();
    case GgmlType::Q4_0: return f.template operator()<DecQ4_0, uint8_t>();
    case GgmlType::Q4_1: return f.template operator()<DecQ4_1, uint8_t>();
    case GgmlType::Q5_0: return f.template operator()<DecQ5_0, uint8_t>();
    case GgmlType::Q5_1: return f.template operator()<DecQ5_1, uint8_t>();
    case GgmlType::Q8_0: return f.template operator()<DecQ8_0, uint8_t>();
    case GgmlType::Q2_K: return f.template operator()<DecQ2_K, uint8_t>();
    case GgmlType::Q3_K: return f.template operator()<DecQ3_K, uint8_t>();
    case GgmlType::Q4_K: return f.template operator()<DecQ4_K, uint8_t>();
    case GgmlType::Q5_K: return f.template operator()<DecQ5_K, uint8_t>();
    case GgmlType::Q6_K: return f.template operator()<DecQ6_K, uint8_t>();
    default: break;
  }
  fail("skinny products: no kernel reads GGML type ", ggml::ggml_type_name(type),
       " (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
}

// Queues the product for format <Dec, T> with activations of x_dtype (a dtype the format pairs
// with) under a checked config.
template <class Dec, typename T>
void launch_format(Dtype x_dtype, const SkinnyParams& p, const SkinnyConfig& config, cudaStream_t stream);

}  // namespace wick::cuda::gemv
