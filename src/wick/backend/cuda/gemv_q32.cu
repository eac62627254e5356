// Skinny products over the 32-element GGML blocks Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (the kernel is
// in gemv_kernel.cuh).
#include "wick/backend/cuda/gemv_kernel.cuh"

namespace wick::cuda::gemv {

template void launch_format<DecQ4_0, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ4_1, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ5_0, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ5_1, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ8_0, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);

}  // namespace wick::cuda::gemv
