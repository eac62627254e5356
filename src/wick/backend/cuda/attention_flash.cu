// The tensor-core attention for bf16/f16 at head dims 64 and 128, forward and backward, on
// mma.sync m16n8k16 (FlashAttention-2's schedule). A block of 4 warps takes 64 queries (or keys),
// 16 rows per warp, and walks tiles of 64 keys (or queries) in shared memory. Scores,
// probabilities and their gradients never leave registers: an accumulator of the m16n8k16 product
// holds, per lane, the same (row, column) pairs that the next product reads as its A operand, so
// P (or dS) is rounded to the data type and fed straight into P V, dS K, P^T dO and dS^T Q. B
// operands come from shared memory through ldmatrix (transposed where the tile is stored [k][n]).
// Backward without atomics: dq per query block; dk, dv per key block and query head (several
// heads reading one kv head sum their parts afterwards).
#include "wick/backend/cuda/attention_common.cuh"

namespace wick::cuda::attention {

namespace {

constexpr int kBlock = 64;  // rows of a block (16 per warp) and of a tile it walks
constexpr int kWarps = 4;
constexpr float kLog2e = 1.4426950408889634f;

// ---------------------------------------------------------------- PTX wrappers and fragments
// In an m16n8k16 accumulator, lane l holds rows g = l / 4 and g + 8, columns 2 (l % 4) and
// 2 (l % 4) + 1 of its 16 x 8 tile: c[0], c[1] on row g, c[2], c[3] on row g + 8.

template <typename D>
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<D, __nv_bfloat16>) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void* p) {
  unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(at));
}
__device__ __forceinline__ void ldsm4_trans(uint32_t (&r)[4], const void* p) {
  unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(at));
}

// 16 bytes global -> shared without passing through registers (cp.async); zeros when !valid (src
// is then not read).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(at), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most `n` of this thread's latest groups are still in flight.
template <int n>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
}

// Two floats as one register of two 16-bit values, `lo` in the low half (the smaller column).
template <typename D>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (std::is_same_v<D, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    memcpy(&r, &v, 4);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    memcpy(&r, &v, 4);
  }
  return r;
}

// The A operand (16 x 16) at rows r0.., columns k0.. of a row-major tile of pitch ld.
template <typename D>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const D* s, int ld, int r0, int k0, int lane) {
  ldsm4(a, s + (r0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8);
}
// The B operands of two n-tiles (n0.., n0 + 8..) over k0..k0 + 15 from a tile stored [n][k]:
// b[0], b[1] for the first, b[2], b[3] for the second.
template <typename D>
__device__ __forceinline__ void load_b_nk(uint32_t (&b)[4], const D* s, int ld, int n0, int k0, int lane) {
  ldsm4(b, s + (n0 + (lane >> 4) * 8 + (lane & 7)) * ld + k0 + ((lane >> 3) & 1) * 8);
}
// The same from a tile stored [k][n].
template <typename D>
__device__ __forceinline__ void load_b_kn(uint32_t (&b)[4], const D* s, int ld, int k0, int n0, int lane) {
  ldsm4_trans(b, s + (k0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * ld + n0 + (lane >> 4) * 8);
}

// acc (16 x 64) = A B^T: A is rows r0..r0 + 15 of a_s, B the 64 rows of b_s, both HD wide.
template <typename D, int HD>
__device__ __forceinline__ void rows_by_rows(float (&acc)[8][4], const D* a_s, int r0, const D* b_s, int ld, int lane) {
#pragma unroll
  for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
  for (int kc = 0; kc < HD / 16; ++kc) {
    uint32_t a[4];
    load_a(a, a_s, ld, r0, kc * 16, lane);
#pragma unroll
    for (int np = 0; np < 4; ++np) {
      uint32_t b[4];
      load_b_nk(b, b_s, ld, np * 16, kc * 16, lane);
      mma<D>(acc[2 * np], a, b[0], b[1]);
      mma<D>(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// acc (16 x HD) += P B: P (16 x 64) is an accumulator rounded to D, B the 64 rows of b_s.
template <typename D, int HD>
__device__ __forceinline__ void probs_by_rows(float (&acc)[HD / 8][4], const float (&p)[8][4], const D* b_s, int ld,
                                              int lane) {
#pragma unroll
  for (int kc = 0; kc < 4; ++kc) {
    uint32_t a[4] = {pack2<D>(p[2 * kc][0], p[2 * kc][1]), pack2<D>(p[2 * kc][2], p[2 * kc][3]),
                     pack2<D>(p[2 * kc + 1][0], p[2 * kc + 1][1]), pack2<D>(p[2 * kc + 1][2], p[2 * kc + 1][3])};
#pragma unroll
    for (int np = 0; np < HD / 16; ++np) {
      uint32_t b[4];
      load_b_kn(b, b_s, ld, kc * 16, np * 16, lane);
      mma<D>(acc[2 * np], a, b[0], b[1]);
      mma<D>(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// Writes row `half` (0: g, 1: g + 8) of a 16 x HD accumulator, times `mul`, to dst (HD values).
template <typename D, int HD>
__device__ __forceinline__ void store_row(const float (&acc)[HD / 8][4], int half, float mul, D* dst, int lane) {
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) {
    uint32_t v = pack2<D>(acc[n][2 * half] * mul, acc[n][2 * half + 1] * mul);
    *reinterpret_cast<uint32_t*>(dst + n * 8 + 2 * (lane & 3)) = v;
  }
}
template <int HD>
__device__ __forceinline__ void store_row_f32(const float (&acc)[HD / 8][4], int half, float* dst, int lane) {
#pragma unroll
  for (int n = 0; n < HD / 8; ++n)
    *reinterpret_cast<float2*>(dst + n * 8 + 2 * (lane & 3)) = make_float2(acc[n][2 * half], acc[n][2 * half + 1]);
}

template <typename D, int HD>
size_t smem_bytes(int tiles) {
  return sizeof(D) * size_t(tiles) * kBlock * (HD + 8) + sizeof(float) * 2 * kBlock;
}

// Rows [r0, r0 + kBlock) of a [rows_total, HD] operand (row stride `pitch` elements) into a tile
// of pitch HD + 8, by cp.async (zeros past the end); the caller commits and waits.
template <typename D, int HD>
__device__ __forceinline__ void load_tile_async(D* dst, const D* src, int64_t r0, int64_t rows_total, int64_t pitch) {
  constexpr int kVec = 16 / int(sizeof(D)), kChunks = HD / kVec, ld = HD + 8;
#pragma unroll
  for (int e = threadIdx.x; e < kBlock * kChunks; e += kWarps * 32) {
    int r = e / kChunks, c = (e % kChunks) * kVec;
    bool ok = r0 + r < rows_total;
    cp_async16(dst + r * ld + c, ok ? src + (r0 + r) * pitch + c : src, ok);
  }
}

// Adds v to two neighbouring floats of global memory (one vector atomic on sm_90).
__device__ __forceinline__ void atomic_add2(float* p, float x, float y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(p), make_float2(x, y));
#else
  atomicAdd(p, x);
  atomicAdd(p + 1, y);
#endif
}

// ---------------------------------------------------------------- forward
// Online softmax in the log2 domain: x = (s * scale + mask) * log2(e), p = 2^(x - m). The next
// tile's K and V load (cp.async, two stages) while this one is computed; tiles wholly visible (no
// mask, inside both lengths, below the causal diagonal) skip the per-element checks.
template <typename D, int HD>
__global__ void __launch_bounds__(kWarps * 32) flash_fwd_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                 D* out, float* lse, Dims d, FlashLayouts io) {
  constexpr int ld = HD + 8;
  extern __shared__ __align__(128) unsigned char smem[];
  D* q_s = reinterpret_cast<D*>(smem);
  D* k_s = q_s + kBlock * ld;  // two stages of K, then two of V
  D* v_s = k_s + 2 * kBlock * ld;
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group;
  int64_t q0 = int64_t(blockIdx.x) * kBlock;
  const D* kh = io.k.at(k, b, hk);
  const D* vh = io.v.at(v, b, hk);
  load_tile_async<D, HD>(q_s, io.q.at(q, b, h), q0, d.Tq, io.q.t);
  int64_t q_last = min64(q0 + kBlock, d.Tq) - 1;
  int64_t kv_end = d.causal ? min64(d.Tk, q_last + (d.Tk - d.Tq) + 1) : d.Tk;
  auto issue = [&](int64_t j0, int stage) {
    load_tile_async<D, HD>(k_s + stage * kBlock * ld, kh, j0, d.Tk, io.k.t);
    if (out) load_tile_async<D, HD>(v_s + stage * kBlock * ld, vh, j0, d.Tk, io.v.t);
  };
  if (kv_end > 0) issue(0, 0);
  cp_async_commit();
  uint32_t qa[HD / 16][4];
  float o[HD / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  int64_t rows[2] = {q0 + w * 16 + (lane >> 2), q0 + w * 16 + (lane >> 2) + 8};
  bool warp_active = q0 + w * 16 < d.Tq;
  float scale2 = float(d.scale) * kLog2e;
  int stage = 0;
  for (int64_t j0 = 0; j0 < kv_end; j0 += kBlock, stage ^= 1) {
    if (j0 + kBlock < kv_end) issue(j0 + kBlock, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (j0 == 0) {
#pragma unroll
      for (int kc = 0; kc < HD / 16; ++kc) load_a(qa[kc], q_s, ld, w * 16, kc * 16, lane);
    }
    if (warp_active) {
      const D* ks = k_s + stage * kBlock * ld;
      float s[8][4] = {};
#pragma unroll
      for (int kc = 0; kc < HD / 16; ++kc)
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t bb[4];
          load_b_nk(bb, ks, ld, np * 16, kc * 16, lane);
          mma<D>(s[2 * np], qa[kc], bb[0], bb[1]);
          mma<D>(s[2 * np + 1], qa[kc], bb[2], bb[3]);
        }
      const bool whole = mask.p == nullptr && q0 + kBlock <= d.Tq && j0 + kBlock <= d.Tk &&
                         (!d.causal || j0 + kBlock - 1 <= q0 + (d.Tk - d.Tq));
      float mx[2] = {-INFINITY, -INFINITY};
      if (whole) {
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[n][e] *= scale2;
            mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
          }
      } else {
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            int64_t i = rows[e >> 1], j = j0 + n * 8 + 2 * (lane & 3) + (e & 1);
            float x = -INFINITY;
            if (i < d.Tq && visible(d, i, j)) x = s[n][e] * scale2 + mask.at(b, h, i, j) * kLog2e;
            s[n][e] = x;
            mx[e >> 1] = fmaxf(mx[e >> 1], x);
          }
      }
      float alpha[2], rowsum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        float m_new = fmaxf(m[r], mx[r]);
        alpha[r] = m_new == -INFINITY ? 1.0f : exp2f(m[r] - m_new);
        m[r] = m_new;
      }
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float p = s[n][e] == -INFINITY ? 0.0f : exp2f(s[n][e] - m[e >> 1]);
          s[n][e] = p;
          rowsum[e >> 1] += p;
        }
#pragma unroll
      for (int r = 0; r < 2; ++r) l[r] = l[r] * alpha[r] + rowsum[r];
      if (out != nullptr) {
#pragma unroll
        for (int n = 0; n < HD / 8; ++n) {
          o[n][0] *= alpha[0], o[n][1] *= alpha[0];
          o[n][2] *= alpha[1], o[n][3] *= alpha[1];
        }
        probs_by_rows<D, HD>(o, s, v_s + stage * kBlock * ld, ld, lane);
      }
    }
    __syncthreads();  // this stage is free for the tile after next
  }
  cp_async_wait<0>();
  if (!warp_active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    int64_t i = rows[r];
    if (i >= d.Tq) continue;
    if (lse != nullptr && (lane & 3) == 0) lse[bh * d.Tq + i] = l[r] > 0.0f ? m[r] / kLog2e + logf(l[r]) : -INFINITY;
    if (out != nullptr)
      store_row<D, HD>(o, r, l[r] > 0.0f ? 1.0f / l[r] : 0.0f, io.o.at(out, b, h) + i * io.o.t, lane);
  }
}

// ---------------------------------------------------------------- backward
template <typename D>
__global__ void flash_bwd_delta_kernel(const D* o, const D* dout, float* delta, int64_t rows, int64_t dv, Dims d,
                                       FlashLayouts io) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (row >= rows) return;
  int64_t bh = row / d.Tq, i = row % d.Tq, b = bh / d.Hq, h = bh % d.Hq;
  const D* orow = io.o.at(o, b, h) + i * io.o.t;
  const D* drow = io.dout.at(dout, b, h) + i * io.dout.t;
  int lane = threadIdx.x & 31;
  float acc = 0.0f;
  for (int64_t c = lane; c < dv; c += 32) acc += float(cuda::to_c(orow[c])) * float(cuda::to_c(drow[c]));
  acc = cuda::warp_sum(acc);
  if (lane == 0) delta[row] = acc;
}

// dq of 64 queries of one (batch, head): S = Q K^T and dP = dO V^T per key tile, then
// dS = P (dP - delta) scale with P = exp(S scale + mask - lse), and dQ += dS K.
template <typename D, int HD>
__global__ void __launch_bounds__(kWarps * 32) flash_bwd_dq_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                    const D* dout, const float* lse,
                                                                    const float* delta, D* dq, Dims d,
                                                                    FlashLayouts io) {
  constexpr int ld = HD + 8;
  extern __shared__ __align__(128) unsigned char smem[];
  D* q_s = reinterpret_cast<D*>(smem);
  D* do_s = q_s + kBlock * ld;
  D* k_s = do_s + kBlock * ld;
  D* v_s = k_s + kBlock * ld;
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group;
  int64_t q0 = int64_t(blockIdx.x) * kBlock;
  const D* kh = io.k.at(k, b, hk);
  const D* vh = io.v.at(v, b, hk);
  tc_load_rows(q_s, ld, io.q.at(q, b, h), q0, kBlock, d.Tq, HD, io.q.t);
  tc_load_rows(do_s, ld, io.dout.at(dout, b, h), q0, kBlock, d.Tq, HD, io.dout.t);
  int64_t rows[2] = {q0 + w * 16 + (lane >> 2), q0 + w * 16 + (lane >> 2) + 8};
  float row_lse[2], row_delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_lse[r] = rows[r] < d.Tq ? lse[bh * d.Tq + rows[r]] : -INFINITY;
    row_delta[r] = rows[r] < d.Tq ? delta[bh * d.Tq + rows[r]] : 0.0f;
  }
  int64_t q_last = min64(q0 + kBlock, d.Tq) - 1;
  int64_t kv_end = d.causal ? min64(d.Tk, q_last + (d.Tk - d.Tq) + 1) : d.Tk;
  bool warp_active = q0 + w * 16 < d.Tq;
  float scale = float(d.scale);
  float acc[HD / 8][4] = {};
  for (int64_t j0 = 0; j0 < kv_end; j0 += kBlock) {
    __syncthreads();
    tc_load_rows(k_s, ld, kh, j0, kBlock, d.Tk, HD, io.k.t);
    tc_load_rows(v_s, ld, vh, j0, kBlock, d.Tk, HD, io.v.t);
    __syncthreads();
    if (!warp_active) continue;
    float s[8][4], dp[8][4];
    rows_by_rows<D, HD>(s, q_s, w * 16, k_s, ld, lane);
    rows_by_rows<D, HD>(dp, do_s, w * 16, v_s, ld, lane);
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int r = e >> 1;
        int64_t i = rows[r], j = j0 + n * 8 + 2 * (lane & 3) + (e & 1);
        float ds = 0.0f;
        if (i < d.Tq && row_lse[r] != -INFINITY && visible(d, i, j)) {
          float x = s[n][e] * scale + mask.at(b, h, i, j);
          float p = x == -INFINITY ? 0.0f : __expf(x - row_lse[r]);
          ds = p * (dp[n][e] - row_delta[r]) * scale;
        }
        s[n][e] = ds;
      }
    probs_by_rows<D, HD>(acc, s, k_s, ld, lane);
  }
  if (!warp_active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r)
    if (rows[r] < d.Tq) store_row<D, HD>(acc, r, 1.0f, dq + (bh * d.Tq + rows[r]) * HD, lane);
}

// dk, dv of 64 keys from the queries of one head: S^T = K Q^T and dP^T = V dO^T per query tile,
// then dV += P^T dO and dK += dS^T Q. With one query head per kv head the result is written in the
// data type; otherwise each head writes its part in f32 and flash_bwd_sum_heads adds the parts.
template <typename D, int HD>
__global__ void __launch_bounds__(kWarps * 32) flash_bwd_dkv_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                     const D* dout, const float* lse,
                                                                     const float* delta, D* dk, D* dv, float* dk_part,
                                                                     float* dv_part, Dims d, FlashLayouts io) {
  constexpr int ld = HD + 8;
  extern __shared__ __align__(128) unsigned char smem[];
  D* k_s = reinterpret_cast<D*>(smem);
  D* v_s = k_s + kBlock * ld;
  D* q_s = v_s + kBlock * ld;
  D* do_s = q_s + kBlock * ld;
  float* lse_s = reinterpret_cast<float*>(do_s + kBlock * ld);
  float* delta_s = lse_s + kBlock;
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group, bhk = b * d.Hkv + hk;
  int64_t j0 = int64_t(blockIdx.x) * kBlock;
  tc_load_rows(k_s, ld, io.k.at(k, b, hk), j0, kBlock, d.Tk, HD, io.k.t);
  tc_load_rows(v_s, ld, io.v.at(v, b, hk), j0, kBlock, d.Tk, HD, io.v.t);
  int64_t keys[2] = {j0 + w * 16 + (lane >> 2), j0 + w * 16 + (lane >> 2) + 8};
  bool warp_active = j0 + w * 16 < d.Tk;
  // The first query that sees key j0 (causal): i >= j0 - (Tk - Tq).
  int64_t i_begin = d.causal ? max64(0, j0 - (d.Tk - d.Tq)) / kBlock * kBlock : 0;
  float scale = float(d.scale);
  const D* qh = io.q.at(q, b, h);
  const D* doh = io.dout.at(dout, b, h);
  float acc_k[HD / 8][4] = {}, acc_v[HD / 8][4] = {};
  for (int64_t i0 = i_begin; i0 < d.Tq; i0 += kBlock) {
    __syncthreads();
    tc_load_rows(q_s, ld, qh, i0, kBlock, d.Tq, HD, io.q.t);
    tc_load_rows(do_s, ld, doh, i0, kBlock, d.Tq, HD, io.dout.t);
    if (threadIdx.x < kBlock) {
      int64_t row = i0 + threadIdx.x;
      lse_s[threadIdx.x] = row < d.Tq ? lse[bh * d.Tq + row] : -INFINITY;
      delta_s[threadIdx.x] = row < d.Tq ? delta[bh * d.Tq + row] : 0.0f;
    }
    __syncthreads();
    if (!warp_active) continue;
    float st[8][4], dpt[8][4];
    rows_by_rows<D, HD>(st, k_s, w * 16, q_s, ld, lane);
    rows_by_rows<D, HD>(dpt, v_s, w * 16, do_s, ld, lane);
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int col = n * 8 + 2 * (lane & 3) + (e & 1);
        int64_t i = i0 + col, j = keys[e >> 1];
        float p = 0.0f, ds = 0.0f;
        if (i < d.Tq && lse_s[col] != -INFINITY && visible(d, i, j)) {
          float x = st[n][e] * scale + mask.at(b, h, i, j);
          p = x == -INFINITY ? 0.0f : __expf(x - lse_s[col]);
          ds = p * (dpt[n][e] - delta_s[col]) * scale;
        }
        st[n][e] = p;
        dpt[n][e] = ds;
      }
    probs_by_rows<D, HD>(acc_v, st, do_s, ld, lane);
    probs_by_rows<D, HD>(acc_k, dpt, q_s, ld, lane);
  }
  if (!warp_active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (keys[r] >= d.Tk) continue;
    if (d.group == 1) {
      store_row<D, HD>(acc_k, r, 1.0f, dk + (bhk * d.Tk + keys[r]) * HD, lane);
      store_row<D, HD>(acc_v, r, 1.0f, dv + (bhk * d.Tk + keys[r]) * HD, lane);
    } else {
      store_row_f32<HD>(acc_k, r, dk_part + (bh * d.Tk + keys[r]) * HD, lane);
      store_row_f32<HD>(acc_v, r, dv_part + (bh * d.Tk + keys[r]) * HD, lane);
    }
  }
}

// The whole backward of 64 keys and one query head in one pass over the query tiles (head dim 64):
// S^T = K Q^T and dP^T = V dO^T per tile, P^T = exp(S^T scale + mask - lse), dS^T = P^T (dP^T - delta)
// scale, then dV += P^T dO and dK += dS^T Q in registers, and dQ (of the tile's 64 queries) += dS K
// from dS^T through shared memory, added to an f32 dq with atomics. The next tile's Q and dO load
// (cp.async, two stages) while this one is computed. Tiles wholly visible (no mask, inside both
// lengths, below the causal diagonal) skip the per-element checks. dk, dv (f32) are added into the
// kv head's sums once at the end (plain stores when the kv head has one query head).
template <typename D, int HD>
__global__ void __launch_bounds__(kWarps * 32) flash_bwd_fused_kernel(const D* q, const D* k, const D* v,
                                                                       MaskView mask, const D* dout,
                                                                       const float* lse, const float* delta,
                                                                       float* dq_acc, float* dk_acc, float* dv_acc,
                                                                       Dims d, FlashLayouts io) {
  constexpr int ld = HD + 8, lds = kBlock + 8;
  extern __shared__ __align__(128) unsigned char smem[];
  D* k_s = reinterpret_cast<D*>(smem);
  D* v_s = k_s + kBlock * ld;
  D* ds_s = v_s + kBlock * ld;  // dS^T of the tile, [key][query]
  D* q_s = ds_s + kBlock * lds;  // two stages of Q, then two of dO
  D* do_s = q_s + 2 * kBlock * ld;
  float* lse_s = reinterpret_cast<float*>(do_s + 2 * kBlock * ld);  // two stages each, log2 domain
  float* delta_s = lse_s + 2 * kBlock;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group, bhk = b * d.Hkv + hk;
  const int64_t j0 = int64_t(blockIdx.x) * kBlock;
  const D* qh = io.q.at(q, b, h);
  const D* doh = io.dout.at(dout, b, h);
  load_tile_async<D, HD>(k_s, io.k.at(k, b, hk), j0, d.Tk, io.k.t);
  load_tile_async<D, HD>(v_s, io.v.at(v, b, hk), j0, d.Tk, io.v.t);
  const int64_t keys[2] = {j0 + w * 16 + (lane >> 2), j0 + w * 16 + (lane >> 2) + 8};
  // The first query that sees key j0 (causal): i >= j0 - (Tk - Tq).
  const int64_t i_begin = d.causal ? max64(0, j0 - (d.Tk - d.Tq)) / kBlock * kBlock : 0;
  const float scale = float(d.scale), scale2 = scale * kLog2e;
  auto issue = [&](int64_t i0, int stage) {
    load_tile_async<D, HD>(q_s + stage * kBlock * ld, qh, i0, d.Tq, io.q.t);
    load_tile_async<D, HD>(do_s + stage * kBlock * ld, doh, i0, d.Tq, io.dout.t);
    if (threadIdx.x < kBlock) {
      int64_t row = i0 + threadIdx.x;
      float l = row < d.Tq ? lse[bh * d.Tq + row] : -INFINITY;
      lse_s[stage * kBlock + threadIdx.x] = l * kLog2e;
      delta_s[stage * kBlock + threadIdx.x] = row < d.Tq ? delta[bh * d.Tq + row] : 0.0f;
    }
  };
  if (i_begin < d.Tq) issue(i_begin, 0);
  cp_async_commit();
  float acc_k[HD / 8][4] = {}, acc_v[HD / 8][4] = {};
  int stage = 0;
  for (int64_t i0 = i_begin; i0 < d.Tq; i0 += kBlock, stage ^= 1) {
    if (i0 + kBlock < d.Tq) issue(i0 + kBlock, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // everything but the group just issued: this tile (and K, V)
    __syncthreads();
    const D* qs = q_s + stage * kBlock * ld;
    const D* dos = do_s + stage * kBlock * ld;
    const float* lse2 = lse_s + stage * kBlock;
    const float* dl = delta_s + stage * kBlock;
    float st[8][4], dpt[8][4];
    rows_by_rows<D, HD>(st, k_s, w * 16, qs, ld, lane);
    rows_by_rows<D, HD>(dpt, v_s, w * 16, dos, ld, lane);
    const bool whole = mask.p == nullptr && i0 + kBlock <= d.Tq && j0 + kBlock <= d.Tk &&
                       (!d.causal || j0 + kBlock - 1 <= i0 + (d.Tk - d.Tq));
    if (whole) {
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int col = n * 8 + 2 * (lane & 3) + (e & 1);
          float p = exp2f(fmaf(st[n][e], scale2, -lse2[col]));
          dpt[n][e] = p * (dpt[n][e] - dl[col]) * scale;
          st[n][e] = p;
        }
    } else {
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int col = n * 8 + 2 * (lane & 3) + (e & 1);
          int64_t i = i0 + col, j = keys[e >> 1];
          float p = 0.0f, ds = 0.0f;
          if (i < d.Tq && lse2[col] != -INFINITY && visible(d, i, j)) {
            float x = fmaf(st[n][e], scale2, mask.at(b, h, i, j) * kLog2e);
            p = x == -INFINITY ? 0.0f : exp2f(x - lse2[col]);
            ds = p * (dpt[n][e] - dl[col]) * scale;
          }
          st[n][e] = p;
          dpt[n][e] = ds;
        }
    }
    probs_by_rows<D, HD>(acc_v, st, dos, ld, lane);
    probs_by_rows<D, HD>(acc_k, dpt, qs, ld, lane);
    // dS^T rounded to D (as the products above read it) into shared memory, then each warp takes
    // dQ of 16 queries over the 64 keys: A = dS (the stored tile transposed), B = K.
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      D* row = ds_s + (w * 16 + (lane >> 2)) * lds + n * 8 + 2 * (lane & 3);
      *reinterpret_cast<uint32_t*>(row) = pack2<D>(dpt[n][0], dpt[n][1]);
      *reinterpret_cast<uint32_t*>(row + 8 * lds) = pack2<D>(dpt[n][2], dpt[n][3]);
    }
    __syncthreads();
    float dq[HD / 8][4] = {};
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t a[4];
      ldsm4_trans(a, ds_s + (kc * 16 + (lane >> 4) * 8 + (lane & 7)) * lds + w * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
      for (int np = 0; np < HD / 16; ++np) {
        uint32_t bb[4];
        load_b_kn(bb, k_s, ld, kc * 16, np * 16, lane);
        mma<D>(dq[2 * np], a, bb[0], bb[1]);
        mma<D>(dq[2 * np + 1], a, bb[2], bb[3]);
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      int64_t i = i0 + w * 16 + (lane >> 2) + 8 * r;
      if (i >= d.Tq) continue;
      float* dst = dq_acc + (bh * d.Tq + i) * HD + 2 * (lane & 3);
#pragma unroll
      for (int n = 0; n < HD / 8; ++n) atomic_add2(dst + n * 8, dq[n][2 * r], dq[n][2 * r + 1]);
    }
    __syncthreads();  // this stage's buffers and ds_s are free for the next tile
  }
  cp_async_wait<0>();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (keys[r] >= d.Tk) continue;
    float* dkr = dk_acc + (bhk * d.Tk + keys[r]) * HD + 2 * (lane & 3);
    float* dvr = dv_acc + (bhk * d.Tk + keys[r]) * HD + 2 * (lane & 3);
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      if (d.group == 1) {
        *reinterpret_cast<float2*>(dkr + n * 8) = make_float2(acc_k[n][2 * r], acc_k[n][2 * r + 1]);
        *reinterpret_cast<float2*>(dvr + n * 8) = make_float2(acc_v[n][2 * r], acc_v[n][2 * r + 1]);
      } else {
        atomic_add2(dkr + n * 8, acc_k[n][2 * r], acc_k[n][2 * r + 1]);
        atomic_add2(dvr + n * 8, acc_v[n][2 * r], acc_v[n][2 * r + 1]);
      }
    }
  }
}

// The f32 sums of flash_bwd_fused_kernel rounded to D: n values of dq, then m of dk and of dv (all
// multiples of 4).
template <typename D>
__global__ void flash_bwd_round(const float* dq_acc, D* dq, int64_t n, const float* dk_acc, const float* dv_acc, D* dk,
                                D* dv, int64_t m) {
  int64_t e = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  const float* src;
  D* dst;
  if (e < n) {
    src = dq_acc + e, dst = dq + e;
  } else if (e < n + m) {
    src = dk_acc + (e - n), dst = dk + (e - n);
  } else if (e < n + 2 * m) {
    src = dv_acc + (e - n - m), dst = dv + (e - n - m);
  } else {
    return;
  }
  float4 x = *reinterpret_cast<const float4*>(src);
  uint32_t packed[2] = {pack2<D>(x.x, x.y), pack2<D>(x.z, x.w)};
  *reinterpret_cast<uint2*>(dst) = make_uint2(packed[0], packed[1]);
}

// dk[b, hk] = sum over the group's heads g of part[b, hk * group + g] (and the same for dv).
template <typename D>
__global__ void flash_bwd_sum_heads(const float* dk_part, const float* dv_part, D* dk, D* dv, int64_t group,
                                    int64_t per_head, int64_t n) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  int64_t bhk = e / per_head, at = e % per_head;
  float sk = 0.0f, sv = 0.0f;
  for (int64_t g = 0; g < group; ++g) {
    sk += dk_part[(bhk * group + g) * per_head + at];
    sv += dv_part[(bhk * group + g) * per_head + at];
  }
  dk[e] = cuda::from_c<D>(sk);
  dv[e] = cuda::from_c<D>(sv);
}

// The layouts of q, k, v (and o, dout when given), which flash_rows accepted.
FlashLayouts layouts_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* o, const Tensor* dout) {
  FlashLayouts io;
  bool ok = flash_rows(q, &io.q) && flash_rows(k, &io.k) && flash_rows(v, &io.v) && (!o || flash_rows(*o, &io.o)) &&
            (!dout || flash_rows(*dout, &io.dout));
  WICK_CHECK(ok, "scaled_dot_product_attention: an operand's layout does not suit the tensor-core kernels");
  return io;
}

template <typename T, int HD>
void run_flash_forward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, void* out,
                       RowsLayout out_rows, float* lse, const Dims& d, int device) {
  using D = cuda::dev_t<T>;
  FlashLayouts io = layouts_of(q, k, v, nullptr, nullptr);
  io.o = out_rows;
  size_t smem = smem_bytes<D, HD>(5);
  auto kernel = flash_fwd_kernel<D, HD>;
  set_smem(kernel, smem);
  dim3 grid(unsigned((d.Tq + kBlock - 1) / kBlock), unsigned(d.B * d.Hq));
  kernel<<<grid, kWarps * 32, smem, cuda::stream(device)>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v),
                                                            mask, static_cast<D*>(out), lse, d, io);
  WICK_CUDA_LAUNCH_CHECK("flash_fwd_kernel");
}

template <typename T, int HD>
void run_flash_backward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, const Tensor& o,
                        const Tensor& dout, const float* saved_lse, float* lse_scratch, float* delta, void* dq,
                        void* dk, void* dv, const Dims& d, int device) {
  using D = cuda::dev_t<T>;
  cudaStream_t s = cuda::stream(device);
  FlashLayouts io = layouts_of(q, k, v, &o, &dout);
  const float* lse = saved_lse;
  if (lse == nullptr) {
    run_flash_forward<T, HD>(q, k, v, mask, nullptr, RowsLayout{}, lse_scratch, d, device);
    lse = lse_scratch;
  }
  int64_t rows = d.B * d.Hq * d.Tq;
  flash_bwd_delta_kernel<D><<<unsigned((rows + 7) / 8), 256, 0, s>>>(cuda::cptr<T>(o), cuda::cptr<T>(dout), delta,
                                                                     rows, HD, d, io);
  WICK_CUDA_LAUNCH_CHECK("flash_bwd_delta_kernel");
  if constexpr (HD == 64) {
    // One pass (flash_bwd_fused_kernel) into f32 sums, then rounded to D.
    int64_t nq = d.B * d.Hq * d.Tq * HD, nk = d.B * d.Hkv * d.Tk * HD;
    Tensor sums = Tensor::empty({nq + 2 * nk}, Dtype::F32, q.device());
    float* dq_acc = static_cast<float*>(sums.data_ptr());
    float *dk_acc = dq_acc + nq, *dv_acc = dk_acc + nk;
    // dq always gathers atomics; dk, dv only when several query heads share a kv head.
    WICK_CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, sizeof(float) * size_t(d.group == 1 ? nq : nq + 2 * nk), s));
    if (d.Tk > 0) {
      size_t smem = sizeof(D) * size_t(kBlock) * (6 * (HD + 8) + (kBlock + 8)) + sizeof(float) * 4 * kBlock;
      auto kernel = flash_bwd_fused_kernel<D, HD>;
      set_smem(kernel, smem);
      dim3 grid(unsigned((d.Tk + kBlock - 1) / kBlock), unsigned(d.B * d.Hq));
      kernel<<<grid, kWarps * 32, smem, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                             cuda::cptr<T>(dout), lse, delta, dq_acc, dk_acc, dv_acc, d, io);
      WICK_CUDA_LAUNCH_CHECK("flash_bwd_fused_kernel");
    }
    int64_t quads = (nq + 2 * nk) / 4;
    flash_bwd_round<D><<<unsigned((quads + 255) / 256), 256, 0, s>>>(dq_acc, static_cast<D*>(dq), nq, dk_acc, dv_acc,
                                                                     static_cast<D*>(dk), static_cast<D*>(dv), nk);
    WICK_CUDA_LAUNCH_CHECK("flash_bwd_round");
    return;
  }
  size_t smem = smem_bytes<D, HD>(4);
  auto dq_kernel = flash_bwd_dq_kernel<D, HD>;
  set_smem(dq_kernel, smem);
  dim3 grid_q(unsigned((d.Tq + kBlock - 1) / kBlock), unsigned(d.B * d.Hq));
  dq_kernel<<<grid_q, kWarps * 32, smem, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                             cuda::cptr<T>(dout), lse, delta, static_cast<D*>(dq), d, io);
  WICK_CUDA_LAUNCH_CHECK("flash_bwd_dq_kernel");
  if (d.Tk == 0) return;
  Tensor parts;  // f32 dk and dv of every query head, when several share a kv head
  float *dk_part = nullptr, *dv_part = nullptr;
  int64_t per_head = d.Tk * HD;
  if (d.group > 1) {
    parts = Tensor::empty({2, d.B * d.Hq * per_head}, Dtype::F32, q.device());
    dk_part = static_cast<float*>(parts.data_ptr());
    dv_part = dk_part + d.B * d.Hq * per_head;
  }
  auto kv_kernel = flash_bwd_dkv_kernel<D, HD>;
  set_smem(kv_kernel, smem);
  dim3 grid_k(unsigned((d.Tk + kBlock - 1) / kBlock), unsigned(d.B * d.Hq));
  kv_kernel<<<grid_k, kWarps * 32, smem, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                             cuda::cptr<T>(dout), lse, delta, static_cast<D*>(dk), static_cast<D*>(dv),
                                             dk_part, dv_part, d, io);
  WICK_CUDA_LAUNCH_CHECK("flash_bwd_dkv_kernel");
  if (d.group == 1) return;
  int64_t n = d.B * d.Hkv * per_head;
  flash_bwd_sum_heads<D><<<unsigned((n + 255) / 256), 256, 0, s>>>(dk_part, dv_part, static_cast<D*>(dk),
                                                                    static_cast<D*>(dv), d.group, per_head, n);
  WICK_CUDA_LAUNCH_CHECK("flash_bwd_sum_heads");
}

template <class F>
void dispatch_flash(Dtype dtype, int64_t hd, F&& f) {
  auto by_dim = [&]<typename T>() {
    if (hd == 64) f.template operator()<T, 64>();
    else f.template operator()<T, 128>();
  };
  if (dtype == Dtype::BF16) by_dim.template operator()<bf16>();
  else if (dtype == Dtype::F16) by_dim.template operator()<f16>();
  else fail("scaled_dot_product_attention: the tensor-core kernels take bf16 or f16, got ", dtype_name(dtype));
}

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

}  // namespace

bool flash_rows(const Tensor& t, RowsLayout* layout) {
  if (t.ndim() != 4 || t.strides()[3] != 1 || !aligned16(t)) return false;
  int64_t per = 16 / int64_t(t.itemsize());
  int64_t s[3];
  for (int i = 0; i < 3; ++i) {
    s[i] = t.shape(i) == 1 ? 0 : t.strides()[i];
    if (s[i] % per != 0) return false;
  }
  *layout = RowsLayout{s[0], s[1], s[2]};
  return true;
}

bool use_flash(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v) {
  RowsLayout l;
  return cuda::attention_tensor_cores() && d.Tq >= kBlock && d.D == d.Dv && (d.D == 64 || d.D == 128) &&
         (q.dtype() == Dtype::BF16 || q.dtype() == Dtype::F16) && flash_rows(q, &l) && flash_rows(k, &l) &&
         flash_rows(v, &l);
}

bool use_flash_backward(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                        const Tensor& dout) {
  RowsLayout l;
  return use_flash(d, q, k, v) && flash_rows(o, &l) && flash_rows(dout, &l);
}

void flash_forward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, void* out, RowsLayout out_rows,
                   float* lse, const Dims& d, int device) {
  dispatch_flash(q.dtype(), d.D, [&]<typename T, int HD>() {
    run_flash_forward<T, HD>(q, k, v, mask, out, out_rows, lse, d, device);
  });
}

void flash_backward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, const Tensor& o,
                    const Tensor& dout, const float* saved_lse, float* lse, float* delta, void* dq, void* dk,
                    void* dv, const Dims& d, int device) {
  dispatch_flash(q.dtype(), d.D, [&]<typename T, int HD>() {
    run_flash_backward<T, HD>(q, k, v, mask, o, dout, saved_lse, lse, delta, dq, dk, dv, d, device);
  });
}

}  // namespace wick::cuda::attention
