// CUDA cross-entropy forward and backward: one block per row, online logsumexp in one pass.
// A target out of range (and not ignore_index) raises the device error flag; the row's loss is
// NaN (its gradient zero) and the error is reported as a wick::Error at the next synchronisation.
#include <algorithm>

#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

using cuda::MaxSum;

namespace {

template <typename A>
struct MergeMaxSum {
  __device__ MaxSum<A> operator()(MaxSum<A> a, MaxSum<A> b) const { return cuda::merge(a, b); }
};

template <typename D, typename A>
__device__ MaxSum<A> row_max_sum(const D* row, int64_t v, MaxSum<A>* scratch) {
  MaxSum<A> ms{-A(INFINITY), A(0)};
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) ms = cuda::merge(ms, MaxSum<A>{cuda::to_acc<A>(row[j]), A(1)});
  return cuda::block_combine(ms, MergeMaxSum<A>{}, scratch);
}

// The row's target, or -1 for an ignored row, -2 for one out of range (error raised).
template <typename I>
__device__ int64_t row_target(const I* targets, int64_t r, int64_t v, int64_t ignore_index, cuda::DeviceError* err) {
  int64_t t = int64_t(targets[r]);
  if (t == ignore_index) return -1;
  if (t < 0 || t >= v) {
    if (threadIdx.x == 0) cuda::raise_error(err, cuda::kErrCrossEntropyTarget, t, v);
    return -2;
  }
  return t;
}

template <typename D, typename A, typename I>
__global__ void cross_entropy_kernel(const D* logits, const I* targets, float* out, int64_t n, int64_t v,
                                     int64_t ignore_index, cuda::DeviceError* err) {
  __shared__ MaxSum<A> scratch[32];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    int64_t t = row_target(targets, r, v, ignore_index, err);
    if (t < 0) {
      if (threadIdx.x == 0) out[r] = t == -1 ? 0.0f : __int_as_float(0x7fc00000);
      continue;
    }
    const D* row = logits + r * v;
    MaxSum<A> ms = row_max_sum(row, v, scratch);
    if (threadIdx.x == 0) out[r] = float(log(ms.s) + ms.m - cuda::to_acc<A>(row[t]));
  }
}

template <typename D, typename A, typename I>
__global__ void cross_entropy_backward_kernel(const D* logits, const I* targets, const float* dloss, D* out, int64_t n,
                                              int64_t v, int64_t ignore_index, cuda::DeviceError* err) {
  __shared__ MaxSum<A> scratch[32];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    int64_t t = row_target(targets, r, v, ignore_index, err);
    D* orow = out + r * v;
    if (t < 0) {
      for (int64_t j = threadIdx.x; j < v; j += blockDim.x) orow[j] = cuda::from_c<D>(A(0));
      continue;
    }
    const D* row = logits + r * v;
    MaxSum<A> ms = row_max_sum(row, v, scratch);
    A g = A(dloss[r]);
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      A p = exp(cuda::to_acc<A>(row[j]) - ms.m) / ms.s - (j == t ? A(1) : A(0));
      orow[j] = cuda::from_c<D>(p * g);
    }
  }
}

// The rows of a chunk of linear cross-entropy: each row's loss from its logits and, with `grad`,
// the row overwritten by softmax - onehot (zeros for an ignored row or one out of range).
template <typename D, typename A, typename I>
__global__ void linear_xent_rows_kernel(D* logits, const I* targets, float* loss, int64_t n, int64_t v,
                                        int64_t ignore_index, bool grad, cuda::DeviceError* err) {
  __shared__ MaxSum<A> scratch[32];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    int64_t t = row_target(targets, r, v, ignore_index, err);
    D* row = logits + r * v;
    if (t < 0) {
      if (threadIdx.x == 0) loss[r] = t == -1 ? 0.0f : __int_as_float(0x7fc00000);
      if (grad)
        for (int64_t j = threadIdx.x; j < v; j += blockDim.x) row[j] = cuda::from_c<D>(A(0));
      continue;
    }
    MaxSum<A> ms = row_max_sum(row, v, scratch);
    A target_logit = cuda::to_acc<A>(row[t]);
    __syncthreads();  // every thread has read row[t] before any overwrites it
    if (threadIdx.x == 0) loss[r] = float(log(ms.s) + ms.m - target_logit);
    if (!grad) continue;
    A inv = A(1) / ms.s;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
      row[j] = cuda::from_c<D>(exp(cuda::to_acc<A>(row[j]) - ms.m) * inv - (j == t ? A(1) : A(0)));
  }
}

unsigned row_blocks(int64_t n, int device) { return unsigned(std::min<int64_t>(n, int64_t(cuda::sm_count(device)) * 64)); }

}  // namespace

void CrossEntropy::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor logits = cuda::contiguous_on_device(in[0]);
  Tensor targets = cuda::contiguous_on_device(in[1]);
  out.allocate();
  int64_t n = logits.shape(0), v = logits.shape(1);
  if (n == 0) return;
  int device = out.device().index;
  dispatch_index(targets.dtype(), name(), [&]<typename I>() {
    dispatch_float(logits.dtype(), name(), [&]<typename T>() {
      using D = cuda::dev_t<T>;
      cross_entropy_kernel<D, cuda::dacc_t<D>, I><<<row_blocks(n, device), cuda::kThreads, 0, cuda::stream(device)>>>(
          cuda::cptr<T>(logits), static_cast<const I*>(targets.data_ptr()), static_cast<float*>(out.data_ptr()), n, v,
          ignore_index_, cuda::device_error(device));
      WICK_CUDA_LAUNCH_CHECK("cross_entropy_kernel");
    });
  });
}

void CrossEntropyBackward::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor logits = cuda::contiguous_on_device(in[0]);
  Tensor targets = cuda::contiguous_on_device(in[1]);
  Tensor dloss = cuda::contiguous_on_device(in[2]);
  out.allocate();
  int64_t n = logits.shape(0), v = logits.shape(1);
  if (n == 0 || v == 0) return;
  int device = out.device().index;
  dispatch_index(targets.dtype(), name(), [&]<typename I>() {
    dispatch_float(logits.dtype(), name(), [&]<typename T>() {
      using D = cuda::dev_t<T>;
      cross_entropy_backward_kernel<D, cuda::dacc_t<D>, I>
          <<<row_blocks(n, device), cuda::kThreads, 0, cuda::stream(device)>>>(
              cuda::cptr<T>(logits), static_cast<const I*>(targets.data_ptr()), static_cast<const float*>(dloss.data_ptr()),
              cuda::mptr<T>(out), n, v, ignore_index_, cuda::device_error(device));
      WICK_CUDA_LAUNCH_CHECK("cross_entropy_backward_kernel");
    });
  });
}

}  // namespace wick

namespace wick {

// A chunk of rows at a time (about 256 MiB of logits): logits = x_c @ weight^T through cuBLASLt in
// x's dtype, the rows' losses and (keeping the gradient) softmax - onehot in place, then
// dx_c = that @ weight.
void LinearCrossEntropy::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor weight = cuda::contiguous_on_device(in[1]);
  Tensor targets = cuda::contiguous_on_device(in[2]);
  out.allocate();
  int64_t n = x.shape(0), d = x.shape(1), v = weight.shape(0);
  int device = out.device().index;
  Dtype dt = x.dtype();
  int64_t item = int64_t(dtype_size(dt));
  if (keep_grad_) {
    dx_unit_ = Tensor::empty({n, d}, dt, out.device());
    if (v == 0 && n * d > 0)
      WICK_CUDA_CHECK(cudaMemsetAsync(dx_unit_.data_ptr(), 0, size_t(n * d * item), cuda::stream(device)));
  }
  if (n == 0) return;
  int64_t rows = chunk_rows(n, v, item, int64_t(256) << 20);
  Tensor logits = Tensor::empty({rows, v}, dt, out.device());  // no classes (v = 0): every row is ignored or an error
  const char* px = static_cast<const char*>(x.data_ptr());
  const char* pt = static_cast<const char*>(targets.data_ptr());
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    int64_t len = std::min(rows, n - r0);
    if (v > 0 && d > 0)
      cuda::gemm_nt(dt, len, v, d, px + r0 * d * item, weight.data_ptr(), logits.data_ptr(), 1.0f, 0.0f, device);
    else if (v > 0)
      WICK_CUDA_CHECK(cudaMemsetAsync(logits.data_ptr(), 0, size_t(len * v * item), cuda::stream(device)));
    dispatch_index(targets.dtype(), name(), [&]<typename I>() {
      dispatch_float(dt, name(), [&]<typename T>() {
        using D = cuda::dev_t<T>;
        linear_xent_rows_kernel<D, cuda::dacc_t<D>, I><<<row_blocks(len, device), cuda::kThreads, 0, cuda::stream(device)>>>(
            static_cast<D*>(logits.data_ptr()), reinterpret_cast<const I*>(pt) + r0,
            static_cast<float*>(out.data_ptr()) + r0, len, v, ignore_index_, keep_grad_, cuda::device_error(device));
        WICK_CUDA_LAUNCH_CHECK("linear_xent_rows_kernel");
      });
    });
    if (keep_grad_ && v > 0 && d > 0)
      cuda::gemm_nn(dt, len, d, v, logits.data_ptr(), weight.data_ptr(),
                    static_cast<char*>(dx_unit_.data_ptr()) + r0 * d * item, 1.0f, 0.0f, device);
  }
}

}  // namespace wick
