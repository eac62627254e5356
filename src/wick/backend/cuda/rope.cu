// CUDA kernel of rotary position embeddings (and of their inverse, the vjp): one thread per element.
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

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
