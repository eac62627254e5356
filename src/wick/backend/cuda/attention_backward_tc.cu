// The tensor-core (WMMA) backward of scaled dot-product attention for bf16/f16; attention.cu has
// the forward and the backward without tensor cores.
#include "wick/backend/cuda/attention_common.cuh"

namespace wick::cuda::attention {

namespace {

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

template <typename T, int HD>
void run_backward_tc(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, const Tensor& o,
                     const Tensor& dout, float* lse, float* delta, T* dq, T* dk, T* dv, const Dims& d, int device) {
  using D = cuda::dev_t<T>;
  cudaStream_t s = cuda::stream(device);
  forward_lse_tc(q, k, v, mask, lse, d, device);
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

bool use_tensor_core_backward(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                              const Tensor& dout) {
  auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  return use_tensor_cores(d, q, k, v) && d.D == d.Dv && (d.D == 64 || d.D == 128) && aligned(o) && aligned(dout);
}

void backward_tc(const Tensor& q, const Tensor& k, const Tensor& v, MaskView mask, const Tensor& o, const Tensor& dout,
                 float* lse, float* delta, void* dq, void* dk, void* dv, const Dims& d, int device) {
  auto run = [&]<typename T>() {
    if (d.D == 64)
      run_backward_tc<T, 64>(q, k, v, mask, o, dout, lse, delta, static_cast<T*>(dq), static_cast<T*>(dk),
                             static_cast<T*>(dv), d, device);
    else
      run_backward_tc<T, 128>(q, k, v, mask, o, dout, lse, delta, static_cast<T*>(dq), static_cast<T*>(dk),
                              static_cast<T*>(dv), d, device);
  };
  if (q.dtype() == Dtype::BF16) run.template operator()<bf16>();
  else if (q.dtype() == Dtype::F16) run.template operator()<f16>();
  else fail("scaled_dot_product_attention: the tensor-core backward takes bf16 or f16, got ", dtype_name(q.dtype()));
}

}  // namespace wick::cuda::attention
