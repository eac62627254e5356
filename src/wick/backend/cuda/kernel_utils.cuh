// Device-side helpers shared by the CUDA kernels: storage-type mapping and float conversion,
// strided indexing of up to 8 dims (passed by value), launch sizes and warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "wick/backend/cuda/runtime.h"
#include "wick/core/dtype.h"

namespace wick::cuda {

// The device type stored for a wick type (same bits): wick::f16 -> __half, wick::bf16 -> __nv_bfloat16.
template <typename T> struct dev_type { using type = T; };
template <> struct dev_type<f16> { using type = __half; };
template <> struct dev_type<bf16> { using type = __nv_bfloat16; };
template <typename T> using dev_t = typename dev_type<T>::type;

// The type arithmetic is done in (float for 16-bit floats, as on the CPU).
template <typename D> struct dcompute { using type = D; };
template <> struct dcompute<__half> { using type = float; };
template <> struct dcompute<__nv_bfloat16> { using type = float; };
template <typename D> using dcompute_t = typename dcompute<D>::type;

// Accumulator of sums and statistics: double for f64, int64 for integers, else float.
template <typename D> struct dacc { using type = std::conditional_t<std::is_integral_v<D>, int64_t, float>; };
template <> struct dacc<double> { using type = double; };
template <typename D> using dacc_t = typename dacc<D>::type;

template <typename D>
__device__ __forceinline__ dcompute_t<D> to_c(D v) {
  if constexpr (std::is_same_v<D, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<D, __nv_bfloat16>) return __bfloat162float(v);
  else return v;
}
template <typename D, typename C>
__device__ __forceinline__ D from_c(C v) {
  if constexpr (std::is_same_v<D, __half>) return __float2half_rn(float(v));
  else if constexpr (std::is_same_v<D, __nv_bfloat16>) return __float2bfloat16_rn(float(v));
  else return D(v);
}
// Any storage type to float / double for statistics.
template <typename A, typename D>
__device__ __forceinline__ A to_acc(D v) {
  return A(to_c(v));
}

constexpr int kMaxDims = 8;

// Element offsets of N operands for a linear index over a (merged) shape.
template <int N>
struct StridedIndexer {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t i = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
  // True when every operand is contiguous over the whole index space (offset == linear index).
  bool contiguous() const { return ndim == 0 || (ndim == 1 && all_unit(0)); }

 private:
  bool all_unit(int d) const {
    for (int k = 0; k < N; ++k)
      if (strides[k][d] != 1) return false;
    return true;
  }
};

// Drops size-1 dims and merges dims contiguous for all operands; throws past 8 dims.
template <int N>
StridedIndexer<N> make_indexer(const Shape& shape, const std::array<Strides, N>& strides, const char* op) {
  StridedIndexer<N> ix;
  int nd = 0;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = ix.strides[k][nd - 1] == strides[k][i] * shape[i];
    if (merge) {
      ix.sizes[nd - 1] *= shape[i];
      for (int k = 0; k < N; ++k) ix.strides[k][nd - 1] = strides[k][i];
      continue;
    }
    WICK_CHECK(nd < kMaxDims, op, ": the CUDA backend handles at most ", kMaxDims,
               " non-mergeable dims, got shape ", shape_str(shape));
    ix.sizes[nd] = shape[i];
    for (int k = 0; k < N; ++k) ix.strides[k][nd] = strides[k][i];
    ++nd;
  }
  ix.ndim = nd;
  return ix;
}

constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n, int device, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = int64_t(sm_count(device)) * 32;
  if (blocks > cap) blocks = cap;
  return unsigned(blocks < 1 ? 1 : blocks);
}

// Runs op(off) for every element, off holding the N operands' element offsets.
template <int N, bool Contiguous, class Op>
__global__ void strided_kernel(int64_t n, StridedIndexer<N> ix, Op op) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    if constexpr (Contiguous) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i;
    } else {
      ix.offsets(i, off);
    }
    op(off);
  }
}

template <int N, class Op>
void launch_strided(const Shape& shape, const std::array<Strides, N>& strides, int device, Op op, const char* name) {
  int64_t n = numel(shape);
  if (n == 0) return;
  StridedIndexer<N> ix = make_indexer<N>(shape, strides, name);
  cudaStream_t s = stream(device);
  if (ix.contiguous()) strided_kernel<N, true, Op><<<grid_for(n, device), kThreads, 0, s>>>(n, ix, op);
  else strided_kernel<N, false, Op><<<grid_for(n, device), kThreads, 0, s>>>(n, ix, op);
  WICK_CUDA_LAUNCH_CHECK("strided_kernel");
}

template <typename T>
const dev_t<T>* cptr(const Tensor& t) {
  return static_cast<const dev_t<T>*>(t.data_ptr());
}
template <typename T>
dev_t<T>* mptr(const Tensor& t) {
  return static_cast<dev_t<T>*>(t.data_ptr());
}

// Raises the device error flag (the first error wins); the host reports it at the next sync.
__device__ __forceinline__ void raise_error(DeviceError* e, int code, long long value, long long limit) {
  if (atomicCAS(&e->code, 0, code) == 0) {
    e->value = value;
    e->limit = limit;
    __threadfence_system();
  }
}

// ---- reductions across a warp / block
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Online (max, sum of exp(x - max)) pair, merged without NaN when both are empty.
template <typename A>
struct MaxSum {
  A m, s;
};
template <typename A>
__device__ __forceinline__ MaxSum<A> merge(MaxSum<A> a, MaxSum<A> b) {
  A m = max(a.m, b.m);
  if (m == -A(INFINITY)) return {m, A(0)};
  return {m, a.s * exp(a.m - m) + b.s * exp(b.m - m)};
}
template <typename A>
__device__ __forceinline__ MaxSum<A> warp_merge(MaxSum<A> v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<A> other{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = merge(v, other);
  }
  return v;
}

__device__ __forceinline__ float shfl_xor_any(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ double shfl_xor_any(double v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ int64_t shfl_xor_any(int64_t v, int o) {
  return static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), o));
}
template <typename A>
__device__ __forceinline__ MaxSum<A> shfl_xor_any(MaxSum<A> v, int o) {
  return {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
}

// Combines one value per thread of a block (blockDim.x threads, a multiple of 32) with `f`
// (associative); every thread gets the result. `scratch` holds 32 values.
template <typename V, class F>
__device__ V block_combine(V v, F f, V* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = f(v, shfl_xor_any(v, o));
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < warps; ++w) v = f(v, scratch[w]);
  return v;
}

// Whether a pointer allows 16-byte vector loads.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Programmatic dependent launch (sm_90 and later; see programmatic_launch in runtime.h). A kernel
// launched as a programmatic dependent may start while the kernel before it on the stream is still
// running: before grid_dependency_wait() it may read only data no kernel writes (weights), after it
// the earlier kernel has finished and its writes are visible. In a kernel launched normally the wait
// returns at once. launch_dependents() lets such a dependent start now, rather than when this
// kernel's blocks exit; it changes nothing for a kernel launched normally after this one.
__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent of the kernel before
// it on the stream when the device allows (programmatic_launch). The kernel must then call
// grid_dependency_wait() before it reads what earlier kernels write.
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                      Args&&... args) {
  if (!programmatic_launch(device_of_stream(stream))) {
    kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
    return;
  }
  cudaLaunchAttribute attr[1] = {};
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attr;
  config.numAttrs = 1;
  WICK_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace wick::cuda
