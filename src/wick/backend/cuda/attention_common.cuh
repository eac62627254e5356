// What the attention kernels of attention.cu (CUDA cores, and the WMMA forward for head dims other
// than 64 and 128) and attention_flash.cu (mma.sync forward and backward at head dims 64 and 128)
// share: problem dimensions, the mask view, tile sizes, shared-memory helpers, and the entry points
// attention_flash.cu offers.
#pragma once

#include <mma.h>

#include <algorithm>

#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/backend/cuda/settings.h"
#include "wick/core/primitives.h"

namespace wick::cuda::attention {

constexpr int kRows = 8;   // query (or key) rows per block, one warp each
constexpr int kTile = 32;  // keys (or queries) per shared-memory tile, one per lane

struct Dims {
  int64_t B, Hq, Hkv, Tq, Tk, D, Dv, group;
  double scale;
  bool causal;
};

struct MaskView {
  const float* p = nullptr;
  int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  __device__ __forceinline__ float at(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return p ? p[b * s0 + h * s1 + i * s2 + j * s3] : 0.0f;
  }
};

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Whether query i may see key j (causal masking aligned to the end).
__device__ __forceinline__ bool visible(const Dims& d, int64_t i, int64_t j) {
  return j < d.Tk && (!d.causal || j <= i + (d.Tk - d.Tq));
}

template <class Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  WICK_CHECK(bytes <= 227 * 1024, "scaled_dot_product_attention: head dims too large for shared memory (", bytes,
             " bytes)");
  if (bytes > 48 * 1024)
    WICK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// The tensor-core kernels: a block of 4 warps takes 64 queries (or keys) and walks tiles of 64.
constexpr int kTcQueries = 64, kTcKeys = 64, kTcWarps = 4;

// Loads rows [r0, r0 + n) of a [rows_total, cols] matrix into shared memory (row pitch ld), 16
// bytes at a time (cols and ld are multiples of 16 and the source is 16-byte aligned), with zeros
// past the end.
// `pitch`: the source's row stride in elements (cols when negative; a multiple of 16 bytes).
template <typename D>
__device__ void tc_load_rows(D* dst, int ld, const D* src, int64_t r0, int n, int64_t rows_total, int64_t cols,
                             int64_t pitch = -1) {
  constexpr int kVec = 16 / sizeof(D);
  if (pitch < 0) pitch = cols;
  int64_t chunks = cols / kVec;
  for (int64_t e = threadIdx.x; e < int64_t(n) * chunks; e += blockDim.x) {
    int64_t r = e / chunks, c = (e % chunks) * kVec;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows_total) val = *reinterpret_cast<const uint4*>(src + (r0 + r) * pitch + c);
    *reinterpret_cast<uint4*>(dst + r * ld + c) = val;
  }
}

// Element strides of a [B, H, T, D] operand of the flash kernels, whose rows (D values) are dense:
// any layout of views over [B, T, H, D] projections (or a stack of q, k, v heads) with 16-byte
// aligned rows is read where it lies.
struct RowsLayout {
  int64_t b = 0, h = 0, t = 0;
  template <typename D>
  __device__ __forceinline__ D* at(D* p, int64_t bi, int64_t hi) const {
    return p + bi * b + hi * h;
  }
};
struct FlashLayouts {
  RowsLayout q, k, v, o, dout;  // o: the forward's output (written), or the backward's input
};
// The layout of t ([B, H, T, D]) when the flash kernels can read it in place: rows dense, 16-byte
// aligned (address and strides of dims of more than one element).
bool flash_rows(const Tensor& t, RowsLayout* layout);

// Whether the WMMA forward of attention.cu applies to these shapes (and 16-byte aligned data).
bool use_tensor_cores(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v);

// Whether attention_flash.cu's kernels apply: tensor cores allowed, bf16/f16, at least 64 queries,
// equal head dims of 64 or 128, q, k, v (and o, dout for the backward) as flash_rows accepts.
bool use_flash(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v);
bool use_flash_backward(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                        const Tensor& dout);
// q, k, v (and o, dout for the backward) in any layout flash_rows accepts.
// The output (q's dtype, [B, Hq, Tq, D] laid out by out_rows) and, when lse is not null, each
// row's logsumexp (f32, B * Hq * Tq).
void flash_forward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, void* out, RowsLayout out_rows,
                   float* lse, const Dims& d, int device);
// dq, dk, dv (q's dtype, contiguous). saved_lse: the forward's logsumexp, or null to compute it
// into lse; lse and delta are f32 scratch of B * Hq * Tq rows.
void flash_backward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, const Tensor& o,
                    const Tensor& dout, const float* saved_lse, float* lse, float* delta, void* dq, void* dk,
                    void* dv, const Dims& d, int device);

}  // namespace wick::cuda::attention
