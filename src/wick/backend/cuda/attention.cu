// CUDA scaled dot-product attention, forward and backward (flash-style: scores are never stored).
// Forward: a block holds 8 query rows (one warp each) of one (batch, head) and walks K/V in tiles
// of 32 keys kept in shared memory; lane j scores key j of the tile, the warp keeps an online
// softmax and each lane accumulates Dv/32 output features. GQA reads kv head h / group directly.
// Backward (FlashAttention-2 split, no atomics): (1) the forward kernel's per-row logsumexp;
// (2) dq per query row, recomputing P per tile, and delta = rowsum(dO * O); (3) dk, dv per key row,
// walking the queries of every head of its group. Tensor-core (WMMA) forward and backward serve
// bf16/f16 when the shapes suit them (see use_tensor_cores, use_tensor_core_backward).
#include <mma.h>

#include <algorithm>

#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/backend/cuda/settings.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

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

// Loads rows [r0, r0 + n) of a [rows_total, cols] matrix into shared memory with row pitch `pitch`
// (zeros past the end).
template <typename D, typename A>
__device__ void load_rows(A* dst, int pitch, const D* src, int64_t r0, int n, int64_t rows_total, int64_t cols) {
  for (int64_t e = threadIdx.x; e < int64_t(n) * cols; e += blockDim.x) {
    int64_t r = e / cols, c = e % cols;
    dst[r * pitch + c] = r0 + r < rows_total ? A(cuda::to_c(src[(r0 + r) * cols + c])) : A(0);
  }
}

template <typename D, typename A, int VPL>
__global__ void attn_fwd_kernel(const D* q, const D* k, const D* v, MaskView mask, D* out, A* lse, Dims d) {
  extern __shared__ unsigned char smem_raw[];
  A* q_s = reinterpret_cast<A*>(smem_raw);       // [kRows][D]
  A* k_s = q_s + kRows * d.D;                    // [kTile][D + 1]
  A* v_s = k_s + kTile * (d.D + 1);              // [kTile][Dv]
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group;
  int64_t q0 = int64_t(blockIdx.x) * kRows, i = q0 + w;
  const D* qh = q + bh * d.Tq * d.D;
  const D* kh = k + (b * d.Hkv + hk) * d.Tk * d.D;
  const D* vh = v + (b * d.Hkv + hk) * d.Tk * d.Dv;
  load_rows(q_s, int(d.D), qh, q0, kRows, d.Tq, d.D);
  int64_t q_last = min64(q0 + kRows, d.Tq) - 1;
  int64_t kv_end = d.causal ? min64(d.Tk, q_last + (d.Tk - d.Tq) + 1) : d.Tk;
  A m = -A(INFINITY), l = 0, acc[VPL];
#pragma unroll
  for (int t = 0; t < VPL; ++t) acc[t] = 0;
  const A* qrow = q_s + w * d.D;
  for (int64_t j0 = 0; j0 < kv_end; j0 += kTile) {
    __syncthreads();
    load_rows(k_s, int(d.D + 1), kh, j0, kTile, d.Tk, d.D);
    load_rows(v_s, int(d.Dv), vh, j0, kTile, d.Tk, d.Dv);
    __syncthreads();
    if (i >= d.Tq) continue;
    int64_t j = j0 + lane;
    A s = -A(INFINITY);
    if (visible(d, i, j)) {
      const A* krow = k_s + lane * (d.D + 1);
      A dot = 0;
      for (int64_t c = 0; c < d.D; ++c) dot += qrow[c] * krow[c];
      s = dot * A(d.scale) + A(mask.at(b, h, i, j));
    }
    A m_new = max(m, cuda::warp_max(s));
    if (m_new == -A(INFINITY)) continue;  // every key so far is masked
    A p = s == -A(INFINITY) ? A(0) : exp(s - m_new);
    A alpha = m == -A(INFINITY) ? A(0) : exp(m - m_new);
    l = l * alpha + cuda::warp_sum(p);
#pragma unroll
    for (int t = 0; t < VPL; ++t) acc[t] *= alpha;
    for (int jj = 0; jj < kTile; ++jj) {
      A pj = __shfl_sync(0xffffffffu, p, jj);
      if (pj == A(0)) continue;
      const A* vrow = v_s + jj * d.Dv;
#pragma unroll
      for (int t = 0; t < VPL; ++t) {
        int64_t c = lane + 32 * t;
        if (c < d.Dv) acc[t] += pj * vrow[c];
      }
    }
    m = m_new;
  }
  if (i >= d.Tq) return;
  int64_t row = bh * d.Tq + i;
  if (out) {
#pragma unroll
    for (int t = 0; t < VPL; ++t) {
      int64_t c = lane + 32 * t;
      if (c < d.Dv) out[row * d.Dv + c] = cuda::from_c<D>(l > A(0) ? acc[t] / l : A(0));
    }
  }
  if (lse && lane == 0) lse[row] = l > A(0) ? m + log(l) : -A(INFINITY);
}

// dq of each query row, and delta = rowsum(dO * O) for the dk/dv kernel.
template <typename D, typename A, int VPL>
__global__ void attn_bwd_dq_kernel(const D* q, const D* k, const D* v, MaskView mask, const D* o, const D* dout,
                                   const A* lse, A* delta_out, D* dq, Dims d) {
  extern __shared__ unsigned char smem_raw[];
  A* q_s = reinterpret_cast<A*>(smem_raw);  // [kRows][D]
  A* do_s = q_s + kRows * d.D;              // [kRows][Dv]
  A* k_s = do_s + kRows * d.Dv;             // [kTile][D + 1]
  A* v_s = k_s + kTile * (d.D + 1);         // [kTile][Dv + 1]
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group;
  int64_t q0 = int64_t(blockIdx.x) * kRows, i = q0 + w, row = bh * d.Tq + i;
  const D* kh = k + (b * d.Hkv + hk) * d.Tk * d.D;
  const D* vh = v + (b * d.Hkv + hk) * d.Tk * d.Dv;
  load_rows(q_s, int(d.D), q + bh * d.Tq * d.D, q0, kRows, d.Tq, d.D);
  load_rows(do_s, int(d.Dv), dout + bh * d.Tq * d.Dv, q0, kRows, d.Tq, d.Dv);
  __syncthreads();
  const A* qrow = q_s + w * d.D;
  const A* dorow = do_s + w * d.Dv;
  A delta = 0, row_lse = -A(INFINITY);
  if (i < d.Tq) {
    for (int64_t c = lane; c < d.Dv; c += 32) delta += dorow[c] * A(cuda::to_c(o[row * d.Dv + c]));
    delta = cuda::warp_sum(delta);
    row_lse = lse[row];
    if (lane == 0) delta_out[row] = delta;
  }
  int64_t q_last = min64(q0 + kRows, d.Tq) - 1;
  int64_t kv_end = d.causal ? min64(d.Tk, q_last + (d.Tk - d.Tq) + 1) : d.Tk;
  A acc[VPL];
#pragma unroll
  for (int t = 0; t < VPL; ++t) acc[t] = 0;
  for (int64_t j0 = 0; j0 < kv_end; j0 += kTile) {
    __syncthreads();
    load_rows(k_s, int(d.D + 1), kh, j0, kTile, d.Tk, d.D);
    load_rows(v_s, int(d.Dv + 1), vh, j0, kTile, d.Tk, d.Dv);
    __syncthreads();
    if (i >= d.Tq || row_lse == -A(INFINITY)) continue;
    int64_t j = j0 + lane;
    A ds = 0;
    if (visible(d, i, j)) {
      const A* krow = k_s + lane * (d.D + 1);
      const A* vrow = v_s + lane * (d.Dv + 1);
      A dot = 0, dp = 0;
      for (int64_t c = 0; c < d.D; ++c) dot += qrow[c] * krow[c];
      for (int64_t c = 0; c < d.Dv; ++c) dp += dorow[c] * vrow[c];
      A s = dot * A(d.scale) + A(mask.at(b, h, i, j));
      A p = s == -A(INFINITY) ? A(0) : exp(s - row_lse);
      ds = p * (dp - delta) * A(d.scale);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      A dsj = __shfl_sync(0xffffffffu, ds, jj);
      if (dsj == A(0)) continue;
      const A* krow = k_s + jj * (d.D + 1);
#pragma unroll
      for (int t = 0; t < VPL; ++t) {
        int64_t c = lane + 32 * t;
        if (c < d.D) acc[t] += dsj * krow[c];
      }
    }
  }
  if (i >= d.Tq) return;
#pragma unroll
  for (int t = 0; t < VPL; ++t) {
    int64_t c = lane + 32 * t;
    if (c < d.D) dq[row * d.D + c] = cuda::from_c<D>(acc[t]);
  }
}

// dk and dv of each key row, over the queries of every head that reads its kv head.
template <typename D, typename A, int VPL>
__global__ void attn_bwd_dkv_kernel(const D* q, const D* k, const D* v, MaskView mask, const D* dout, const A* lse,
                                    const A* delta, D* dk, D* dv, Dims d) {
  extern __shared__ unsigned char smem_raw[];
  A* k_s = reinterpret_cast<A*>(smem_raw);  // [kRows][D]
  A* v_s = k_s + kRows * d.D;               // [kRows][Dv]
  A* q_s = v_s + kRows * d.Dv;              // [kTile][D + 1]
  A* do_s = q_s + kTile * (d.D + 1);        // [kTile][Dv + 1]
  A* lse_s = do_s + kTile * (d.Dv + 1);     // [kTile]
  A* delta_s = lse_s + kTile;               // [kTile]
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t bhk = blockIdx.y, b = bhk / d.Hkv, hk = bhk % d.Hkv;
  int64_t j0 = int64_t(blockIdx.x) * kRows, j = j0 + w, krow_index = bhk * d.Tk + j;
  load_rows(k_s, int(d.D), k + bhk * d.Tk * d.D, j0, kRows, d.Tk, d.D);
  load_rows(v_s, int(d.Dv), v + bhk * d.Tk * d.Dv, j0, kRows, d.Tk, d.Dv);
  const A* krow = k_s + w * d.D;
  const A* vrow = v_s + w * d.Dv;
  // The first query that sees key j0 (causal): i >= j0 - (Tk - Tq).
  int64_t i_begin = d.causal ? max64(0, j0 - (d.Tk - d.Tq)) / kTile * kTile : 0;
  A acc_k[VPL], acc_v[VPL];
#pragma unroll
  for (int t = 0; t < VPL; ++t) acc_k[t] = acc_v[t] = 0;
  for (int64_t g = 0; g < d.group; ++g) {
    int64_t h = hk * d.group + g, bh = b * d.Hq + h;
    for (int64_t i0 = i_begin; i0 < d.Tq; i0 += kTile) {
      __syncthreads();
      load_rows(q_s, int(d.D + 1), q + bh * d.Tq * d.D, i0, kTile, d.Tq, d.D);
      load_rows(do_s, int(d.Dv + 1), dout + bh * d.Tq * d.Dv, i0, kTile, d.Tq, d.Dv);
      if (threadIdx.x < kTile) {
        int64_t r = i0 + threadIdx.x;
        lse_s[threadIdx.x] = r < d.Tq ? lse[bh * d.Tq + r] : -A(INFINITY);
        delta_s[threadIdx.x] = r < d.Tq ? delta[bh * d.Tq + r] : A(0);
      }
      __syncthreads();
      if (j >= d.Tk) continue;
      int64_t i = i0 + lane;
      A p = 0, ds = 0;
      if (i < d.Tq && visible(d, i, j) && lse_s[lane] != -A(INFINITY)) {
        const A* qrow = q_s + lane * (d.D + 1);
        const A* dorow = do_s + lane * (d.Dv + 1);
        A dot = 0, dp = 0;
        for (int64_t c = 0; c < d.D; ++c) dot += qrow[c] * krow[c];
        for (int64_t c = 0; c < d.Dv; ++c) dp += dorow[c] * vrow[c];
        A s = dot * A(d.scale) + A(mask.at(b, h, i, j));
        p = s == -A(INFINITY) ? A(0) : exp(s - lse_s[lane]);
        ds = p * (dp - delta_s[lane]) * A(d.scale);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        A pi = __shfl_sync(0xffffffffu, p, ii);
        A dsi = __shfl_sync(0xffffffffu, ds, ii);
        if (pi == A(0) && dsi == A(0)) continue;
        const A* qr = q_s + ii * (d.D + 1);
        const A* dr = do_s + ii * (d.Dv + 1);
#pragma unroll
        for (int t = 0; t < VPL; ++t) {
          int64_t c = lane + 32 * t;
          if (c < d.D) acc_k[t] += dsi * qr[c];
          if (c < d.Dv) acc_v[t] += pi * dr[c];
        }
      }
    }
  }
  if (j >= d.Tk) return;
#pragma unroll
  for (int t = 0; t < VPL; ++t) {
    int64_t c = lane + 32 * t;
    if (c < d.D) dk[krow_index * d.D + c] = cuda::from_c<D>(acc_k[t]);
    if (c < d.Dv) dv[krow_index * d.Dv + c] = cuda::from_c<D>(acc_v[t]);
  }
}

Dims dims_of(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
  return {q.shape(0), q.shape(1), k.shape(1), q.shape(2), k.shape(2), q.shape(3), v.shape(3), q.shape(1) / k.shape(1),
          scale, causal};
}

MaskView mask_view(const std::vector<Tensor>& in, bool has_mask) {
  MaskView m;
  if (!has_mask) return m;
  const Tensor& mask = in[3];
  m.p = static_cast<const float*>(mask.data_ptr());
  m.s0 = mask.strides()[0];
  m.s1 = mask.strides()[1];
  m.s2 = mask.strides()[2];
  m.s3 = mask.strides()[3];
  return m;
}

// Calls f.template operator()<VPL>() with VPL = features per lane covering `features`.
template <class F>
void dispatch_vpl(int64_t features, F&& f) {
  if (features <= 64) f.template operator()<2>();
  else if (features <= 128) f.template operator()<4>();
  else if (features <= 256) f.template operator()<8>();
  else fail("scaled_dot_product_attention: head dims above 256 are not supported on CUDA, got ", features);
}

template <class Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  WICK_CHECK(bytes <= 227 * 1024, "scaled_dot_product_attention: head dims too large for shared memory (", bytes,
             " bytes)");
  if (bytes > 48 * 1024)
    WICK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

template <typename T, typename A>
void run_forward(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, T* out, A* lse, const Dims& d,
                 int device) {
  using D = cuda::dev_t<T>;
  if (d.B * d.Hq * d.Tq == 0) return;
  size_t smem = sizeof(A) * size_t(kRows * d.D + kTile * (d.D + 1) + kTile * d.Dv);
  dim3 grid(unsigned((d.Tq + kRows - 1) / kRows), unsigned(d.B * d.Hq));
  dispatch_vpl(d.Dv, [&]<int VPL>() {
    auto kernel = attn_fwd_kernel<D, A, VPL>;
    set_smem(kernel, smem);
    kernel<<<grid, kRows * 32, smem, cuda::stream(device)>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                                              reinterpret_cast<D*>(out), lse, d);
    WICK_CUDA_LAUNCH_CHECK("attn_fwd_kernel");
  });
}


// ---------------------------------------------------------------- tensor-core forward (bf16/f16)
// A block of 4 warps takes 64 queries (16 per warp) of one (batch, head) and walks K/V in tiles of
// 64 keys. S = Q K^T and O += P V run on tensor cores (WMMA 16x16x16, f32 accumulation); the
// online softmax runs on S in shared memory, two lanes per query row; O stays in shared memory in
// f32 so its rows can be rescaled.
constexpr int kTcQueries = 64, kTcKeys = 64, kTcWarps = 4;

struct TcLayout {
  int ldq, ldk, ldv, lds, ldp, ldo;
  size_t q, k, v, s, p, o, total;  // byte offsets of each region, and the total
};
template <typename D>
TcLayout tc_layout(int64_t dh, int64_t dv) {
  TcLayout l;
  l.ldq = l.ldk = int(dh) + 8;
  l.ldv = int(dv) + 8;
  l.lds = kTcKeys + 4;
  l.ldp = kTcKeys + 8;
  l.ldo = int(dv) + 4;
  size_t at = 0;
  auto take = [&](size_t bytes) {
    size_t here = at;
    at += (bytes + 127) / 128 * 128;
    return here;
  };
  l.q = take(sizeof(D) * kTcQueries * l.ldq);
  l.k = take(sizeof(D) * kTcKeys * l.ldk);
  l.v = take(sizeof(D) * kTcKeys * l.ldv);
  l.s = take(sizeof(float) * kTcWarps * 16 * l.lds);
  l.p = take(sizeof(D) * kTcWarps * 16 * l.ldp);
  l.o = take(sizeof(float) * kTcWarps * 16 * l.ldo);
  l.total = at;
  return l;
}

// Loads rows [r0, r0 + n) of a [rows_total, cols] matrix into shared memory (row pitch ld), 16
// bytes at a time (cols and ld are multiples of 16 and the source is 16-byte aligned), with zeros
// past the end.
template <typename D>
__device__ void tc_load_rows(D* dst, int ld, const D* src, int64_t r0, int n, int64_t rows_total, int64_t cols) {
  constexpr int kVec = 16 / sizeof(D);
  int64_t chunks = cols / kVec;
  for (int64_t e = threadIdx.x; e < int64_t(n) * chunks; e += blockDim.x) {
    int64_t r = e / chunks, c = (e % chunks) * kVec;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows_total) val = *reinterpret_cast<const uint4*>(src + (r0 + r) * cols + c);
    *reinterpret_cast<uint4*>(dst + r * ld + c) = val;
  }
}

template <typename D>
__global__ void __launch_bounds__(kTcWarps * 32) attn_fwd_tc_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                    D* out, float* lse, Dims d, TcLayout l) {
  using namespace nvcuda;
  extern __shared__ __align__(128) unsigned char tc_smem[];
  D* q_s = reinterpret_cast<D*>(tc_smem + l.q);
  D* k_s = reinterpret_cast<D*>(tc_smem + l.k);
  D* v_s = reinterpret_cast<D*>(tc_smem + l.v);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float* s_w = reinterpret_cast<float*>(tc_smem + l.s) + w * 16 * l.lds;
  D* p_w = reinterpret_cast<D*>(tc_smem + l.p) + w * 16 * l.ldp;
  float* o_w = reinterpret_cast<float*>(tc_smem + l.o) + w * 16 * l.ldo;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group;
  int64_t q0 = int64_t(blockIdx.x) * kTcQueries;
  const D* kh = k + (b * d.Hkv + hk) * d.Tk * d.D;
  const D* vh = v + (b * d.Hkv + hk) * d.Tk * d.Dv;
  tc_load_rows(q_s, l.ldq, q + bh * d.Tq * d.D, q0, kTcQueries, d.Tq, d.D);
  for (int e = lane; e < 16 * l.ldo; e += 32) o_w[e] = 0.0f;
  // Two lanes per query row: lane 2r and 2r + 1 hold row r's statistics and split its columns.
  int r = lane >> 1, half = lane & 1;
  int64_t i = q0 + w * 16 + r;
  float m = -INFINITY, lsum = 0.0f;
  int64_t q_last = min64(q0 + kTcQueries, d.Tq) - 1;
  int64_t kv_end = d.causal ? min64(d.Tk, q_last + (d.Tk - d.Tq) + 1) : d.Tk;
  bool warp_active = q0 + w * 16 < d.Tq;
  int ksteps = int(d.D / 16), vtiles = int(d.Dv / 16);
  for (int64_t j0 = 0; j0 < kv_end; j0 += kTcKeys) {
    __syncthreads();
    tc_load_rows(k_s, l.ldk, kh, j0, kTcKeys, d.Tk, d.D);
    tc_load_rows(v_s, l.ldv, vh, j0, kTcKeys, d.Tk, d.Dv);
    __syncthreads();
    if (!warp_active) continue;
    // S = Q_w K^T (16 x 64).
    for (int n = 0; n < kTcKeys / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < ksteps; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, D, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, D, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, q_s + (w * 16) * l.ldq + kk * 16, l.ldq);
        wmma::load_matrix_sync(fb, k_s + (n * 16) * l.ldk + kk * 16, l.ldk);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(s_w + n * 16, acc, l.lds, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax of row r over this tile's 64 keys (32 per lane).
    float tile_max = -INFINITY;
    float* srow = s_w + r * l.lds + half * 32;
    for (int c = 0; c < 32; ++c) {
      int64_t j = j0 + half * 32 + c;
      float sv = -INFINITY;
      if (i < d.Tq && visible(d, i, j)) sv = srow[c] * float(d.scale) + mask.at(b, h, i, j);
      srow[c] = sv;
      tile_max = fmaxf(tile_max, sv);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    float m_new = fmaxf(m, tile_max);
    float alpha = m_new == -INFINITY ? 1.0f : (m == -INFINITY ? 0.0f : __expf(m - m_new));
    float psum = 0.0f;
    D* prow = p_w + r * l.ldp + half * 32;
    for (int c = 0; c < 32; ++c) {
      float pv = (m_new == -INFINITY || srow[c] == -INFINITY) ? 0.0f : __expf(srow[c] - m_new);
      psum += pv;
      prow[c] = cuda::from_c<D>(pv);
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    lsum = lsum * alpha + psum;
    m = m_new;
    float* orow = o_w + r * l.ldo;
    for (int64_t c = half; c < d.Dv; c += 2) orow[c] *= alpha;
    __syncwarp();
    // O_w += P V (16 x Dv).
    for (int n = 0; n < vtiles; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, o_w + n * 16, l.ldo, wmma::mem_row_major);
      for (int kk = 0; kk < kTcKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, D, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, D, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, p_w + kk * 16, l.ldp);
        wmma::load_matrix_sync(fb, v_s + (kk * 16) * l.ldv + n * 16, l.ldv);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(o_w + n * 16, acc, l.ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (!warp_active || i >= d.Tq) return;
  if (lse != nullptr && half == 0) lse[bh * d.Tq + i] = lsum > 0.0f ? m + logf(lsum) : -INFINITY;
  if (out == nullptr) return;
  const float* orow = o_w + r * l.ldo;
  D* dst = out + (bh * d.Tq + i) * d.Dv;
  for (int64_t c = half; c < d.Dv; c += 2) dst[c] = cuda::from_c<D>(lsum > 0.0f ? orow[c] / lsum : 0.0f);
}

// Whether the tensor-core forward applies to these shapes (and 16-byte aligned data).
bool use_tensor_cores(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v) {
  auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  return cuda::attention_tensor_cores() && d.Tq >= kTcQueries && d.D % 16 == 0 && d.Dv % 16 == 0 && d.D <= 128 &&
         d.Dv <= 128 && d.D > 0 && d.Dv > 0 && aligned(q) && aligned(k) && aligned(v);
}

// `out` null: only the per-row logsumexp `lse` (for the backward); `lse` null: only the output.
template <typename T>
void run_forward_tc(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, T* out, float* lse, const Dims& d,
                    int device) {
  using D = cuda::dev_t<T>;
  TcLayout l = tc_layout<D>(d.D, d.Dv);
  dim3 grid(unsigned((d.Tq + kTcQueries - 1) / kTcQueries), unsigned(d.B * d.Hq));
  auto kernel = attn_fwd_tc_kernel<D>;
  set_smem(kernel, l.total);
  kernel<<<grid, kTcWarps * 32, l.total, cuda::stream(device)>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v),
                                                                mask, reinterpret_cast<D*>(out), lse, d, l);
  WICK_CUDA_LAUNCH_CHECK("attn_fwd_tc_kernel");
}

// ---------------------------------------------------------------- tensor-core backward (bf16/f16)
// For head dims D = Dv = HD (64 or 128), FlashAttention-2's split without atomics:
// (1) lse from the tensor-core forward; (2) delta = rowsum(dO * O), a warp per row; (3) dq: a block
// of 4 warps takes 64 queries (16 per warp) of one (batch, head) and walks key tiles of 64:
// S = Q K^T and dP = dO V^T on tensor cores, then in shared memory P = exp(S * scale + mask - lse)
// and dS = P * (dP - delta) * scale (stored in the data type), then dQ += dS K, kept in WMMA
// accumulators; (4) dk, dv: a block takes 64 keys (16 per warp) of one (batch, kv head) and walks
// the query tiles of every head of its group: S^T = K Q^T, dP^T = V dO^T, dV += P^T dO,
// dK += dS^T Q. Two lanes per row do the elementwise part, 32 columns each.
constexpr int kBwdTile = 64;

struct TcBwdLayout {
  int ld, lds, ldp;  // pitches: data tiles, f32 score tiles, data-type P/dS tiles
  size_t t0, t1, t2, t3, warp_f32, warp_d, rows, total;
  size_t warp_f32_floats;
};
template <typename D>
TcBwdLayout tc_bwd_layout(int hd) {
  TcBwdLayout l;
  l.ld = hd + 8;
  l.lds = kBwdTile + 4;
  l.ldp = kBwdTile + 8;
  // Per warp: two f32 16 x 64 tiles (S and dP), reused at the end as a 16 x (HD + 4) f32 tile.
  l.warp_f32_floats = std::max<size_t>(size_t(2) * 16 * l.lds, size_t(16) * (hd + 4));
  size_t at = 0;
  auto take = [&](size_t bytes) {
    size_t here = at;
    at += (bytes + 127) / 128 * 128;
    return here;
  };
  l.t0 = take(sizeof(D) * kBwdTile * l.ld);
  l.t1 = take(sizeof(D) * kBwdTile * l.ld);
  l.t2 = take(sizeof(D) * kBwdTile * l.ld);
  l.t3 = take(sizeof(D) * kBwdTile * l.ld);
  l.warp_f32 = take(sizeof(float) * kTcWarps * l.warp_f32_floats);
  l.warp_d = take(sizeof(D) * kTcWarps * 2 * 16 * l.ldp);
  l.rows = take(sizeof(float) * 2 * kBwdTile);
  l.total = at;
  return l;
}

// C (16 x 64, f32, pitch ldc) = A B^T: A is 16 rows of HD at a (pitch lda), B is 64 rows of HD at b.
template <typename D, int HD>
__device__ __forceinline__ void tc_rows_by_rows(const D* a, int lda, const D* b, int ldb, float* c, int ldc) {
  using namespace nvcuda;
#pragma unroll
  for (int n = 0; n < kBwdTile / 16; ++n) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, D, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, D, wmma::col_major> fb;
      wmma::load_matrix_sync(fa, a + kk * 16, lda);
      wmma::load_matrix_sync(fb, b + (n * 16) * ldb + kk * 16, ldb);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + n * 16, acc, ldc, wmma::mem_row_major);
  }
}

template <typename D, int HD>
using TcAcc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>[HD / 16];

// acc (16 x HD) += A B: A is 16 x 64 at a (pitch lda), B is 64 rows of HD at b (pitch ldb).
template <typename D, int HD>
__device__ __forceinline__ void tc_accumulate(TcAcc<D, HD>& acc, const D* a, int lda, const D* b, int ldb) {
  using namespace nvcuda;
#pragma unroll
  for (int kk = 0; kk < kBwdTile / 16; ++kk) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, D, wmma::row_major> fa;
    wmma::load_matrix_sync(fa, a + kk * 16, lda);
#pragma unroll
    for (int n = 0; n < HD / 16; ++n) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, D, wmma::row_major> fb;
      wmma::load_matrix_sync(fb, b + (kk * 16) * ldb + n * 16, ldb);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// Writes the 16 x HD accumulator as rows row0.. of dst (pitch HD), through the warp's f32 scratch.
template <typename D, int HD>
__device__ __forceinline__ void tc_store_rows(TcAcc<D, HD>& acc, float* scratch, D* dst, int64_t row0, int64_t rows_total) {
  using namespace nvcuda;
  constexpr int ld = HD + 4;
  __syncwarp();
#pragma unroll
  for (int n = 0; n < HD / 16; ++n) wmma::store_matrix_sync(scratch + n * 16, acc[n], ld, wmma::mem_row_major);
  __syncwarp();
  int lane = threadIdx.x & 31;
  for (int e = lane; e < 16 * HD; e += 32) {
    int r = e / HD, c = e % HD;
    if (row0 + r < rows_total) dst[(row0 + r) * HD + c] = cuda::from_c<D>(scratch[r * ld + c]);
  }
}

template <typename D>
__global__ void attn_bwd_delta_kernel(const D* o, const D* dout, float* delta, int64_t rows, int64_t dv) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (row >= rows) return;
  int lane = threadIdx.x & 31;
  float acc = 0.0f;
  for (int64_t c = lane; c < dv; c += 32)
    acc += float(cuda::to_c(o[row * dv + c])) * float(cuda::to_c(dout[row * dv + c]));
  acc = cuda::warp_sum(acc);
  if (lane == 0) delta[row] = acc;
}

template <typename D, int HD>
__global__ void __launch_bounds__(kTcWarps * 32) attn_bwd_dq_tc_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                       const D* dout, const float* lse, const float* delta,
                                                                       D* dq, Dims d, TcBwdLayout l) {
  extern __shared__ __align__(128) unsigned char tc_smem[];
  D* q_s = reinterpret_cast<D*>(tc_smem + l.t0);
  D* do_s = reinterpret_cast<D*>(tc_smem + l.t1);
  D* k_s = reinterpret_cast<D*>(tc_smem + l.t2);
  D* v_s = reinterpret_cast<D*>(tc_smem + l.t3);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float* s_w = reinterpret_cast<float*>(tc_smem + l.warp_f32) + w * l.warp_f32_floats;
  float* dp_w = s_w + 16 * l.lds;
  D* ds_w = reinterpret_cast<D*>(tc_smem + l.warp_d) + w * 2 * 16 * l.ldp;
  int64_t bh = blockIdx.y, b = bh / d.Hq, h = bh % d.Hq, hk = h / d.group;
  int64_t q0 = int64_t(blockIdx.x) * kBwdTile;
  const D* kh = k + (b * d.Hkv + hk) * d.Tk * HD;
  const D* vh = v + (b * d.Hkv + hk) * d.Tk * HD;
  tc_load_rows(q_s, l.ld, q + bh * d.Tq * HD, q0, kBwdTile, d.Tq, HD);
  tc_load_rows(do_s, l.ld, dout + bh * d.Tq * HD, q0, kBwdTile, d.Tq, HD);
  int r = lane >> 1, half = lane & 1;
  int64_t i = q0 + w * 16 + r;
  float row_lse = i < d.Tq ? lse[bh * d.Tq + i] : -INFINITY;
  float row_delta = i < d.Tq ? delta[bh * d.Tq + i] : 0.0f;
  int64_t q_last = min64(q0 + kBwdTile, d.Tq) - 1;
  int64_t kv_end = d.causal ? min64(d.Tk, q_last + (d.Tk - d.Tq) + 1) : d.Tk;
  bool warp_active = q0 + w * 16 < d.Tq;
  TcAcc<D, HD> acc;
#pragma unroll
  for (int n = 0; n < HD / 16; ++n) nvcuda::wmma::fill_fragment(acc[n], 0.0f);
  for (int64_t j0 = 0; j0 < kv_end; j0 += kBwdTile) {
    __syncthreads();
    tc_load_rows(k_s, l.ld, kh, j0, kBwdTile, d.Tk, HD);
    tc_load_rows(v_s, l.ld, vh, j0, kBwdTile, d.Tk, HD);
    __syncthreads();
    if (!warp_active) continue;
    tc_rows_by_rows<D, HD>(q_s + (w * 16) * l.ld, l.ld, k_s, l.ld, s_w, l.lds);
    tc_rows_by_rows<D, HD>(do_s + (w * 16) * l.ld, l.ld, v_s, l.ld, dp_w, l.lds);
    __syncwarp();
    const float* srow = s_w + r * l.lds + half * 32;
    const float* dprow = dp_w + r * l.lds + half * 32;
    D* dsrow = ds_w + r * l.ldp + half * 32;
    for (int c = 0; c < 32; ++c) {
      int64_t j = j0 + half * 32 + c;
      float ds = 0.0f;
      if (i < d.Tq && row_lse != -INFINITY && visible(d, i, j)) {
        float sv = srow[c] * float(d.scale) + mask.at(b, h, i, j);
        float p = sv == -INFINITY ? 0.0f : __expf(sv - row_lse);
        ds = p * (dprow[c] - row_delta) * float(d.scale);
      }
      dsrow[c] = cuda::from_c<D>(ds);
    }
    __syncwarp();
    tc_accumulate<D, HD>(acc, ds_w, l.ldp, k_s, l.ld);
  }
  if (!warp_active) return;
  tc_store_rows<D, HD>(acc, s_w, dq + bh * d.Tq * HD, q0 + w * 16, d.Tq);
}

template <typename D, int HD>
__global__ void __launch_bounds__(kTcWarps * 32) attn_bwd_dkv_tc_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                        const D* dout, const float* lse,
                                                                        const float* delta, D* dk, D* dv, Dims d,
                                                                        TcBwdLayout l) {
  extern __shared__ __align__(128) unsigned char tc_smem[];
  D* k_s = reinterpret_cast<D*>(tc_smem + l.t0);
  D* v_s = reinterpret_cast<D*>(tc_smem + l.t1);
  D* q_s = reinterpret_cast<D*>(tc_smem + l.t2);
  D* do_s = reinterpret_cast<D*>(tc_smem + l.t3);
  float* lse_s = reinterpret_cast<float*>(tc_smem + l.rows);
  float* delta_s = lse_s + kBwdTile;
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  float* st_w = reinterpret_cast<float*>(tc_smem + l.warp_f32) + w * l.warp_f32_floats;
  float* dpt_w = st_w + 16 * l.lds;
  D* pt_w = reinterpret_cast<D*>(tc_smem + l.warp_d) + w * 2 * 16 * l.ldp;
  D* dst_w = pt_w + 16 * l.ldp;
  int64_t bhk = blockIdx.y, b = bhk / d.Hkv, hk = bhk % d.Hkv;
  int64_t j0 = int64_t(blockIdx.x) * kBwdTile;
  tc_load_rows(k_s, l.ld, k + bhk * d.Tk * HD, j0, kBwdTile, d.Tk, HD);
  tc_load_rows(v_s, l.ld, v + bhk * d.Tk * HD, j0, kBwdTile, d.Tk, HD);
  int r = lane >> 1, half = lane & 1;
  int64_t j = j0 + w * 16 + r;
  bool warp_active = j0 + w * 16 < d.Tk;
  // The first query that sees key j0 (causal): i >= j0 - (Tk - Tq).
  int64_t i_begin = d.causal ? max64(0, j0 - (d.Tk - d.Tq)) / kBwdTile * kBwdTile : 0;
  TcAcc<D, HD> acc_k, acc_v;
#pragma unroll
  for (int n = 0; n < HD / 16; ++n) {
    nvcuda::wmma::fill_fragment(acc_k[n], 0.0f);
    nvcuda::wmma::fill_fragment(acc_v[n], 0.0f);
  }
  for (int64_t g = 0; g < d.group; ++g) {
    int64_t h = hk * d.group + g, bh = b * d.Hq + h;
    for (int64_t i0 = i_begin; i0 < d.Tq; i0 += kBwdTile) {
      __syncthreads();
      tc_load_rows(q_s, l.ld, q + bh * d.Tq * HD, i0, kBwdTile, d.Tq, HD);
      tc_load_rows(do_s, l.ld, dout + bh * d.Tq * HD, i0, kBwdTile, d.Tq, HD);
      if (threadIdx.x < kBwdTile) {
        int64_t row = i0 + threadIdx.x;
        lse_s[threadIdx.x] = row < d.Tq ? lse[bh * d.Tq + row] : -INFINITY;
        delta_s[threadIdx.x] = row < d.Tq ? delta[bh * d.Tq + row] : 0.0f;
      }
      __syncthreads();
      if (!warp_active) continue;
      tc_rows_by_rows<D, HD>(k_s + (w * 16) * l.ld, l.ld, q_s, l.ld, st_w, l.lds);
      tc_rows_by_rows<D, HD>(v_s + (w * 16) * l.ld, l.ld, do_s, l.ld, dpt_w, l.lds);
      __syncwarp();
      const float* srow = st_w + r * l.lds + half * 32;
      const float* dprow = dpt_w + r * l.lds + half * 32;
      D* prow = pt_w + r * l.ldp + half * 32;
      D* dsrow = dst_w + r * l.ldp + half * 32;
      for (int c = 0; c < 32; ++c) {
        int col = half * 32 + c;
        int64_t i = i0 + col;
        float p = 0.0f, ds = 0.0f;
        if (i < d.Tq && lse_s[col] != -INFINITY && visible(d, i, j)) {
          float sv = srow[c] * float(d.scale) + mask.at(b, h, i, j);
          p = sv == -INFINITY ? 0.0f : __expf(sv - lse_s[col]);
          ds = p * (dprow[c] - delta_s[col]) * float(d.scale);
        }
        prow[c] = cuda::from_c<D>(p);
        dsrow[c] = cuda::from_c<D>(ds);
      }
      __syncwarp();
      tc_accumulate<D, HD>(acc_v, pt_w, l.ldp, do_s, l.ld);
      tc_accumulate<D, HD>(acc_k, dst_w, l.ldp, q_s, l.ld);
    }
  }
  if (!warp_active) return;
  tc_store_rows<D, HD>(acc_k, st_w, dk + bhk * d.Tk * HD, j0 + w * 16, d.Tk);
  tc_store_rows<D, HD>(acc_v, st_w, dv + bhk * d.Tk * HD, j0 + w * 16, d.Tk);
}

// Whether the tensor-core backward applies: the forward's conditions, equal head dims of 64 or 128,
// and aligned O and dO.
bool use_tensor_core_backward(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                              const Tensor& dout) {
  auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  return use_tensor_cores(d, q, k, v) && d.D == d.Dv && (d.D == 64 || d.D == 128) && aligned(o) && aligned(dout);
}

template <typename T, int HD>
void run_backward_tc(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, const Tensor& o,
                     const Tensor& dout, float* lse, float* delta, T* dq, T* dk, T* dv, const Dims& d, int device) {
  using D = cuda::dev_t<T>;
  cudaStream_t s = cuda::stream(device);
  run_forward_tc<T>(q, k, v, mask, nullptr, lse, d, device);
  int64_t rows = d.B * d.Hq * d.Tq;
  attn_bwd_delta_kernel<D><<<unsigned((rows + 7) / 8), 256, 0, s>>>(cuda::cptr<T>(o), cuda::cptr<T>(dout), delta, rows,
                                                                     d.Dv);
  WICK_CUDA_LAUNCH_CHECK("attn_bwd_delta_kernel");
  TcBwdLayout l = tc_bwd_layout<D>(HD);
  auto dq_kernel = attn_bwd_dq_tc_kernel<D, HD>;
  set_smem(dq_kernel, l.total);
  dim3 grid_q(unsigned((d.Tq + kBwdTile - 1) / kBwdTile), unsigned(d.B * d.Hq));
  dq_kernel<<<grid_q, kTcWarps * 32, l.total, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                                  cuda::cptr<T>(dout), lse, delta, reinterpret_cast<D*>(dq), d, l);
  WICK_CUDA_LAUNCH_CHECK("attn_bwd_dq_tc_kernel");
  if (d.Tk == 0) return;
  auto kv_kernel = attn_bwd_dkv_tc_kernel<D, HD>;
  set_smem(kv_kernel, l.total);
  dim3 grid_k(unsigned((d.Tk + kBwdTile - 1) / kBwdTile), unsigned(d.B * d.Hkv));
  kv_kernel<<<grid_k, kTcWarps * 32, l.total, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                                  cuda::cptr<T>(dout), lse, delta, reinterpret_cast<D*>(dk),
                                                  reinterpret_cast<D*>(dv), d, l);
  WICK_CUDA_LAUNCH_CHECK("attn_bwd_dkv_tc_kernel");
}

}  // namespace

void Attention::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor q = cuda::contiguous_on_device(in[0]), k = cuda::contiguous_on_device(in[1]), v = cuda::contiguous_on_device(in[2]);
  out.allocate();
  Dims d = dims_of(q, k, v, scale_, causal_);
  MaskView mask = mask_view(in, has_mask_);
  int device = out.device().index;
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using A = cuda::dacc_t<cuda::dev_t<T>>;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      if (d.B * d.Hq * d.Tq > 0 && use_tensor_cores(d, q, k, v)) {
        run_forward_tc<T>(q, k, v, mask, static_cast<T*>(out.data_ptr()), nullptr, d, device);
        return;
      }
    }
    run_forward<T, A>(q, k, v, mask, static_cast<T*>(out.data_ptr()), static_cast<A*>(nullptr), d, device);
  });
}

void AttentionBackward::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor q = cuda::contiguous_on_device(in[0]), k = cuda::contiguous_on_device(in[1]), v = cuda::contiguous_on_device(in[2]);
  size_t at = has_mask_ ? 4 : 3;
  Tensor o = cuda::contiguous_on_device(in[at]), dout = cuda::contiguous_on_device(in[at + 1]);
  out.allocate();
  Dims d = dims_of(q, k, v, scale_, causal_);
  MaskView mask = mask_view(in, has_mask_);
  int device = out.device().index;
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = cuda::dacc_t<D>;
    Dtype acc_dtype = std::is_same_v<A, double> ? Dtype::F64 : Dtype::F32;
    int64_t rows = d.B * d.Hq * d.Tq;
    Tensor lse = Tensor::empty({rows}, acc_dtype, out.device());
    Tensor delta = Tensor::empty({rows}, acc_dtype, out.device());
    A* plse = static_cast<A*>(lse.data_ptr());
    A* pdelta = static_cast<A*>(delta.data_ptr());
    D* dq = cuda::mptr<T>(out);
    D* dk = dq + q.numel();
    D* dv = dk + k.numel();
    cudaStream_t s = cuda::stream(device);
    if (k.numel() + v.numel() > 0 && rows == 0) {
      // No queries: the key and value gradients are zero.
      WICK_CUDA_CHECK(cudaMemsetAsync(dk, 0, size_t(k.numel() + v.numel()) * sizeof(D), s));
      return;
    }
    if (rows == 0) return;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      if (use_tensor_core_backward(d, q, k, v, o, dout)) {
        T* tq = static_cast<T*>(out.data_ptr());
        if (d.D == 64)
          run_backward_tc<T, 64>(q, k, v, mask, o, dout, plse, pdelta, tq, tq + q.numel(), tq + q.numel() + k.numel(), d,
                                 device);
        else
          run_backward_tc<T, 128>(q, k, v, mask, o, dout, plse, pdelta, tq, tq + q.numel(), tq + q.numel() + k.numel(), d,
                                  device);
        return;
      }
    }
    run_forward<T, A>(q, k, v, mask, static_cast<T*>(nullptr), plse, d, device);
    dispatch_vpl(std::max(d.D, d.Dv), [&]<int VPL>() {
      size_t smem_dq = sizeof(A) * size_t(kRows * d.D + kRows * d.Dv + kTile * (d.D + 1) + kTile * (d.Dv + 1));
      auto dq_kernel = attn_bwd_dq_kernel<D, A, VPL>;
      set_smem(dq_kernel, smem_dq);
      dim3 grid_q(unsigned((d.Tq + kRows - 1) / kRows), unsigned(d.B * d.Hq));
      dq_kernel<<<grid_q, kRows * 32, smem_dq, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                                    cuda::cptr<T>(o), cuda::cptr<T>(dout), plse, pdelta, dq, d);
      WICK_CUDA_LAUNCH_CHECK("attn_bwd_dq_kernel");
      if (d.Tk == 0) return;
      size_t smem_kv = sizeof(A) * size_t(kRows * d.D + kRows * d.Dv + kTile * (d.D + 1) + kTile * (d.Dv + 1) + 2 * kTile);
      auto kv_kernel = attn_bwd_dkv_kernel<D, A, VPL>;
      set_smem(kv_kernel, smem_kv);
      dim3 grid_k(unsigned((d.Tk + kRows - 1) / kRows), unsigned(d.B * d.Hkv));
      kv_kernel<<<grid_k, kRows * 32, smem_kv, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), mask,
                                                    cuda::cptr<T>(dout), plse, pdelta, dk, dv, d);
      WICK_CUDA_LAUNCH_CHECK("attn_bwd_dkv_kernel");
    });
  });
}

}  // namespace wick
