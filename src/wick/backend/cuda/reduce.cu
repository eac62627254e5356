// CUDA reductions over any axes and strides: sums accumulate in float (double for f64, int64 for
// integers); max/min propagate NaN; argmax/argmin return the first extreme (or the first NaN).
#include <algorithm>

#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

using cuda::dacc_t;
using cuda::StridedIndexer;

namespace {

template <typename A>
__device__ __forceinline__ bool is_nan(A v) {
  return v != v;
}

template <typename A>
__device__ __forceinline__ A lowest() {
  if constexpr (std::is_floating_point_v<A>) return -A(INFINITY);
  else return A(-0x7fffffffffffffffLL - 1);
}
template <typename A>
__device__ __forceinline__ A highest() {
  if constexpr (std::is_floating_point_v<A>) return A(INFINITY);
  else return A(0x7fffffffffffffffLL);
}

template <typename A, ReduceKind K>
struct Combine {
  __device__ A identity() const {
    if constexpr (K == ReduceKind::Sum) return A(0);
    else if constexpr (K == ReduceKind::Max) return lowest<A>();
    else return highest<A>();
  }
  __device__ A operator()(A a, A b) const {
    if constexpr (K == ReduceKind::Sum) {
      return a + b;
    } else {
      if (is_nan(a)) return a;
      if (is_nan(b)) return b;
      return K == ReduceKind::Max ? (b > a ? b : a) : (b < a ? b : a);
    }
  }
};

__device__ __forceinline__ int64_t offset1(const StridedIndexer<1>& ix, int64_t i) {
  int64_t off[1];
  ix.offsets(i, off);
  return off[0];
}

// One block per output element (long reductions).
template <typename D, typename A, ReduceKind K>
__global__ void reduce_block_kernel(const D* x, D* y, int64_t n_out, int64_t n_in, StridedIndexer<1> outer,
                                    StridedIndexer<1> inner) {
  __shared__ A scratch[32];
  Combine<A, K> f;
  for (int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    int64_t base = offset1(outer, o);
    A acc = f.identity();
    for (int64_t i = threadIdx.x; i < n_in; i += blockDim.x) acc = f(acc, A(cuda::to_c(x[base + offset1(inner, i)])));
    acc = cuda::block_combine(acc, f, scratch);
    if (threadIdx.x == 0) y[o] = cuda::from_c<D>(acc);
  }
}

// One thread per output element (short reductions, many outputs: neighbouring threads read
// neighbouring memory when the kept dims are the inner ones).
template <typename D, typename A, ReduceKind K>
__global__ void reduce_thread_kernel(const D* x, D* y, int64_t n_out, int64_t n_in, StridedIndexer<1> outer,
                                     StridedIndexer<1> inner) {
  Combine<A, K> f;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n_out; o += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = offset1(outer, o);
    A acc = f.identity();
    for (int64_t i = 0; i < n_in; ++i) acc = f(acc, A(cuda::to_c(x[base + offset1(inner, i)])));
    y[o] = cuda::from_c<D>(acc);
  }
}

// Few outputs over very long reductions (e.g. a loss summed over every element): the first pass
// spreads each output over `chunks` blocks writing partial results, the second combines them.
template <typename D, typename A, ReduceKind K>
__global__ void reduce_chunk_kernel(const D* x, A* partial, int64_t n_in, int64_t chunks, StridedIndexer<1> outer,
                                    StridedIndexer<1> inner) {
  __shared__ A scratch[32];
  Combine<A, K> f;
  int64_t o = blockIdx.x / chunks, c = blockIdx.x % chunks;
  int64_t len = (n_in + chunks - 1) / chunks, begin = c * len, end = begin + len < n_in ? begin + len : n_in;
  int64_t base = offset1(outer, o);
  A acc = f.identity();
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc = f(acc, A(cuda::to_c(x[base + offset1(inner, i)])));
  acc = cuda::block_combine(acc, f, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename D, typename A, ReduceKind K>
__global__ void reduce_partials_kernel(const A* partial, D* y, int64_t chunks) {
  __shared__ A scratch[32];
  Combine<A, K> f;
  A acc = f.identity();
  for (int64_t i = threadIdx.x; i < chunks; i += blockDim.x) acc = f(acc, partial[blockIdx.x * chunks + i]);
  acc = cuda::block_combine(acc, f, scratch);
  if (threadIdx.x == 0) y[blockIdx.x] = cuda::from_c<D>(acc);
}

struct AxesSplit {
  Shape outer_shape, inner_shape;
  Strides outer_strides, inner_strides;
};
AxesSplit split_axes(const Tensor& x, const std::vector<int>& axes) {
  AxesSplit s;
  for (int d = 0; d < x.ndim(); ++d) {
    bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    (reduced ? s.inner_shape : s.outer_shape).push_back(x.shape()[d]);
    (reduced ? s.inner_strides : s.outer_strides).push_back(x.strides()[d]);
  }
  return s;
}

template <typename D, typename A, ReduceKind K>
void launch_reduce(const Tensor& x, const Tensor& out, const AxesSplit& s) {
  int device = out.device().index;
  int64_t n_out = numel(s.outer_shape), n_in = numel(s.inner_shape);
  if (n_out == 0) return;
  auto outer = cuda::make_indexer<1>(s.outer_shape, {s.outer_strides}, "reduce");
  auto inner = cuda::make_indexer<1>(s.inner_shape, {s.inner_strides}, "reduce");
  const D* px = static_cast<const D*>(x.data_ptr());
  D* py = static_cast<D*>(out.data_ptr());
  cudaStream_t st = cuda::stream(device);
  bool per_thread = n_in <= 32 || (n_out >= 8192 && n_in <= 4096);
  int64_t sms = cuda::sm_count(device);
  if (!per_thread && n_out < sms && n_in >= (int64_t(1) << 16)) {
    // About four blocks per multiprocessor in all, each over at least 4096 elements.
    int64_t chunks = std::min<int64_t>((4 * sms + n_out - 1) / n_out, (n_in + 4095) / 4096);
    auto scratch = allocate(size_t(n_out * chunks) * sizeof(A), out.device());  // freed in stream order
    A* partial = static_cast<A*>(scratch->data());
    reduce_chunk_kernel<D, A, K><<<unsigned(n_out * chunks), cuda::kThreads, 0, st>>>(px, partial, n_in, chunks, outer, inner);
    WICK_CUDA_LAUNCH_CHECK("reduce_chunk_kernel");
    reduce_partials_kernel<D, A, K><<<unsigned(n_out), cuda::kThreads, 0, st>>>(partial, py, chunks);
    WICK_CUDA_LAUNCH_CHECK("reduce_partials_kernel");
    return;
  }
  if (per_thread) {
    reduce_thread_kernel<D, A, K><<<cuda::grid_for(n_out, device), cuda::kThreads, 0, st>>>(px, py, n_out, n_in, outer, inner);
    WICK_CUDA_LAUNCH_CHECK("reduce_thread_kernel");
  } else {
    unsigned blocks = unsigned(std::min<int64_t>(n_out, int64_t(cuda::sm_count(device)) * 64));
    reduce_block_kernel<D, A, K><<<blocks, cuda::kThreads, 0, st>>>(px, py, n_out, n_in, outer, inner);
    WICK_CUDA_LAUNCH_CHECK("reduce_block_kernel");
  }
}

// (value, index) of an arg-reduction; index -1 is empty.
template <typename A>
struct ValIdx {
  A v;
  int64_t i;
};

template <typename A>
__device__ __forceinline__ ValIdx<A> better(ValIdx<A> a, ValIdx<A> b, bool is_max) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  bool an = is_nan(a.v), bn = is_nan(b.v);
  if (an || bn) {
    if (an && bn) return a.i < b.i ? a : b;
    return an ? a : b;
  }
  if (is_max ? a.v > b.v : a.v < b.v) return a;
  if (is_max ? b.v > a.v : b.v < a.v) return b;
  return a.i < b.i ? a : b;
}

template <typename D, typename A>
__global__ void argreduce_kernel(const D* x, int64_t* y, int64_t n_out, int64_t n, int64_t step, StridedIndexer<1> outer,
                                 bool is_max) {
  __shared__ A sv[32];
  __shared__ int64_t si[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    int64_t base = offset1(outer, o);
    ValIdx<A> best{A(0), -1};
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) best = better(best, ValIdx<A>{A(cuda::to_c(x[base + i * step])), i}, is_max);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      ValIdx<A> other{cuda::shfl_xor_any(best.v, off), cuda::shfl_xor_any(best.i, off)};
      best = better(best, other, is_max);
    }
    __syncthreads();
    if (lane == 0) {
      sv[warp] = best.v;
      si[warp] = best.i;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      ValIdx<A> r{sv[0], si[0]};
      for (int w = 1; w < warps; ++w) r = better(r, ValIdx<A>{sv[w], si[w]}, is_max);
      y[o] = r.i < 0 ? 0 : r.i;
    }
  }
}

// The block's best of `v` (every thread's), in thread 0.
template <typename A>
__device__ __forceinline__ ValIdx<A> block_best(ValIdx<A> best, bool is_max) {
  __shared__ A sv[32];
  __shared__ int64_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    ValIdx<A> other{cuda::shfl_xor_any(best.v, off), cuda::shfl_xor_any(best.i, off)};
    best = better(best, other, is_max);
  }
  if (lane == 0) {
    sv[warp] = best.v;
    si[warp] = best.i;
  }
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < warps; ++w) best = better(best, ValIdx<A>{sv[w], si[w]}, is_max);
  return best;
}

// Few long rows (a decode step's logits: one row of 150k values): the first pass spreads each row
// over `chunks` blocks, each leaving its best (value, index); the second picks among them. Indices
// decide ties, so the first extreme wins as in the one-block kernel.
template <typename D, typename A>
__global__ void argreduce_chunk_kernel(const D* x, A* part_v, int64_t* part_i, int64_t n, int64_t step, int64_t chunks,
                                       StridedIndexer<1> outer, bool is_max) {
  const int64_t o = blockIdx.x / chunks, c = blockIdx.x % chunks;
  const int64_t len = (n + chunks - 1) / chunks, begin = c * len, end = begin + len < n ? begin + len : n;
  const int64_t base = offset1(outer, o);
  ValIdx<A> best{A(0), -1};
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    best = better(best, ValIdx<A>{A(cuda::to_c(x[base + i * step])), i}, is_max);
  best = block_best(best, is_max);
  if (threadIdx.x == 0) {
    part_v[blockIdx.x] = best.v;
    part_i[blockIdx.x] = best.i;
  }
}

template <typename A>
__global__ void argreduce_partials_kernel(const A* part_v, const int64_t* part_i, int64_t* y, int64_t chunks,
                                          bool is_max) {
  ValIdx<A> best{A(0), -1};
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x)
    best = better(best, ValIdx<A>{part_v[blockIdx.x * chunks + c], part_i[blockIdx.x * chunks + c]}, is_max);
  best = block_best(best, is_max);
  if (threadIdx.x == 0) y[blockIdx.x] = best.i < 0 ? 0 : best.i;
}

}  // namespace

void Reduce::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  AxesSplit s = split_axes(x, axes_);
  dispatch_all(x.dtype(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    switch (kind_) {
      case ReduceKind::Sum: launch_reduce<D, A, ReduceKind::Sum>(x, out, s); break;
      case ReduceKind::Max: launch_reduce<D, A, ReduceKind::Max>(x, out, s); break;
      case ReduceKind::Min: launch_reduce<D, A, ReduceKind::Min>(x, out, s); break;
    }
  });
}

void ArgReduce::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  AxesSplit s = split_axes(x, {axis_});
  int64_t n = x.shape()[axis_], step = x.strides()[axis_];
  int64_t n_out = numel(s.outer_shape);
  if (n_out == 0) return;
  int device = out.device().index;
  auto outer = cuda::make_indexer<1>(s.outer_shape, {s.outer_strides}, name());
  dispatch_all(x.dtype(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    using A = dacc_t<D>;
    const int64_t sms = cuda::sm_count(device);
    cudaStream_t st = cuda::stream(device);
    if (n_out < sms && n >= 16384) {
      // About four blocks per multiprocessor in all, each over at least 2048 values.
      const int64_t chunks = std::min<int64_t>((4 * sms + n_out - 1) / n_out, (n + 2047) / 2048);
      auto scratch = allocate(size_t(n_out * chunks) * (sizeof(A) + sizeof(int64_t)), out.device());
      int64_t* part_i = static_cast<int64_t*>(scratch->data());
      A* part_v = reinterpret_cast<A*>(part_i + n_out * chunks);
      argreduce_chunk_kernel<D, A><<<unsigned(n_out * chunks), cuda::kThreads, 0, st>>>(
          static_cast<const D*>(x.data_ptr()), part_v, part_i, n, step, chunks, outer, is_max_);
      WICK_CUDA_LAUNCH_CHECK("argreduce_chunk_kernel");
      argreduce_partials_kernel<A><<<unsigned(n_out), 128, 0, st>>>(part_v, part_i,
                                                                     static_cast<int64_t*>(out.data_ptr()), chunks,
                                                                     is_max_);
      WICK_CUDA_LAUNCH_CHECK("argreduce_partials_kernel");
      return;
    }
    unsigned blocks = unsigned(std::min<int64_t>(n_out, sms * 64));
    int threads = n <= 32 ? 32 : (n <= 1024 ? 128 : cuda::kThreads);
    argreduce_kernel<D, A><<<blocks, threads, 0, st>>>(static_cast<const D*>(x.data_ptr()),
                                                                         static_cast<int64_t*>(out.data_ptr()), n_out,
                                                                         n, step, outer, is_max_);
    WICK_CUDA_LAUNCH_CHECK("argreduce_kernel");
  });
}

}  // namespace wick
