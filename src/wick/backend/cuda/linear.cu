// CUDA evaluation of linear_add: the skinny product with bias and residual in its epilogue. Operands
// the skinny kernel cannot take (a view not 16-byte aligned) go through the general product, then
// one kernel for the additions.
#include "wick/backend/cuda/gemv.h"
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

template <typename D>
__global__ void add_epilogue_kernel(D* y, const D* bias, const D* residual, int64_t m, int64_t n) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < m * n; e += int64_t(gridDim.x) * blockDim.x) {
    float v = float(cuda::to_c(y[e]));
    if (bias) v += float(cuda::to_c(bias[e % n]));
    if (residual) v += float(cuda::to_c(residual[e]));
    y[e] = cuda::from_c<D>(v);
  }
}

}  // namespace

void LinearAdd::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  const Tensor& data = in[1];
  const Tensor* bias = bias_ ? &in[2] : nullptr;
  const Tensor* residual = residual_ ? &in[bias_ ? 3 : 2] : nullptr;
  const int64_t m = x.shape(0);
  const cuda::SkinnyWeight w{static_cast<const uint8_t*>(data.data_ptr()), type_, rows_, cols_};
  const bool skinny = cuda::skinny_beats_gemm(type_, m, rows_, cols_) &&
                      cuda::skinny_matmul_problem(w, x.data_ptr(), x.dtype(), m, out.dtype()).empty();
  const bool dense = type_ == ggml::GgmlType::BF16 || type_ == ggml::GgmlType::F16 || type_ == ggml::GgmlType::F32;
  // Where the residual's memory can be taken over, y is summed where it lies: the skinny epilogue
  // reads each element before writing it, the dense general product takes it as its C operand.
  const bool in_place = residual && (skinny || dense) && take_over_input(in, out);
  if (!in_place) out.allocate();
  if (m == 0) return;
  const int device = out.device().index;
  cudaStream_t s = cuda::stream(device);
  const void* pb = bias ? bias->data_ptr() : nullptr;
  const Dtype bias_dtype = bias ? bias->dtype() : Dtype::F32;
  if (skinny) {
    cuda::skinny_matmul(w, x.data_ptr(), x.dtype(), m, out.data_ptr(), out.dtype(), pb, bias_dtype, s,
                        residual ? (in_place ? out.data_ptr() : residual->data_ptr()) : nullptr);
    return;
  }
  // The general product (a dense one takes the residual as its C operand), then the additions.
  if (!dense) {
    QuantizedMatmul(type_, rows_, cols_, /*transposed=*/true).eval_cuda({x, data}, out);
  } else {
    if (residual && !in_place)
      WICK_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), residual->data_ptr(), size_t(m * rows_) * out.itemsize(),
                                      cudaMemcpyDeviceToDevice, s));
    cuda::gemm_nt(x.dtype(), m, rows_, cols_, x.data_ptr(), data.data_ptr(), out.data_ptr(), 1.0f,
                  residual ? 1.0f : 0.0f, device);
    residual = nullptr;
  }
  if (!bias && !residual) return;
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    add_epilogue_kernel<D><<<cuda::grid_for(m * rows_, device), cuda::kThreads, 0, s>>>(
        cuda::mptr<T>(out), bias ? cuda::cptr<T>(*bias) : nullptr, residual ? cuda::cptr<T>(*residual) : nullptr, m, rows_);
    WICK_CUDA_LAUNCH_CHECK("linear_add epilogue");
  });
}

}  // namespace wick
