// The skinny-product kernel y[m, n] = x[m, k] @ W[n, k]^T (+ bias) for a few activation rows,
// templated on the weight format (a decoder of gemv_decode.cuh or DecDense). Included by the .cu
// files that instantiate it for each format family.
//
// Work split: a warp owns a tile of 8 or 16 weight rows and a range of k; `k_warps` warps of a
// block share one tile (each its own k range) and their partial sums are added in shared memory in
// a fixed order, so results do not depend on timing. With bf16/f16 activations the products run
// on tensor cores (mma.m16n8k16, weights as the 16-row A operand, 8 activation rows per B tile);
// quantized weights enter as their integer quants (exact in bf16/f16) and each group's scale and
// min are applied to the f32 partial sums, the min through sum(x) from a product with ones. f32
// activations take a CUDA-core path with the same decoders and the same lane layout.
//
// Quantized blocks are often only 2-byte aligned, and lanes reading a few bytes from 8 rows at once
// would each touch a different cache line; so each warp copies its rows' bytes into shared memory
// with 16-byte cp.async (two stages: the next chunk loads while this one is decoded) and decodes
// from there. Dense rows are read with 16-byte loads straight into registers.
//
// Launched as a programmatic dependent (runtime.h): each warp issues the loads of its first weight
// chunk, then waits for the kernel before it, so the first DRAM round trip overlaps that kernel's
// tail instead of following it.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "wick/backend/cuda/gemv_launch.cuh"
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/backend/cuda/runtime.h"

namespace wick::cuda::gemv {

// ---- PTX wrappers

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// d += a (16x16, rows g and g+8) * b (16x8).
template <Operand O>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (O == Operand::BF16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

template <typename X>
constexpr Operand operand_of() {
  return std::is_same_v<X, __nv_bfloat16> ? Operand::BF16 : Operand::F16;
}

// B operand of one step for activation row `xrow` (k values kk..kk+31 in the format's lane
// layout): b[half][0] holds the pair of k slots (2t, 2t+1), b[half][1] the pair (2t+8, 2t+9).
template <SlotLayout L, typename X>
__device__ __forceinline__ void load_b(const X* xrow, int64_t kk, int t, uint32_t (&b)[2][2]) {
  if constexpr (L == SlotLayout::Contig8) {
    uint4 v = __ldg(reinterpret_cast<const uint4*>(xrow + kk + 8 * t));
    b[0][0] = v.x, b[0][1] = v.y, b[1][0] = v.z, b[1][1] = v.w;
  } else {
    uint2 v0 = __ldg(reinterpret_cast<const uint2*>(xrow + kk + 4 * t));
    uint2 v1 = __ldg(reinterpret_cast<const uint2*>(xrow + kk + 16 + 4 * t));
    b[0][0] = v0.x, b[0][1] = v0.y, b[1][0] = v1.x, b[1][1] = v1.y;
  }
}

// The 8 f32 activations of row `xrow` that lane t pairs with its weights in a step: [4 * half + e].
template <SlotLayout L>
__device__ __forceinline__ void load_x8(const float* xrow, int64_t kk, int t, float (&xs)[8]) {
  float4 v0 = __ldg(reinterpret_cast<const float4*>(xrow + kk + slot_start<L>(t, 0)));
  float4 v1 = __ldg(reinterpret_cast<const float4*>(xrow + kk + slot_start<L>(t, 1)));
  xs[0] = v0.x, xs[1] = v0.y, xs[2] = v0.z, xs[3] = v0.w, xs[4] = v1.x, xs[5] = v1.y, xs[6] = v1.z, xs[7] = v1.w;
}

// ---- one unit of k through the tensor cores

template <Operand O>
constexpr uint32_t kOnes = O == Operand::BF16 ? 0x3F803F80u : 0x3C003C00u;

// acc[j][e] += scale(row) * p[e] - min(row) * sx[e] for the C layout (e < 2: row g, else g + 8).
template <int WR>
__device__ __forceinline__ void add_scaled(float (&acc)[4], const float (&p)[4], float s0, float s1) {
  acc[0] = fmaf(s0, p[0], acc[0]);
  acc[1] = fmaf(s0, p[1], acc[1]);
  if constexpr (WR == 16) {
    acc[2] = fmaf(s1, p[2], acc[2]);
    acc[3] = fmaf(s1, p[3], acc[3]);
  }
}

template <class Dec, typename X, int XT, int WR>
__device__ __forceinline__ void tc_quant_unit(const uint8_t* const* unit, const X* x, int k, int m, int64_t kk0, int g,
                                              int t, float (&acc)[XT][4]) {
  constexpr Operand O = operand_of<X>();
  constexpr uint32_t one = kOnes<O>;
  const uint32_t ones[4] = {one, one, one, one};
#pragma unroll
  for (int s = 0; s < Dec::kUnitK / 32; ++s) {
    QuantStep st[WR / 8];
    uint32_t a[2][4];
#pragma unroll
    for (int rr = 0; rr < WR / 8; ++rr) st[rr] = Dec::step(unit[rr], s, t);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      quant_pairs<Dec, O>(st[0].q[h], a[h][0], a[h][2]);
      if constexpr (WR == 16)
        quant_pairs<Dec, O>(st[WR / 16].q[h], a[h][1], a[h][3]);
      else
        a[h][1] = a[h][3] = 0;
    }
    const int64_t kk = kk0 + 32 * s;
#pragma unroll
    for (int j = 0; j < XT; ++j) {
      if (8 * j >= m) continue;  // the same for the whole warp
      uint32_t b[2][2] = {{0, 0}, {0, 0}};
      const int xr = 8 * j + g;
      if (xr < m) load_b<Dec::kLayout>(x + int64_t(xr) * k, kk, t, b);
      const float s1 = WR == 16 ? st[WR / 16].scale[0] : 0.0f;
      if constexpr (!Dec::kScalePer16) {
        float p[4] = {0, 0, 0, 0};
        mma<O>(p, a[0], b[0]);
        mma<O>(p, a[1], b[1]);
        add_scaled<WR>(acc[j], p, st[0].scale[0], s1);
        if constexpr (Dec::kHasMin) {
          float sx[4] = {0, 0, 0, 0};
          mma<O>(sx, ones, b[0]);
          mma<O>(sx, ones, b[1]);
          add_scaled<WR>(acc[j], sx, -st[0].min[0], WR == 16 ? -st[WR / 16].min[0] : 0.0f);
        }
      } else {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float p[4] = {0, 0, 0, 0};
          mma<O>(p, a[h], b[h]);
          add_scaled<WR>(acc[j], p, st[0].scale[h], WR == 16 ? st[WR / 16].scale[h] : 0.0f);
          if constexpr (Dec::kHasMin) {
            float sx[4] = {0, 0, 0, 0};
            mma<O>(sx, ones, b[h]);
            add_scaled<WR>(acc[j], sx, -st[0].min[h], WR == 16 ? -st[WR / 16].min[h] : 0.0f);
          }
        }
      }
    }
  }
}

// Dense bf16/f16 rows: raw[rr] holds k 8t..8t+7 of row g + 8rr (one 32-k unit).
template <typename X, int XT, int WR>
__device__ __forceinline__ void tc_dense_unit(const uint4 (&raw)[WR / 8], const X* x, int k, int m, int64_t kk, int g,
                                              int t, float (&acc)[XT][4]) {
  constexpr Operand O = operand_of<X>();
  const uint32_t a0[4] = {raw[0].x, WR == 16 ? raw[WR / 16].x : 0u, raw[0].y, WR == 16 ? raw[WR / 16].y : 0u};
  const uint32_t a1[4] = {raw[0].z, WR == 16 ? raw[WR / 16].z : 0u, raw[0].w, WR == 16 ? raw[WR / 16].w : 0u};
#pragma unroll
  for (int j = 0; j < XT; ++j) {
    if (8 * j >= m) continue;
    uint32_t b[2][2] = {{0, 0}, {0, 0}};
    const int xr = 8 * j + g;
    if (xr < m) load_b<SlotLayout::Contig8>(x + int64_t(xr) * k, kk, t, b);
    mma<O>(acc[j], a0, b[0]);
    mma<O>(acc[j], a1, b[1]);
  }
}

// ---- one unit of k on CUDA cores (f32 activations, 8-row tiles, up to 8 activation rows):
// acc[r] is this lane's partial sum for activation row r and weight row g.

template <class Dec>
__device__ __forceinline__ void f32_quant_unit(const uint8_t* unit, const float* x, int k, int m, int64_t kk0, int t,
                                               float (&acc)[8]) {
  // Not unrolled over the 8 steps of a super-block: unrolled, the loads of 8 steps x 8 rows of x
  // are all hoisted and need more than 255 registers.
#pragma unroll 1
  for (int s = 0; s < Dec::kUnitK / 32; ++s) {
    const QuantStep st = Dec::step(unit, s, t);
    float wv[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) wv[i] = quant_value<Dec>(st.q[i / 4], i % 4);
    const int64_t kk = kk0 + 32 * s;
#pragma unroll
    for (int r = 0; r < 8; ++r) {
      if (r >= m) continue;
      float xs[8];
      load_x8<Dec::kLayout>(x + int64_t(r) * k, kk, t, xs);
      float dot[2] = {0, 0}, sx[2] = {0, 0};
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        dot[i / 4] = fmaf(wv[i], xs[i], dot[i / 4]);
        if constexpr (Dec::kHasMin) sx[i / 4] += xs[i];
      }
      if constexpr (!Dec::kScalePer16) {
        acc[r] = fmaf(st.scale[0], dot[0] + dot[1], acc[r]);
        if constexpr (Dec::kHasMin) acc[r] = fmaf(-st.min[0], sx[0] + sx[1], acc[r]);
      } else {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          acc[r] = fmaf(st.scale[h], dot[h], acc[r]);
          if constexpr (Dec::kHasMin) acc[r] = fmaf(-st.min[h], sx[h], acc[r]);
        }
      }
    }
  }
}

__device__ __forceinline__ void f32_dense_unit(const float (&wv)[8], const float* x, int k, int m, int64_t kk, int t,
                                               float (&acc)[8]) {
#pragma unroll
  for (int r = 0; r < 8; ++r) {
    if (r >= m) continue;
    float xs[8];
    load_x8<SlotLayout::Contig8>(x + int64_t(r) * k, kk, t, xs);
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[r] = fmaf(wv[i], xs[i], acc[r]);
  }
}

// Dense rows as raw registers: 16 bytes (2-byte types) or 32 bytes (f32) of k 8t..8t+7 per unit.
template <typename T>
struct DenseRaw {
  uint4 v[sizeof(T) == 4 ? 2 : 1];
};
template <typename T>
__device__ __forceinline__ DenseRaw<T> load_dense(const uint8_t* unit, int t) {
  DenseRaw<T> r;
  const uint4* p = reinterpret_cast<const uint4*>(unit + 8 * t * int(sizeof(T)));
#pragma unroll
  for (int i = 0; i < int(sizeof(r.v) / sizeof(uint4)); ++i) r.v[i] = __ldg(p + i);
  return r;
}

// ---- the warp's k range

// Rows of this lane's tile that it decodes: g and (16-row tiles) g + 8, clamped to the last row so
// a partial tile reads valid memory (its extra results are never stored).
template <int WR>
__device__ __forceinline__ void lane_rows(int64_t row0, int n, int g, int64_t (&rows)[WR / 8]) {
#pragma unroll
  for (int rr = 0; rr < WR / 8; ++rr) rows[rr] = min(row0 + g + 8 * rr, int64_t(n) - 1);
}

// Quantized weights: units [ubeg, uend) of rows row0.. through the warp's two shared-memory stages.
template <class Dec, typename X, int XT, int WR, typename Acc>
__device__ __forceinline__ void run_quant_warp(const SkinnyParams& p, int64_t row0, int ubeg, int uend, uint8_t* stage,
                                               int lane, Acc& acc) {
  constexpr int kChunk = chunk_units<Dec>(WR), kStride = stage_stride<Dec>(WR), kSlots = kStride / 16;
  constexpr int kStageBytes = WR * kStride;
  const int g = lane >> 2, t = lane & 3;
  const X* x = static_cast<const X*>(p.x);
  int64_t rows[WR / 8];
  lane_rows<WR>(row0, p.n, g, rows);

  // Copies units [u0, u0 + count) of every row of the tile into stage `buf` (see stage_copy).
  auto issue = [&](int u0, int count, int buf) {
#pragma unroll
    for (int i = 0; i < (WR * kSlots + 31) / 32; ++i) {
      const int v = lane + 32 * i;
      if (v < WR * kSlots) {
        const StageCopy copy = stage_copy<Dec, WR>(v, row0, p.n, p.row_bytes, u0, count);
        if (copy.bytes > 0)
          cp_async16(stage + buf * kStageBytes + copy.row * kStride + 16 * copy.slot, p.w + copy.src, copy.bytes);
      }
    }
    cp_async_commit();
  };

  const int nchunks = (uend - ubeg + kChunk - 1) / kChunk;
  if (nchunks > 0) issue(ubeg, min(kChunk, uend - ubeg), 0);
  grid_dependency_wait();  // x is the previous kernel's output
  for (int c = 0; c < nchunks; ++c) {
    const int u0 = ubeg + c * kChunk, count = min(kChunk, uend - u0);
    if (c + 1 < nchunks) {
      issue(u0 + kChunk, min(kChunk, uend - u0 - kChunk), (c + 1) & 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncwarp();  // every lane's copies of chunk c are complete and visible
    const uint8_t* unit[WR / 8];
#pragma unroll
    for (int rr = 0; rr < WR / 8; ++rr) {
      unit[rr] = stage + (c & 1) * kStageBytes + (g + 8 * rr) * kStride + stage_delta<Dec>(rows[rr], p.row_bytes, u0);
    }
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      if (i < count) {
        const int64_t kk = int64_t(u0 + i) * Dec::kUnitK;
        if constexpr (std::is_same_v<X, float>) {
          f32_quant_unit<Dec>(unit[0], x, p.k, p.m, kk, t, acc);
        } else {
          tc_quant_unit<Dec, X, XT, WR>(unit, x, p.k, p.m, kk, g, t, acc);
        }
      }
#pragma unroll
      for (int rr = 0; rr < WR / 8; ++rr) unit[rr] += Dec::kUnitBytes;
    }
    __syncwarp();  // done reading stage c & 1 before chunk c + 2 overwrites it
  }
}

// Dense weights of T: units of 32 k loaded straight into registers, a chunk at a time.
template <class Dec, typename T, typename X, int XT, int WR, typename Acc>
__device__ __forceinline__ void run_dense_warp(const SkinnyParams& p, int64_t row0, int ubeg, int uend, int lane,
                                               Acc& acc) {
  constexpr int kChunk = chunk_units<Dec>(WR);
  const int g = lane >> 2, t = lane & 3;
  const X* x = static_cast<const X*>(p.x);
  int64_t rows[WR / 8];
  lane_rows<WR>(row0, p.n, g, rows);
  for (int u0 = ubeg; u0 < uend; u0 += kChunk) {
    const int count = min(kChunk, uend - u0);
    DenseRaw<T> raw[kChunk][WR / 8];
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      if (i < count) {
#pragma unroll
        for (int rr = 0; rr < WR / 8; ++rr)
          raw[i][rr] = load_dense<T>(p.w + rows[rr] * p.row_bytes + int64_t(u0 + i) * Dec::kUnitBytes, t);
      }
    }
    if (u0 == ubeg) grid_dependency_wait();  // x is the previous kernel's output
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      if (i < count) {
        const int64_t kk = int64_t(u0 + i) * 32;
        if constexpr (std::is_same_v<X, float>) {
          float wv[8];
          if constexpr (std::is_same_v<T, float>) {
            const float4 lo = reinterpret_cast<const float4&>(raw[i][0].v[0]);
            const float4 hi = reinterpret_cast<const float4&>(raw[i][0].v[1]);
            wv[0] = lo.x, wv[1] = lo.y, wv[2] = lo.z, wv[3] = lo.w, wv[4] = hi.x, wv[5] = hi.y, wv[6] = hi.z,
            wv[7] = hi.w;
          } else {
            static_assert(std::is_same_v<T, float>, "f32 activations take f32 dense weights");
          }
          f32_dense_unit(wv, x, p.k, p.m, kk, t, acc);
        } else {
          static_assert(sizeof(T) == 2, "tensor-core dense weights are bf16 or f16");
          uint4 r[WR / 8];
#pragma unroll
          for (int rr = 0; rr < WR / 8; ++rr) r[rr] = raw[i][rr].v[0];
          tc_dense_unit<X, XT, WR>(r, x, p.k, p.m, kk, g, t, acc);
        }
      }
    }
  }
}

// ---- the kernel

__device__ __forceinline__ float load_as_float(const void* p, Dtype dtype, int64_t i) {
  if (dtype == Dtype::BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  if (dtype == Dtype::F16) return __half2float(static_cast<const __half*>(p)[i]);
  return static_cast<const float*>(p)[i];
}
__device__ __forceinline__ void store_from_float(void* p, Dtype dtype, int64_t i, float v) {
  if (dtype == Dtype::BF16)
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  else if (dtype == Dtype::F16)
    static_cast<__half*>(p)[i] = __float2half_rn(v);
  else
    static_cast<float*>(p)[i] = v;
}

// Dec: the weight format; T: dense element type (unused for quantized formats); X: activation type;
// XT: tiles of 8 activation rows; WR: weight rows per warp (8 or 16).
template <class Dec, typename T, typename X, int XT, int WR>
__global__ void __launch_bounds__(max_threads(std::is_same_v<X, float>, XT), 1) skinny_kernel(const SkinnyParams p) {
  static_assert(WR == 8 || WR == 16, "a warp's tile has 8 or 16 weight rows");
  static_assert(!std::is_same_v<X, float> || (XT == 1 && WR == 8), "f32 activations use 8-row tiles, 8 rows of x");
  extern __shared__ __align__(16) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int kw = warp % p.k_warps;
  const int64_t row0 = (int64_t(blockIdx.x) * p.tiles_per_block + warp / p.k_warps) * WR;
  const bool active = row0 < p.n;  // a block's last tiles may lie past n; their warps still meet the barrier
  const int ubeg = int(int64_t(kw) * p.units / p.k_warps), uend = int(int64_t(kw + 1) * p.units / p.k_warps);
  launch_dependents();

  // c[j][e]: the C-fragment layout of mma (e < 2: weight row g, else g + 8; activation row 8j + 2t + e % 2).
  float c[XT][4];
#pragma unroll
  for (int j = 0; j < XT; ++j) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.0f;

  if constexpr (std::is_same_v<X, float>) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (active) {
      if constexpr (is_dense<Dec>())
        run_dense_warp<Dec, T, X, XT, WR>(p, row0, ubeg, uend, lane, acc);
      else
        run_quant_warp<Dec, X, XT, WR>(p, row0, ubeg, uend, smem + warp * stage_bytes_per_warp<Dec>(WR), lane, acc);
    }
    // The quad's lanes hold partial sums over different k of the same weight row. Add them so that
    // lane t ends with activation rows 2t and 2t + 1 (its C entries): lanes t < 2 collect rows 0-3
    // and t >= 2 rows 4-7, then each lane of a pair takes its two. (Selects, not acc[2t]: an index
    // by lane would put acc in local memory.)
    const bool upper = t & 2, odd = t & 1;
    float half[4], pair[2];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      half[i] = (upper ? acc[4 + i] : acc[i]) + __shfl_xor_sync(0xffffffffu, upper ? acc[i] : acc[4 + i], 2);
#pragma unroll
    for (int i = 0; i < 2; ++i)
      pair[i] = (odd ? half[2 + i] : half[i]) + __shfl_xor_sync(0xffffffffu, odd ? half[i] : half[2 + i], 1);
    c[0][0] = pair[0];
    c[0][1] = pair[1];
  } else {
    if (active) {
      if constexpr (is_dense<Dec>())
        run_dense_warp<Dec, T, X, XT, WR>(p, row0, ubeg, uend, lane, c);
      else
        run_quant_warp<Dec, X, XT, WR>(p, row0, ubeg, uend, smem + warp * stage_bytes_per_warp<Dec>(WR), lane, c);
    }
  }

  grid_dependency_wait();  // (again, for warps with no k range) before the residual is read and y written

  if (p.k_warps > 1) {
    // Warps 1.. of a tile leave their sums in shared memory; warp 0 adds them in order.
    const int warps = blockDim.x >> 5;
    float* red = reinterpret_cast<float*>(smem + warps * stage_bytes_per_warp<Dec>(WR)) + warp * (XT * 4 * 32);
    if (kw > 0) {
#pragma unroll
      for (int j = 0; j < XT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) red[(j * 4 + e) * 32 + lane] = c[j][e];
    }
    __syncthreads();
    if (kw == 0) {
      for (int w = 1; w < p.k_warps; ++w) {
        const float* other = red + w * (XT * 4 * 32);
#pragma unroll
        for (int j = 0; j < XT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) c[j][e] += other[(j * 4 + e) * 32 + lane];
      }
    }
  }
  if (kw != 0 || !active) return;
#pragma unroll
  for (int j = 0; j < XT; ++j) {
#pragma unroll
    for (int e = 0; e < (WR == 16 ? 4 : 2); ++e) {
      const int xr = 8 * j + 2 * t + (e & 1);
      const int64_t wr = row0 + g + 8 * (e >> 1);
      if (xr < p.m && wr < p.n) {
        float v = c[j][e];
        if (p.bias != nullptr) v += load_as_float(p.bias, p.bias_dtype, wr);
        if (p.residual != nullptr) v += load_as_float(p.residual, p.y_dtype, int64_t(xr) * p.n + wr);
        store_from_float(p.y, p.y_dtype, int64_t(xr) * p.n + wr, v);
      }
    }
  }
}

template <class Dec, typename T, typename X>
void launch_skinny(const SkinnyParams& p, const SkinnyConfig& config, cudaStream_t stream) {
  const int threads = 32 * config.k_warps * config.tiles_per_block;
  const int64_t tiles = (int64_t(p.n) + skinny_warp_rows(config) - 1) / skinny_warp_rows(config);
  const int64_t blocks = (tiles + config.tiles_per_block - 1) / config.tiles_per_block;
  const size_t smem = size_t(skinny_smem_bytes<Dec>(config));
  auto go = [&](auto kernel) {
    launch_dependent(kernel, dim3(unsigned(blocks)), dim3(unsigned(threads)), smem, stream, p);
    WICK_CUDA_LAUNCH_CHECK("skinny_kernel");
  };
  if constexpr (std::is_same_v<X, float>) {
    go(skinny_kernel<Dec, T, X, 1, 8>);
  } else {
    switch (config.x_tiles) {
      case 1: return go(skinny_kernel<Dec, T, X, 1, 8>);
      case 2: return go(skinny_kernel<Dec, T, X, 2, 16>);
      case 4: return go(skinny_kernel<Dec, T, X, 4, 16>);
      default: return go(skinny_kernel<Dec, T, X, 8, 16>);
    }
  }
}

// Dense formats take activations of their own dtype; blocks take bf16, f16 or f32.
template <class Dec, typename T>
void launch_format(Dtype x_dtype, const SkinnyParams& p, const SkinnyConfig& config, cudaStream_t stream) {
  if constexpr (is_dense<Dec>()) {
    launch_skinny<Dec, T, T>(p, config, stream);
  } else if (x_dtype == Dtype::BF16) {
    launch_skinny<Dec, T, __nv_bfloat16>(p, config, stream);
  } else if (x_dtype == Dtype::F16) {
    launch_skinny<Dec, T, __half>(p, config, stream);
  } else {
    launch_skinny<Dec, T, float>(p, config, stream);
  }
}

}  // namespace wick::cuda::gemv
