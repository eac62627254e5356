// Products of a few activation rows with a weight matrix that is read once per product (a decode
// step), over dense weights or GGML blocks dequantized in registers, and row gathers of such
// matrices (token embeddings kept quantized). Internal to the CUDA backend; every launch goes on
// the given stream and nothing allocates, synchronises or reads device memory on the host, so the
// calls can be captured into a CUDA graph.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "wick/base/ggml_quants.h"
#include "wick/core/dtype.h"

namespace wick::cuda {

// A weight matrix W [n, k] in device memory, 16-byte aligned, row-major: `type` F32, F16 or BF16
// (dense), or Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K with row r holding
// k / block_size blocks (the layout of QuantizedMatrix::blocks and of a GGUF tensor).
struct SkinnyWeight {
  const uint8_t* data = nullptr;
  ggml::GgmlType type = ggml::GgmlType::BF16;
  int64_t n = 0, k = 0;
};

// The most activation rows skinny_matmul takes. Past it, a tiled GEMM (cuBLASLt) reads the weights
// once per tile of rows at full tensor-core speed.
constexpr int64_t kSkinnyMaxRows = 64;

// Whether the skinny kernel beats cuBLASLt for a dense bf16/f16 weight [n, k] and m activation
// rows. Measured on an H200 (bench/gemv_bench.cu): the skinny kernel is as fast or faster for up to
// 8 rows of matrices up to ~8M values (o, qkv, down of a 0.5B model: 3.7 against 4.7 us for 896 x
// 896), cuBLASLt for larger matrices (9728 x 896: 7.1 against 11.8 us; 151936 x 896: 67 against
// 97 us) and at more rows (16-64 rows read the weight more than once in the skinny kernel).
// Block weights and f32 (its CUDA-core path, 8 rows a pass) always take the skinny kernel where it
// applies: no cuBLASLt path reads blocks, and f32 leaves it past 8 rows by the caller's bound.
inline bool skinny_beats_gemm(ggml::GgmlType type, int64_t m, int64_t n, int64_t k) {
  if (type != ggml::GgmlType::BF16 && type != ggml::GgmlType::F16) return true;
  return m <= 8 && n * k <= (int64_t(1) << 23);
}

// How one product is spread over the GPU; skinny_config picks it, the benchmark tries others.
struct SkinnyConfig {
  int x_tiles = 1;          // tiles of 8 activation rows per warp: 1, 2, 4 or 8 (1 with f32 activations)
  int k_warps = 1;          // warps splitting k for one tile of weight rows, summed in a fixed order
  int tiles_per_block = 1;  // tiles of weight rows per thread block
};
// Weight rows per warp: 8 with one tile of activation rows, else 16 (a full tensor-core tile).
inline int skinny_warp_rows(const SkinnyConfig& config) { return config.x_tiles == 1 ? 8 : 16; }

SkinnyConfig skinny_config(const SkinnyWeight& w, int64_t m, Dtype x_dtype, int sm_count);

// Why skinny_matmul cannot take these operands (empty when it can): a weight type without kernel,
// k not a multiple of the type's unit (32 values, 256 for K-quants), m outside 1..kSkinnyMaxRows,
// an activation dtype the weight does not pair with (dense weights need activations of their own
// dtype; blocks take bf16, f16 or f32), y neither x's dtype nor f32, or a pointer not 16-byte aligned.
std::string skinny_matmul_problem(const SkinnyWeight& w, const void* x, Dtype x_dtype, int64_t m, Dtype y_dtype);

// y[m, n] = x[m, k] @ W^T (+ bias[n]) (+ residual[m, n]), rows contiguous, accumulated in f32 and
// rounded once. bias may be nullptr; otherwise bias_dtype is bf16, f16 or f32. residual (y's dtype;
// it may be y itself) may be nullptr. Throws wick::Error naming the problem (shapes, dtypes,
// alignment) before anything is launched.
void skinny_matmul(const SkinnyWeight& w, const void* x, Dtype x_dtype, int64_t m, void* y, Dtype y_dtype,
                   const void* bias, Dtype bias_dtype, cudaStream_t stream, const void* residual = nullptr);
// The same under a given split (checked: x_tiles covers m; at most 512 threads per block, 256 with
// f32 activations or 4 or more x_tiles; at most 48 KB of shared memory per block).
void skinny_matmul(const SkinnyWeight& w, const void* x, Dtype x_dtype, int64_t m, void* y, Dtype y_dtype,
                   const void* bias, Dtype bias_dtype, cudaStream_t stream, const SkinnyConfig& config,
                   const void* residual = nullptr);

// out[t, :] = row ids[t] of W, dequantized (bit for bit as ggml::dequantize_to_f32, then rounded to
// out_dtype: bf16, f16 or f32), for t < count; ids are i32 or i64 on the device. An id outside
// [0, n) raises the device error flag (reported as a wick::Error at the next synchronisation) and
// its row comes out as zeros.
void embedding_gather(const SkinnyWeight& w, const void* ids, Dtype ids_dtype, int64_t count, void* out,
                      Dtype out_dtype, cudaStream_t stream);

}  // namespace wick::cuda
