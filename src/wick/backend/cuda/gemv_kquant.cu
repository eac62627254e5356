// Skinny products over the 256-element K-quant super-blocks Q2_K, Q3_K, Q4_K, Q5_K and Q6_K (the
// kernel is in gemv_kernel.cuh).
#include "wick/backend/cuda/gemv_kernel.cuh"

namespace wick::cuda::gemv {

template void launch_format<DecQ2_K, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ3_K, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ4_K, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ5_K, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecQ6_K, uint8_t>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);

}  // namespace wick::cuda::gemv
