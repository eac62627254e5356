// CUDA kernels of the fused row-wise primitives: softmax / log-softmax (online max and sum in one
// pass), LayerNorm (one-pass Welford statistics), RMSNorm (f32 statistics; f64 for f64 data) and
// RoPE. Rows of up to 1024 elements take one warp each, longer rows one block.
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

using cuda::dacc_t;
using cuda::MaxSum;

namespace {

constexpr int kWarpRowMax = 1024;  // rows up to this length are handled by one warp

// Combines a value over the threads of one row: a warp (TPR 32, several rows per block) or the
// whole block (one row per block).
template <int TPR, typename V, class F>
__device__ __forceinline__ V row_combine(V v, F f, V* scratch) {
  if constexpr (TPR == 32) {
    using cuda::shfl_xor_any;  // found with the overloads of V's own namespace (Welford)
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = f(v, shfl_xor_any(v, o));
    return v;
  } else {
    return cuda::block_combine(v, f, scratch);
  }
}

template <int TPR>
struct RowPos {
  int64_t row;
  int t;
  __device__ RowPos() {
    row = int64_t(blockIdx.x) * (blockDim.x / TPR) + threadIdx.x / TPR;
    t = threadIdx.x % TPR;
  }
};

template <typename A>
struct MergeMaxSum {
  __device__ MaxSum<A> operator()(MaxSum<A> a, MaxSum<A> b) const { return cuda::merge(a, b); }
};

template <typename D, typename A, int TPR>
__global__ void softmax_kernel(const D* x, D* y, int64_t rows, int64_t cols, bool log) {
  __shared__ MaxSum<A> scratch[32];
  RowPos<TPR> p;
  if (p.row >= rows) return;  // a whole warp (TPR 32) or block leaves together
  const D* xr = x + p.row * cols;
  D* yr = y + p.row * cols;
  MaxSum<A> ms{-A(INFINITY), A(0)};
  for (int64_t j = p.t; j < cols; j += TPR) ms = cuda::merge(ms, MaxSum<A>{cuda::to_acc<A>(xr[j]), A(1)});
  ms = row_combine<TPR>(ms, MergeMaxSum<A>{}, scratch);
  A m = ms.m == -A(INFINITY) ? A(0) : ms.m;  // an all -inf row gives NaN, as on the CPU
  A s = ms.s, lse = ::log(s);
  for (int64_t j = p.t; j < cols; j += TPR) {
    A v = cuda::to_acc<A>(xr[j]) - m;
    yr[j] = cuda::from_c<D>(log ? v - lse : ::exp(v) / s);
  }
}

// Welford statistics (count, mean, sum of squared deviations), mergeable across threads.
template <typename A>
struct Welford {
  A n, mean, m2;
};
template <typename A>
__device__ __forceinline__ Welford<A> shfl_xor_any(Welford<A> v, int o) {
  return {__shfl_xor_sync(0xffffffffu, v.n, o), __shfl_xor_sync(0xffffffffu, v.mean, o),
          __shfl_xor_sync(0xffffffffu, v.m2, o)};
}
template <typename A>
struct MergeWelford {
  __device__ Welford<A> operator()(Welford<A> a, Welford<A> b) const {
    A n = a.n + b.n;
    if (n == A(0)) return a;
    A delta = b.mean - a.mean, fb = b.n / n;
    return {n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
  }
};

template <typename D, typename A, int TPR>
__global__ void layer_norm_kernel(const D* x, const D* w, const D* b, D* y, int64_t rows, int64_t h, A eps) {
  __shared__ Welford<A> scratch[32];
  RowPos<TPR> p;
  if (p.row >= rows) return;
  const D* xr = x + p.row * h;
  D* yr = y + p.row * h;
  Welford<A> st{A(0), A(0), A(0)};
  for (int64_t j = p.t; j < h; j += TPR) {
    A v = cuda::to_acc<A>(xr[j]);
    st.n += A(1);
    A d = v - st.mean;
    st.mean += d / st.n;
    st.m2 += d * (v - st.mean);
  }
  st = row_combine<TPR>(st, MergeWelford<A>{}, scratch);
  A rstd = A(1) / ::sqrt(st.m2 / A(h) + eps);
  for (int64_t j = p.t; j < h; j += TPR) {
    A v = (cuda::to_acc<A>(xr[j]) - st.mean) * rstd;
    if (w) v *= cuda::to_acc<A>(w[j]);
    if (b) v += cuda::to_acc<A>(b[j]);
    yr[j] = cuda::from_c<D>(v);
  }
}

template <typename A>
struct Plus {
  __device__ A operator()(A a, A b) const { return a + b; }
};

template <typename D, typename A, int TPR>
__global__ void rms_norm_kernel(const D* x, const D* w, D* y, int64_t rows, int64_t h, A eps) {
  cuda::launch_dependents();  // a skinny product after this kernel may start loading its weights
  __shared__ A scratch[32];
  RowPos<TPR> p;
  if (p.row >= rows) return;
  const D* xr = x + p.row * h;
  D* yr = y + p.row * h;
  A ss = 0;
  for (int64_t j = p.t; j < h; j += TPR) {
    A v = cuda::to_acc<A>(xr[j]);
    ss += v * v;
  }
  ss = row_combine<TPR>(ss, Plus<A>{}, scratch);
  A rs = A(1) / ::sqrt(ss / A(h) + eps);
  for (int64_t j = p.t; j < h; j += TPR) yr[j] = cuda::from_c<D>(cuda::to_acc<A>(xr[j]) * rs * cuda::to_acc<A>(w[j]));
}

// RMSNorm of rows whose length is a whole number of 16-byte vectors, up to 32 * kChunks of them:
// one warp per row, every load of the row issued before the first is used and the row kept in
// registers. (A decode step normalises one row per sequence: the generic loop above, one 2-byte
// load per lane and iteration, waits on memory 2 * h / 32 times in a row.)
template <typename D, typename A, int kChunks>
__global__ void rms_norm_vec_kernel(const D* x, const D* w, D* y, int64_t rows, int h, A eps) {
  cuda::launch_dependents();  // a skinny product after this kernel may start loading its weights
  constexpr int kV = 16 / int(sizeof(D));
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32, nvec = h / kV;
  if (row >= rows) return;
  const uint4* xr = reinterpret_cast<const uint4*>(x + row * h);
  const uint4* wr = reinterpret_cast<const uint4*>(w);
  uint4* yr = reinterpret_cast<uint4*>(y + row * h);
  uint4 xv[kChunks], wv[kChunks];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int i = lane + 32 * c;
    if (i < nvec) {
      xv[c] = xr[i];
      wv[c] = __ldg(wr + i);
    }
  }
  A ss = 0;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (lane + 32 * c >= nvec) continue;
    const D* e = reinterpret_cast<const D*>(&xv[c]);
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      A v = cuda::to_acc<A>(e[k]);
      ss += v * v;
    }
  }
  ss = row_combine<32>(ss, Plus<A>{}, static_cast<A*>(nullptr));
  const A rs = A(1) / ::sqrt(ss / A(h) + eps);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int i = lane + 32 * c;
    if (i >= nvec) continue;
    const D* e = reinterpret_cast<const D*>(&xv[c]);
    const D* g = reinterpret_cast<const D*>(&wv[c]);
    uint4 o;
    D* oe = reinterpret_cast<D*>(&o);
#pragma unroll
    for (int k = 0; k < kV; ++k) oe[k] = cuda::from_c<D>(cuda::to_acc<A>(e[k]) * rs * cuda::to_acc<A>(g[k]));
    yr[i] = o;
  }
}

// d x of LayerNorm (rms false) or RMSNorm (rms true) for one row: statistics, then the two sums
// the gradient needs (of dxhat and of dxhat * xhat), then the write.
template <typename D, typename A, int TPR>
__global__ void norm_backward_kernel(const D* x, const D* w, const D* g, D* dx, int64_t rows, int64_t h, A eps, bool rms) {
  __shared__ A scratch[32];
  RowPos<TPR> p;
  if (p.row >= rows) return;
  const D *xr = x + p.row * h, *gr = g + p.row * h;
  D* dr = dx + p.row * h;
  A mean = 0, ss = 0;
  if (!rms) {
    for (int64_t j = p.t; j < h; j += TPR) mean += cuda::to_acc<A>(xr[j]);
    mean = row_combine<TPR>(mean, Plus<A>{}, scratch) / A(h);
  }
  for (int64_t j = p.t; j < h; j += TPR) {
    A c = cuda::to_acc<A>(xr[j]) - mean;
    ss += c * c;
  }
  ss = row_combine<TPR>(ss, Plus<A>{}, scratch);
  A rstd = A(1) / ::sqrt(ss / A(h) + eps);
  A sum_d = 0, sum_dx = 0;  // sums of dxhat and dxhat * xhat
  for (int64_t j = p.t; j < h; j += TPR) {
    A d = cuda::to_acc<A>(gr[j]) * (w ? cuda::to_acc<A>(w[j]) : A(1));
    sum_d += d;
    sum_dx += d * (cuda::to_acc<A>(xr[j]) - mean) * rstd;
  }
  sum_d = row_combine<TPR>(sum_d, Plus<A>{}, scratch);
  sum_dx = row_combine<TPR>(sum_dx, Plus<A>{}, scratch);
  A mean_d = rms ? A(0) : sum_d / A(h), mean_dx = sum_dx / A(h);
  for (int64_t j = p.t; j < h; j += TPR) {
    A d = cuda::to_acc<A>(gr[j]) * (w ? cuda::to_acc<A>(w[j]) : A(1));
    A xhat = (cuda::to_acc<A>(xr[j]) - mean) * rstd;
    dr[j] = cuda::from_c<D>(rstd * (d - mean_d - xhat * mean_dx));
  }
}

// d x of softmax (y (g - sum g y)) or log-softmax (g - exp(y) sum g) for one row.
template <typename D, typename A, int TPR>
__global__ void softmax_backward_kernel(const D* y, const D* g, D* dx, int64_t rows, int64_t cols, bool log) {
  __shared__ A scratch[32];
  RowPos<TPR> p;
  if (p.row >= rows) return;
  const D *yr = y + p.row * cols, *gr = g + p.row * cols;
  D* dr = dx + p.row * cols;
  A dot = 0;
  for (int64_t j = p.t; j < cols; j += TPR) dot += cuda::to_acc<A>(gr[j]) * (log ? A(1) : cuda::to_acc<A>(yr[j]));
  dot = row_combine<TPR>(dot, Plus<A>{}, scratch);
  for (int64_t j = p.t; j < cols; j += TPR) {
    A yv = cuda::to_acc<A>(yr[j]), gv = cuda::to_acc<A>(gr[j]);
    dr[j] = cuda::from_c<D>(log ? gv - ::exp(yv) * dot : yv * (gv - dot));
  }
}

template <typename D>
__global__ void rope_kernel(const D* x, const int64_t* pos, const float* inv, D* y, int64_t total, int64_t H, int64_t T,
                            int64_t Dh, int rd, bool interleaved, bool inverse) {
  using C = cuda::dcompute_t<D>;
  int half = rd / 2;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t d = e % Dh, r = e / Dh, t = r % T, b = r / (T * H);
    if (d >= rd) {
      y[e] = x[e];
      continue;
    }
    int64_t i, partner;
    bool first;
    if (interleaved) {
      i = d / 2;
      first = (d & 1) == 0;
      partner = first ? d + 1 : d - 1;
    } else {
      first = d < half;
      i = first ? d : d - half;
      partner = first ? d + half : d - half;
    }
    // The angle is formed in f32 (as HF does) unless the data itself is f64.
    int64_t pv = pos[b * T + t];
    C angle = std::is_same_v<C, double> ? C(double(pv) * double(inv[i])) : C(float(pv) * inv[i]);
    C c = cos(angle), s = sin(angle);
    if (inverse) s = -s;
    const D* row = x + (e - d);
    C xd = cuda::to_c(x[e]), xp = cuda::to_c(row[partner]);
    C x1 = first ? xd : xp, x2 = first ? xp : xd;
    y[e] = cuda::from_c<D>(first ? x1 * c - x2 * s : x2 * c + x1 * s);
  }
}

}  // namespace

void Softmax::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  out.allocate();
  int64_t cols = x.ndim() ? x.shape(-1) : 1, rows = cols ? x.numel() / cols : 0;
  bool log = log_;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    const D* px = cuda::cptr<T>(x);
    D* py = cuda::mptr<T>(out);
    if (rows == 0) return;
    cudaStream_t s = cuda::stream(out.device().index);
    if (cols <= kWarpRowMax)
      softmax_kernel<D, A, 32><<<unsigned((rows + 7) / 8), cuda::kThreads, 0, s>>>(px, py, rows, cols, log);
    else
      softmax_kernel<D, A, cuda::kThreads><<<unsigned(rows), cuda::kThreads, 0, s>>>(px, py, rows, cols, log);
    WICK_CUDA_LAUNCH_CHECK("softmax_kernel");
  });
}

void LayerNorm::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor w = has_weight_ ? cuda::contiguous_on_device(in[1]) : Tensor();
  Tensor b = has_bias_ ? cuda::contiguous_on_device(in[has_weight_ ? 2 : 1]) : Tensor();
  out.allocate();
  int64_t h = x.shape(-1), rows = h ? x.numel() / h : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    const D* pw = has_weight_ ? cuda::cptr<T>(w) : nullptr;
    const D* pb = has_bias_ ? cuda::cptr<T>(b) : nullptr;
    if (rows == 0) return;
    cudaStream_t s = cuda::stream(out.device().index);
    if (h <= kWarpRowMax)
      layer_norm_kernel<D, A, 32><<<unsigned((rows + 7) / 8), cuda::kThreads, 0, s>>>(cuda::cptr<T>(x), pw, pb,
                                                                                        cuda::mptr<T>(out), rows, h, A(eps_));
    else
      layer_norm_kernel<D, A, cuda::kThreads><<<unsigned(rows), cuda::kThreads, 0, s>>>(cuda::cptr<T>(x), pw, pb,
                                                                                         cuda::mptr<T>(out), rows, h, A(eps_));
    WICK_CUDA_LAUNCH_CHECK("layer_norm_kernel");
  });
}

void RMSNorm::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor w = cuda::contiguous_on_device(in[1]);
  out.allocate();
  int64_t h = x.shape(-1), rows = h ? x.numel() / h : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    if (rows == 0) return;
    cudaStream_t s = cuda::stream(out.device().index);
    const auto* px = cuda::cptr<T>(x);
    const auto* pw = cuda::cptr<T>(w);
    auto* py = cuda::mptr<T>(out);
    const int64_t vec = 16 / int64_t(sizeof(D)), vecs = h / vec;
    const bool aligned = ((reinterpret_cast<uintptr_t>(px) | reinterpret_cast<uintptr_t>(pw) |
                           reinterpret_cast<uintptr_t>(py)) & 15) == 0;
    if constexpr (sizeof(D) <= 4) {
      if (aligned && h % vec == 0 && vecs <= 32 * 8) {
        const unsigned blocks = unsigned((rows + 7) / 8);
        auto go = [&](auto kernel) { kernel<<<blocks, cuda::kThreads, 0, s>>>(px, pw, py, rows, int(h), A(eps_)); };
        if (vecs <= 32) go(rms_norm_vec_kernel<D, A, 1>);
        else if (vecs <= 64) go(rms_norm_vec_kernel<D, A, 2>);
        else if (vecs <= 128) go(rms_norm_vec_kernel<D, A, 4>);
        else go(rms_norm_vec_kernel<D, A, 8>);
        WICK_CUDA_LAUNCH_CHECK("rms_norm_vec_kernel");
        return;
      }
    }
    if (h <= kWarpRowMax)
      rms_norm_kernel<D, A, 32><<<unsigned((rows + 7) / 8), cuda::kThreads, 0, s>>>(cuda::cptr<T>(x), cuda::cptr<T>(w),
                                                                                      cuda::mptr<T>(out), rows, h, A(eps_));
    else
      rms_norm_kernel<D, A, cuda::kThreads><<<unsigned(rows), cuda::kThreads, 0, s>>>(
          cuda::cptr<T>(x), cuda::cptr<T>(w), cuda::mptr<T>(out), rows, h, A(eps_));
    WICK_CUDA_LAUNCH_CHECK("rms_norm_kernel");
  });
}

void NormBackward::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor w = has_weight_ ? cuda::contiguous_on_device(in[1]) : Tensor();
  Tensor g = cuda::contiguous_on_device(in[has_weight_ ? 2 : 1]);
  out.allocate();
  int64_t h = x.shape(-1), rows = h ? x.numel() / h : 0;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    if (rows == 0) return;
    const D* pw = has_weight_ ? cuda::cptr<T>(w) : nullptr;
    cudaStream_t s = cuda::stream(out.device().index);
    if (h <= kWarpRowMax)
      norm_backward_kernel<D, A, 32><<<unsigned((rows + 7) / 8), cuda::kThreads, 0, s>>>(
          cuda::cptr<T>(x), pw, cuda::cptr<T>(g), cuda::mptr<T>(out), rows, h, A(eps_), rms_);
    else
      norm_backward_kernel<D, A, cuda::kThreads><<<unsigned(rows), cuda::kThreads, 0, s>>>(
          cuda::cptr<T>(x), pw, cuda::cptr<T>(g), cuda::mptr<T>(out), rows, h, A(eps_), rms_);
    WICK_CUDA_LAUNCH_CHECK("norm_backward_kernel");
  });
}

void SoftmaxBackward::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor y = cuda::contiguous_on_device(in[0]);
  Tensor g = cuda::contiguous_on_device(in[1]);
  out.allocate();
  int64_t cols = y.ndim() ? y.shape(-1) : 1, rows = cols ? y.numel() / cols : 0;
  dispatch_float(y.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    if (rows == 0) return;
    cudaStream_t s = cuda::stream(out.device().index);
    if (cols <= kWarpRowMax)
      softmax_backward_kernel<D, A, 32><<<unsigned((rows + 7) / 8), cuda::kThreads, 0, s>>>(
          cuda::cptr<T>(y), cuda::cptr<T>(g), cuda::mptr<T>(out), rows, cols, log_);
    else
      softmax_backward_kernel<D, A, cuda::kThreads><<<unsigned(rows), cuda::kThreads, 0, s>>>(
          cuda::cptr<T>(y), cuda::cptr<T>(g), cuda::mptr<T>(out), rows, cols, log_);
    WICK_CUDA_LAUNCH_CHECK("softmax_backward_kernel");
  });
}

void RoPE::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor pos = cuda::contiguous_on_device(in[1]);  // i64 [B, T] (made so by the op)
  Tensor inv = cuda::contiguous_on_device(in[2]);  // f32 [rotary_dim / 2]
  out.allocate();
  int64_t H = x.shape(1), T_ = x.shape(2), D_ = x.shape(3), total = x.numel();
  if (total == 0) return;
  int device = out.device().index;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    rope_kernel<D><<<cuda::grid_for(total, device), cuda::kThreads, 0, cuda::stream(device)>>>(
        cuda::cptr<T>(x), static_cast<const int64_t*>(pos.data_ptr()), static_cast<const float*>(inv.data_ptr()),
        cuda::mptr<T>(out), total, H, T_, D_, rotary_dim_, interleaved_, inverse_);
    WICK_CUDA_LAUNCH_CHECK("rope_kernel");
  });
}

}  // namespace wick
