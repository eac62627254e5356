// Skinny products over dense bf16, f16 and f32 weights (the kernel is in gemv_kernel.cuh).
#include "wick/backend/cuda/gemv_kernel.cuh"

namespace wick::cuda::gemv {

template void launch_format<DecDense<__nv_bfloat16>, __nv_bfloat16>(Dtype, const SkinnyParams&, const SkinnyConfig&,
                                                                    cudaStream_t);
template void launch_format<DecDense<__half>, __half>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);
template void launch_format<DecDense<float>, float>(Dtype, const SkinnyParams&, const SkinnyConfig&, cudaStream_t);

}  // namespace wick::cuda::gemv
