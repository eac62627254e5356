// CUDA scaled dot-product attention, forward and backward (flash-style: scores are never stored).
// Forward: a block holds 8 query rows (one warp each) of one (batch, head) and walks K/V in tiles
// of 32 keys kept in shared memory; lane j scores key j of the tile, the warp keeps an online
// softmax and each lane accumulates Dv/32 output features. GQA reads kv head h / group directly.
// Backward (FlashAttention-2 split, no atomics): (1) the forward kernel's per-row logsumexp;
// (2) dq per query row, recomputing P per tile, and delta = rowsum(dO * O); (3) dk, dv per key row,
// walking the queries of every head of its group. bf16/f16 at head dims 64 and 128 run on tensor
// cores in attention_flash.cu (use_flash, use_flash_backward); other head dims up to 128 have the
// WMMA forward below (use_tensor_cores). What both files share is in attention_common.cuh.
#include "wick/backend/cuda/attention_common.cuh"

namespace wick {

namespace {

using namespace cuda::attention;

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

template <typename D>
__global__ void __launch_bounds__(kTcWarps * 32) attn_fwd_tc_kernel(const D* q, const D* k, const D* v, MaskView mask,
                                                                    D* out, Dims d, TcLayout l) {
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
  const float* orow = o_w + r * l.ldo;
  D* dst = out + (bh * d.Tq + i) * d.Dv;
  for (int64_t c = half; c < d.Dv; c += 2) dst[c] = cuda::from_c<D>(lsum > 0.0f ? orow[c] / lsum : 0.0f);
}

template <typename T>
void run_forward_tc(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, T* out, const Dims& d,
                    int device) {
  using D = cuda::dev_t<T>;
  TcLayout l = tc_layout<D>(d.D, d.Dv);
  dim3 grid(unsigned((d.Tq + kTcQueries - 1) / kTcQueries), unsigned(d.B * d.Hq));
  auto kernel = attn_fwd_tc_kernel<D>;
  set_smem(kernel, l.total);
  kernel<<<grid, kTcWarps * 32, l.total, cuda::stream(device)>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v),
                                                                mask, reinterpret_cast<D*>(out), d, l);
  WICK_CUDA_LAUNCH_CHECK("attn_fwd_tc_kernel");
}

}  // namespace

namespace cuda::attention {

bool use_tensor_cores(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v) {
  auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  return cuda::attention_tensor_cores() && d.Tq >= kTcQueries && d.D % 16 == 0 && d.Dv % 16 == 0 && d.D <= 128 &&
         d.Dv <= 128 && d.D > 0 && d.Dv > 0 && aligned(q) && aligned(k) && aligned(v);
}

}  // namespace cuda::attention


void Attention::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Dims d = dims_of(in[0], in[1], in[2], scale_, causal_);
  MaskView mask = mask_view(in, has_mask_);
  int device = out.device().index;
  if (d.B * d.Hq * d.Tq > 0 && use_flash(d, in[0], in[1], in[2])) {
    // q, k, v are read where they lie (views of the projections). The output is laid out as
    // [B, Tq, Hq, Dv] (seen as [B, Hq, Tq, Dv]), so the heads joined back into rows for the output
    // projection are a view of it rather than a copy.
    Strides rows{d.Tq * d.Hq * d.Dv, d.Dv, d.Hq * d.Dv, 1};
    out.set_data(wick::allocate(size_t(out.numel()) * out.itemsize(), out.device()), rows, 0);
    // The backward of these kernels reads the rows' logsumexp: kept when a gradient will be taken.
    if (keep_lse_) lse_ = Tensor::empty({d.B * d.Hq * d.Tq}, Dtype::F32, out.device());
    flash_forward(in[0], in[1], in[2], mask, out.data_ptr(), RowsLayout{rows[0], rows[1], rows[2]},
                  keep_lse_ ? static_cast<float*>(lse_.data_ptr()) : nullptr, d, device);
    return;
  }
  Tensor q = cuda::contiguous_on_device(in[0]), k = cuda::contiguous_on_device(in[1]), v = cuda::contiguous_on_device(in[2]);
  out.allocate();
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using A = cuda::dacc_t<cuda::dev_t<T>>;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      if (d.B * d.Hq * d.Tq > 0 && use_tensor_cores(d, q, k, v)) {
        run_forward_tc<T>(q, k, v, mask, static_cast<T*>(out.data_ptr()), d, device);
        return;
      }
    }
    run_forward<T, A>(q, k, v, mask, static_cast<T*>(out.data_ptr()), static_cast<A*>(nullptr), d, device);
  });
}

void AttentionBackward::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  size_t at = has_mask_ ? 4 : 3;
  Dims d = dims_of(in[0], in[1], in[2], scale_, causal_);
  // The tensor-core kernels read every operand where it lies; the others take contiguous copies.
  bool flash = d.B * d.Hq * d.Tq > 0 && use_flash_backward(d, in[0], in[1], in[2], in[at], in[at + 1]);
  auto operand = [&](size_t i) { return flash ? in[i] : cuda::contiguous_on_device(in[i]); };
  Tensor q = operand(0), k = operand(1), v = operand(2), o = operand(at), dout = operand(at + 1);
  const Tensor& out = outs[0];  // dq; dk and dv are outs[1], outs[2]
  for (const Tensor& t : outs) t.allocate();
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
    D* dq = cuda::mptr<T>(outs[0]);
    D* dk = cuda::mptr<T>(outs[1]);
    D* dv = cuda::mptr<T>(outs[2]);
    cudaStream_t s = cuda::stream(device);
    if (k.numel() + v.numel() > 0 && rows == 0) {
      // No queries: the key and value gradients are zero.
      WICK_CUDA_CHECK(cudaMemsetAsync(dk, 0, size_t(k.numel()) * sizeof(D), s));
      WICK_CUDA_CHECK(cudaMemsetAsync(dv, 0, size_t(v.numel()) * sizeof(D), s));
      return;
    }
    if (rows == 0) return;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      if (flash) {
        // The forward's logsumexp when it kept it (same inputs, same kernels), else computed again.
        bool kept = lse_.defined() && lse_.numel() == rows && lse_.dtype() == Dtype::F32 && lse_.device() == out.device();
        const float* saved = kept ? static_cast<const float*>(lse_.data_ptr()) : nullptr;
        flash_backward(q, k, v, mask, o, dout, saved, plse, pdelta, outs[0].data_ptr(), outs[1].data_ptr(),
                       outs[2].data_ptr(), d, device);
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
