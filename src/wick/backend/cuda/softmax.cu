// CUDA kernels of softmax / log-softmax (online max and sum in one pass) and their backward. Rows
// of up to 1024 elements take one warp each, longer rows one block.
#include "wick/backend/cuda/row_kernels.cuh"
#include "wick/core/primitives.h"

namespace wick {

using cuda::dacc_t;
using cuda::kWarpRowMax;
using cuda::MaxSum;
using cuda::Plus;
using cuda::row_combine;
using cuda::RowPos;

namespace {

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

}  // namespace wick
