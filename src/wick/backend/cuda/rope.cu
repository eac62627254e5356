// CUDA kernel of rotary position embeddings (and of their inverse, the vjp): one thread per pair
// of values that rotate together (d and d + rd / 2, or 2i and 2i + 1 when interleaved), which
// forms the angle's sine and cosine once for both; values past the rotary dims are copied two at a
// time. The input is read through its strides (a [B, T, H, Dh] projection seen as [B, H, T, Dh]
// needs no copy first); the output is contiguous.
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

struct RopeDims {
  int64_t H, T, Dh;            // x is [B, H, T, Dh]
  int64_t s0, s1, s2, s3;      // x's strides in elements
  int rd;                      // rotary dims (even)
  bool interleaved, inverse;
};

template <typename D>
__global__ void rope_kernel(const D* x, const int64_t* pos, const float* inv, D* y, int64_t rows, RopeDims d) {
  using C = cuda::dcompute_t<D>;
  int half = d.rd / 2;
  int64_t per_row = half + (d.Dh - d.rd + 1) / 2;  // rotating pairs, then pairs of copied values
  int64_t total = rows * per_row;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t slot = e % per_row, r = e / per_row, t = r % d.T, bh = r / d.T, h = bh % d.H, b = bh / d.H;
    const D* xrow = x + b * d.s0 + h * d.s1 + t * d.s2;
    D* yrow = y + r * d.Dh;
    if (slot >= half) {  // past the rotary dims
      int64_t c = d.rd + 2 * (slot - half);
      yrow[c] = xrow[c * d.s3];
      if (c + 1 < d.Dh) yrow[c + 1] = xrow[(c + 1) * d.s3];
      continue;
    }
    int64_t c1 = d.interleaved ? 2 * slot : slot, c2 = d.interleaved ? c1 + 1 : slot + half;
    // The angle is formed in f32 (as HF does) unless the data itself is f64.
    int64_t pv = pos[b * d.T + t];
    C c, s;
    if constexpr (std::is_same_v<C, double>) {
      sincos(double(pv) * double(inv[slot]), &s, &c);
    } else {
      sincosf(float(pv) * inv[slot], &s, &c);
    }
    if (d.inverse) s = -s;
    C x1 = cuda::to_c(xrow[c1 * d.s3]), x2 = cuda::to_c(xrow[c2 * d.s3]);
    yrow[c1] = cuda::from_c<D>(x1 * c - x2 * s);
    yrow[c2] = cuda::from_c<D>(x2 * c + x1 * s);
  }
}

}  // namespace

void RoPE::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  Tensor pos = cuda::contiguous_on_device(in[1]);  // i64 [B, T] (made so by the op)
  Tensor inv = cuda::contiguous_on_device(in[2]);  // f32 [rotary_dim / 2]
  out.allocate();
  int64_t rows = x.shape(0) * x.shape(1) * x.shape(2);
  if (x.numel() == 0) return;
  RopeDims d{x.shape(1),     x.shape(2),     x.shape(3), x.strides()[0], x.strides()[1], x.strides()[2],
             x.strides()[3], rotary_dim_,    interleaved_, inverse_};
  int device = out.device().index;
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    rope_kernel<D><<<cuda::grid_for(rows * (rotary_dim_ / 2 + (d.Dh - rotary_dim_ + 1) / 2), device), cuda::kThreads, 0, cuda::stream(device)>>>(
        static_cast<const D*>(x.data_ptr()), static_cast<const int64_t*>(pos.data_ptr()),
        static_cast<const float*>(inv.data_ptr()), cuda::mptr<T>(out), rows, d);
    WICK_CUDA_LAUNCH_CHECK("rope_kernel");
  });
}

}  // namespace wick
