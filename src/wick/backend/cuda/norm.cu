// CUDA kernels of LayerNorm (one-pass Welford statistics), RMSNorm (f32 statistics; f64 for f64
// data) and their backward. Rows of up to 1024 elements take one warp each, longer rows one block.
#include "wick/backend/cuda/row_kernels.cuh"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

using cuda::dacc_t;
using cuda::kWarpRowMax;
using cuda::Plus;
using cuda::row_combine;
using cuda::RowPos;

namespace {

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

// RMSNorm of one row whose length is a whole number of 16-byte vectors, up to 32 * kChunks of
// them, by one warp: every load of the row issued before the first is used and the row kept in
// registers. Lane `lane` gets its vectors lane, lane + 32, ... of the result in `out`. (A decode step
// normalises one row per sequence: a loop of one 2-byte load per lane and iteration waits on memory
// 2 * h / 32 times in a row.) Shared by rms_norm_vec_kernel and rms_norm_shrink_kernel, whose rows
// must come out the same bit for bit.
template <typename D, typename A, int kChunks>
__device__ __forceinline__ void rms_row_vec(const D* xrow, const D* w, int h, A eps, int lane, uint4 (&out)[kChunks]) {
  constexpr int kV = 16 / int(sizeof(D));
  const int nvec = h / kV;
  const uint4* xr = reinterpret_cast<const uint4*>(xrow);
  const uint4* wr = reinterpret_cast<const uint4*>(w);
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
    if (lane + 32 * c >= nvec) continue;
    const D* e = reinterpret_cast<const D*>(&xv[c]);
    const D* g = reinterpret_cast<const D*>(&wv[c]);
    D* oe = reinterpret_cast<D*>(&out[c]);
#pragma unroll
    for (int k = 0; k < kV; ++k) oe[k] = cuda::from_c<D>(cuda::to_acc<A>(e[k]) * rs * cuda::to_acc<A>(g[k]));
  }
}

// One warp per row (rms_row_vec).
template <typename D, typename A, int kChunks>
__global__ void rms_norm_vec_kernel(const D* x, const D* w, D* y, int64_t rows, int h, A eps) {
  cuda::launch_dependents();  // a skinny product after this kernel may start loading its weights
  constexpr int kV = 16 / int(sizeof(D));
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32, nvec = h / kV;
  if (row >= rows) return;
  uint4 o[kChunks];
  rms_row_vec<D, A, kChunks>(x + row * h, w, h, eps, lane, o);
  uint4* yr = reinterpret_cast<uint4*>(y + row * h);
#pragma unroll
  for (int c = 0; c < kChunks; ++c)
    if (lane + 32 * c < nvec) yr[lane + 32 * c] = o[c];
}

// rms_norm_lora_shrink: CTA (g, i) normalises row i in each of its warps (rms_row_vec, so the row
// equals rms_norm_vec_kernel's) and warp k computes t[i, j] = A[slot_i][j] . h_i for j = 8 g + k
// (f32 sums of the rounded h, as lora_gather_shrink reads it). CTA (0, i) writes h_i. Tokens with
// slot -1 get zeros; a slot past the stack raises a device error. Launched as a programmatic
// dependent: each warp loads its row of A before the wait, while the kernel before drains (slots are
// written by copies, never by a kernel of the step).
template <typename D, typename A, int kChunks>
__global__ void rms_norm_shrink_kernel(const D* x, const D* w, D* y, const int32_t* slots, const D* a, float* t,
                                       int h, int r, int num_slots, A eps, cuda::DeviceError* err) {
  cuda::launch_dependents();
  constexpr int kV = 16 / int(sizeof(D));
  const int64_t i = blockIdx.y;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nvec = h / kV;
  const int j = blockIdx.x * (blockDim.x / 32) + warp;
  const int slot = slots[i];
  const bool active = slot >= 0 && slot < num_slots;
  uint4 av[kChunks];
  if (active && j < r) {
    const uint4* ar = reinterpret_cast<const uint4*>(a + (int64_t(slot) * r + j) * h);
#pragma unroll
    for (int c = 0; c < kChunks; ++c)
      if (lane + 32 * c < nvec) av[c] = __ldg(ar + lane + 32 * c);
  }
  cuda::grid_dependency_wait();  // x comes from the kernel before
  uint4 o[kChunks];
  rms_row_vec<D, A, kChunks>(x + i * h, w, h, eps, lane, o);
  if (blockIdx.x == 0 && warp == 0) {
    uint4* yr = reinterpret_cast<uint4*>(y + i * h);
#pragma unroll
    for (int c = 0; c < kChunks; ++c)
      if (lane + 32 * c < nvec) yr[lane + 32 * c] = o[c];
  }
  if (j >= r) return;
  if (!active) {
    if (lane == 0) t[i * r + j] = 0.f;
    if (slot >= num_slots && j == 0 && lane == 0) cuda::raise_error(err, cuda::kErrLoraSlot, slot, num_slots);
    return;
  }
  float acc = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int v = lane + 32 * c;
    if (v >= nvec) continue;
    const D* ae = reinterpret_cast<const D*>(&av[c]);
    const D* he = reinterpret_cast<const D*>(&o[c]);
#pragma unroll
    for (int k = 0; k < kV; ++k) acc = fmaf(float(cuda::to_c(ae[k])), float(cuda::to_c(he[k])), acc);
  }
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, m);
  if (lane == 0) t[i * r + j] = acc;
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

}  // namespace

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

void RMSNormLoraShrink::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor &h_out = outs[0], &t_out = outs[1];
  Tensor x = cuda::contiguous_on_device(in[0]), w = cuda::contiguous_on_device(in[1]);
  Tensor slots = cuda::contiguous_on_device(in[2]), a = cuda::contiguous_on_device(in[3]);
  const int device = x.device().index;
  const int64_t rows = x.shape(0), h = x.shape(1), s = a.shape(0), r = a.shape(1);
  bool done = false;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    if constexpr (sizeof(D) <= 4) {
      const int64_t vec = 16 / int64_t(sizeof(D)), vecs = h / vec;
      bool aligned = cuda::aligned16(x.data_ptr()) && cuda::aligned16(w.data_ptr()) && cuda::aligned16(a.data_ptr());
      if (!aligned || h % vec != 0 || vecs > 32 * 8 || rows < 1 || rows > 65535) return;
      h_out.allocate();
      t_out.allocate();
      if (!cuda::aligned16(h_out.data_ptr())) return;  // (the allocator's blocks are; the fallback writes anew)
      constexpr int kWarps = cuda::kThreads / 32;
      dim3 grid(unsigned((r + kWarps - 1) / kWarps), unsigned(rows));
      cudaStream_t stream = cuda::stream(device);
      auto go = [&](auto kernel) {
        cuda::launch_dependent(kernel, grid, dim3(cuda::kThreads), 0, stream, cuda::cptr<T>(x), cuda::cptr<T>(w),
                               cuda::mptr<T>(h_out), static_cast<const int32_t*>(slots.data_ptr()), cuda::cptr<T>(a),
                               static_cast<float*>(t_out.data_ptr()), int(h), int(r), int(s), A(eps_),
                               cuda::device_error(device));
      };
      if (vecs <= 32) go(rms_norm_shrink_kernel<D, A, 1>);
      else if (vecs <= 64) go(rms_norm_shrink_kernel<D, A, 2>);
      else if (vecs <= 128) go(rms_norm_shrink_kernel<D, A, 4>);
      else go(rms_norm_shrink_kernel<D, A, 8>);
      WICK_CUDA_LAUNCH_CHECK("rms_norm_shrink_kernel");
      done = true;
    }
  });
  if (done) return;
  // Rows the one-launch kernel does not take: the two ops in turn.
  RMSNorm(eps_).eval_cuda({x, w}, h_out);
  LoraGatherShrink().eval_cuda({h_out, slots, a}, t_out);
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

}  // namespace wick
