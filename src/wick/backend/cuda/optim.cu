// CUDA kernels of the ops over many tensors (the AdamW step, the cast of many tensors): up to
// kTensors tensors per launch, their pointers passed by value; blockIdx.y picks the tensor, blocks
// stride over its elements.
#include <algorithm>

#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

constexpr int kTensors = 24;

template <typename D>
struct AdamWBatch {
  const D* p[kTensors];
  const D* g[kTensors];
  const D* m[kTensors];
  const D* v[kTensors];
  D* p_out[kTensors];
  D* m_out[kTensors];
  D* v_out[kTensors];
  int64_t n[kTensors];
  double rate[kTensors], inv_c2[kTensors];
};

template <typename D>
__global__ void adamw_kernel(AdamWBatch<D> batch, double beta1, double beta2, double eps, double decay) {
  using C = cuda::dcompute_t<D>;
  const int t = blockIdx.y;
  const int64_t n = batch.n[t];
  const C b1 = C(beta1), b2 = C(beta2), e = C(eps), dec = C(decay), rate = C(batch.rate[t]), inv_c2 = C(batch.inv_c2[t]);
  const D *p = batch.p[t], *g = batch.g[t], *m = batch.m[t], *v = batch.v[t];
  D *po = batch.p_out[t], *mo = batch.m_out[t], *vo = batch.v_out[t];
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    C gj = cuda::to_c(g[j]);
    C mj = b1 * cuda::to_c(m[j]) + (C(1) - b1) * gj;
    C vj = b2 * cuda::to_c(v[j]) + (C(1) - b2) * gj * gj;
    C denom = sqrt(vj) * inv_c2 + e;
    po[j] = cuda::from_c<D>(cuda::to_c(p[j]) * dec - mj / denom * rate);
    mo[j] = cuda::from_c<D>(mj);
    vo[j] = cuda::from_c<D>(vj);
  }
}

// Each input is rows of `cols` dense values, `pitch` apart (a contiguous tensor: one row), as the
// gradients of blocks cut from one matrix (stacked projections' B) arrive.
template <typename S, typename D>
struct CastBatch {
  const S* x[kTensors];
  D* y[kTensors];
  int64_t n[kTensors], cols[kTensors], pitch[kTensors];
};

template <typename S, typename D>
__global__ void cast_all_kernel(CastBatch<S, D> batch) {
  const int t = blockIdx.y;
  const S* x = batch.x[t];
  D* y = batch.y[t];
  const int64_t cols = batch.cols[t], pitch = batch.pitch[t];
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < batch.n[t]; j += int64_t(gridDim.x) * blockDim.x)
    y[j] = cuda::from_c<D>(cuda::to_c(x[cols == pitch ? j : j / cols * pitch + j % cols]));
}

// Whether t is rows of dense values the cast kernel reads in place: (cols, pitch).
bool dense_rows(const Tensor& t, int64_t* cols, int64_t* pitch) {
  if (t.is_contiguous()) {
    *cols = *pitch = std::max<int64_t>(t.numel(), 1);
    return true;
  }
  if (t.ndim() != 2 || t.strides()[1] != 1 || t.shape(1) == 0) return false;
  *cols = t.shape(1);
  *pitch = t.strides()[0];
  return true;
}

unsigned blocks_for(int64_t most) {
  return unsigned(std::min<int64_t>((most + cuda::kThreads - 1) / cuda::kThreads, 256));
}

}  // namespace

void AstypeAll::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& out) {
  size_t n = in.size();
  int device = out[0].device().index;
  std::vector<Tensor> inputs;  // rows of dense values, held until the launches are queued
  std::vector<int64_t> cols(n), pitch(n);
  for (size_t i = 0; i < n; ++i) {
    inputs.push_back(dense_rows(in[i], &cols[i], &pitch[i]) ? in[i] : cuda::contiguous_on_device(in[i]));
    if (!inputs.back().same(in[i])) dense_rows(inputs.back(), &cols[i], &pitch[i]);
  }
  for (const Tensor& t : out) t.allocate();
  dispatch_float(in[0].dtype(), name(), [&]<typename TS>() {
    dispatch_float(out[0].dtype(), name(), [&]<typename TD>() {
      using S = cuda::dev_t<TS>;
      using D = cuda::dev_t<TD>;
      for (size_t first = 0; first < n; first += kTensors) {
        CastBatch<S, D> batch{};
        int count = int(std::min<size_t>(kTensors, n - first));
        int64_t most = 0;
        for (int k = 0; k < count; ++k) {
          batch.x[k] = static_cast<const S*>(inputs[first + size_t(k)].data_ptr());
          batch.y[k] = static_cast<D*>(out[first + size_t(k)].data_ptr());
          batch.n[k] = inputs[first + size_t(k)].numel();
          batch.cols[k] = cols[first + size_t(k)];
          batch.pitch[k] = pitch[first + size_t(k)];
          most = std::max(most, batch.n[k]);
        }
        if (most == 0) continue;
        cast_all_kernel<S, D><<<dim3(blocks_for(most), unsigned(count)), cuda::kThreads, 0, cuda::stream(device)>>>(batch);
        WICK_CUDA_LAUNCH_CHECK("cast_all_kernel");
      }
    });
  });
}

void AdamWUpdate::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& out) {
  size_t n = steps_.size();
  if (n == 0) return;
  int device = out[0].device().index;
  std::vector<Tensor> inputs;  // contiguous, held until the launches are queued
  for (const Tensor& t : in) inputs.push_back(cuda::contiguous_on_device(t));
  for (const Tensor& t : out) t.allocate();
  dispatch_float(in[0].dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    for (size_t first = 0; first < n; first += kTensors) {
      AdamWBatch<D> batch{};
      int count = int(std::min<size_t>(kTensors, n - first));
      int64_t most = 0;
      for (int k = 0; k < count; ++k) {
        size_t i = first + size_t(k);
        batch.p[k] = static_cast<const D*>(inputs[i].data_ptr());
        batch.g[k] = static_cast<const D*>(inputs[n + i].data_ptr());
        batch.m[k] = static_cast<const D*>(inputs[2 * n + i].data_ptr());
        batch.v[k] = static_cast<const D*>(inputs[3 * n + i].data_ptr());
        batch.p_out[k] = static_cast<D*>(out[i].data_ptr());
        batch.m_out[k] = static_cast<D*>(out[n + i].data_ptr());
        batch.v_out[k] = static_cast<D*>(out[2 * n + i].data_ptr());
        batch.n[k] = inputs[i].numel();
        batch.rate[k] = rate_over_c1(i);
        batch.inv_c2[k] = inv_sqrt_c2(i);
        most = std::max(most, batch.n[k]);
      }
      if (most == 0) continue;
      adamw_kernel<D><<<dim3(blocks_for(most), unsigned(count)), cuda::kThreads, 0, cuda::stream(device)>>>(
          batch, hyper_.beta1, hyper_.beta2, hyper_.eps, 1.0 - hyper_.lr * hyper_.weight_decay);
      WICK_CUDA_LAUNCH_CHECK("adamw_kernel");
    }
  });
}

}  // namespace wick
