// The LoRA update scale * (x @ A^T) @ B^T. For a few rows (decoding) one fused kernel: each block
// takes a few rows of x, reduces them against A into a rank-r vector kept in shared memory, then
// expands it through B; x @ A^T never reaches global memory. For many rows, two cuBLASLt GEMMs.
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

using cuda::dcompute_t;
using cuda::dev_t;

constexpr int kRowsPerBlock = 8;  // one warp per row in the first phase
constexpr int kRankChunk = 16;
constexpr int64_t kGemmRows = 64;  // from this many rows on, two cuBLASLt GEMMs beat the fused kernel

// `base` (may alias `out`, may be null) is added to the update: each element is read and written
// by the same thread.
template <typename D>
__global__ void lora_delta_kernel(const D* __restrict__ x, const D* __restrict__ a, const D* __restrict__ b,
                                  const D* base, D* out, int64_t m, int k, int r, int n, float scale) {
  using C = std::conditional_t<std::is_same_v<D, double>, double, float>;
  __shared__ C t[kRowsPerBlock][LoraDelta::kMaxRank];
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp;
  if (row < m) {
    const D* xr = x + row * k;
    for (int j0 = 0; j0 < r; j0 += kRankChunk) {
      C acc[kRankChunk];
#pragma unroll
      for (int jj = 0; jj < kRankChunk; ++jj) acc[jj] = 0;
      for (int c = lane; c < k; c += 32) {
        C xv = C(cuda::to_c(xr[c]));
#pragma unroll
        for (int jj = 0; jj < kRankChunk; ++jj)
          if (j0 + jj < r) acc[jj] += xv * C(cuda::to_c(a[int64_t(j0 + jj) * k + c]));
      }
#pragma unroll
      for (int jj = 0; jj < kRankChunk; ++jj) {
        C v = acc[jj];
        for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0 && j0 + jj < r) t[warp][j0 + jj] = v;
      }
    }
  }
  __syncthreads();
  int64_t left = m - int64_t(blockIdx.x) * kRowsPerBlock;
  int rows = left < kRowsPerBlock ? int(left) : kRowsPerBlock;
  for (int col = threadIdx.x; col < n; col += blockDim.x) {
    const D* br = b + int64_t(col) * r;
    C acc[kRowsPerBlock];
#pragma unroll
    for (int i = 0; i < kRowsPerBlock; ++i) acc[i] = 0;
    for (int j = 0; j < r; ++j) {
      C bv = C(cuda::to_c(br[j]));
#pragma unroll
      for (int i = 0; i < kRowsPerBlock; ++i) acc[i] += t[i][j] * bv;
    }
    for (int i = 0; i < rows; ++i) {
      int64_t at = (int64_t(blockIdx.x) * kRowsPerBlock + i) * n + col;
      C v = acc[i] * C(scale);
      if (base != nullptr) v += C(cuda::to_c(base[at]));
      out[at] = cuda::from_c<D>(v);
    }
  }
}

}  // namespace

void LoraDelta::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor a = cuda::contiguous_on_device(in[1]);
  Tensor b = cuda::contiguous_on_device(in[2]);
  // lora_add: the base is summed in; a donated base's buffer becomes the output.
  Tensor base = accumulate_ ? cuda::contiguous_on_device(in[3]) : Tensor();
  if (donate_) out.set_data(base.storage(), contiguous_strides(out.shape()), base.offset());
  else out.allocate();
  int64_t m = x.shape(0);
  int k = int(x.shape(1)), r = int(a.shape(0)), n = int(b.shape(0));
  if (m == 0 || n == 0) return;
  int device = out.device().index;
  if (m >= kGemmRows && out.dtype() != Dtype::F64) {
    // Many rows (training, prefill): two tensor-core GEMMs, t = x A^T (rounded to the data type,
    // as PEFT's lora_A output is) and out = scale * t B^T (+ base).
    Tensor t = Tensor::empty({m, int64_t(r)}, out.dtype(), out.device());
    cuda::gemm_nt(out.dtype(), m, r, k, x.data_ptr(), a.data_ptr(), t.data_ptr(), 1.0f, 0.0f, device);
    if (keep_xa()) keep(t);  // B's gradient reads it
    if (accumulate_ && !donate_)
      WICK_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), base.data_ptr(), size_t(m * n) * out.itemsize(),
                                      cudaMemcpyDeviceToDevice, cuda::stream(device)));
    cuda::gemm_nt(out.dtype(), m, n, r, t.data_ptr(), b.data_ptr(), out.data_ptr(), float(scale_),
                  accumulate_ ? 1.0f : 0.0f, device);
    return;
  }
  int64_t blocks = (m + kRowsPerBlock - 1) / kRowsPerBlock;
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    using D = dev_t<T>;
    lora_delta_kernel<D><<<unsigned(blocks), 32 * kRowsPerBlock, 0, cuda::stream(device)>>>(
        static_cast<const D*>(x.data_ptr()), static_cast<const D*>(a.data_ptr()), static_cast<const D*>(b.data_ptr()),
        accumulate_ ? static_cast<const D*>(base.data_ptr()) : nullptr, static_cast<D*>(out.data_ptr()), m, k, r, n,
        float(scale_));
    WICK_CUDA_LAUNCH_CHECK("lora_delta_kernel");
  });
}

}  // namespace wick
