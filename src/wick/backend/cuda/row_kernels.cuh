// What the row-wise kernels (softmax.cu, norm.cu) share: one warp per row up to kWarpRowMax
// elements, one block per longer row, and the combination of a value over a row's threads
// (row_combine, with Plus for sums).
#pragma once

#include "wick/backend/cuda/kernel_utils.cuh"

namespace wick::cuda {

inline constexpr int kWarpRowMax = 1024;  // rows up to this length are handled by one warp

// Combines a value over the threads of one row: a warp (TPR 32, several rows per block) or the
// whole block (one row per block).
template <int TPR, typename V, class F>
__device__ __forceinline__ V row_combine(V v, F f, V* scratch) {
  if constexpr (TPR == 32) {
    using cuda::shfl_xor_any;  // found with the overloads of V's own namespace (Welford)
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = f(v, shfl_xor_any(v, o));
    return v;
  } else {
    return cuda::block_combine(v, f, scratch);
  }
}

template <typename A>
struct Plus {
  __device__ A operator()(A a, A b) const { return a + b; }
};

template <int TPR>
struct RowPos {
  int64_t row;
  int t;
  __device__ RowPos() {
    row = int64_t(blockIdx.x) * (blockDim.x / TPR) + threadIdx.x / TPR;
    t = threadIdx.x % TPR;
  }
};

}  // namespace wick::cuda
