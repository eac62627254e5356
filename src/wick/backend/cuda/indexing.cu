// CUDA gather/scatter, slice writes and concatenation. An index out of range raises the device
// error flag (the op's output gets zeros there) and is reported as a wick::Error at the next
// synchronisation (a copy to the host or wick::synchronize).
#include "wick/backend/cuda/copy.h"
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

struct AxisSplit {
  int64_t outer = 1, size = 1, inner = 1;
};
AxisSplit split_at(const Shape& shape, int axis) {
  AxisSplit s;
  for (int d = 0; d < axis; ++d) s.outer *= shape[d];
  s.size = shape[axis];
  for (size_t d = axis + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

// The wrapped index, or -1 (after raising the error flag) when out of range.
template <typename I>
__device__ __forceinline__ int64_t checked_index(const I* idx, int64_t i, int64_t limit, cuda::DeviceError* err,
                                                 int code) {
  int64_t v = int64_t(idx[i]);
  int64_t w = v < 0 ? v + limit : v;
  if (w < 0 || w >= limit) {
    cuda::raise_error(err, code, v, limit);
    return -1;
  }
  return w;
}

// Storage-sized unsigned type for byte copies.
template <size_t S> struct bits_of;
template <> struct bits_of<1> { using type = uint8_t; };
template <> struct bits_of<2> { using type = uint16_t; };
template <> struct bits_of<4> { using type = uint32_t; };
template <> struct bits_of<8> { using type = uint64_t; };

template <typename U, typename I>
__global__ void gather_kernel(const U* x, const I* idx, U* y, int64_t total, int64_t n, int64_t size, int64_t inner,
                              cuda::DeviceError* err) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t j = e % inner, r = e / inner, i = r % n, o = r / n;
    int64_t w = checked_index(idx, i, size, err, cuda::kErrGatherIndex);
    y[e] = w < 0 ? U(0) : x[(o * size + w) * inner + j];
  }
}

template <typename D>
__device__ __forceinline__ void atomic_add(D* p, D v) {
  if constexpr (std::is_same_v<D, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else if constexpr (std::is_same_v<D, uint8_t>) {
    // No byte atomics: update the byte inside its aligned 32-bit word.
    uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t(3));
    unsigned int shift = unsigned(addr & 3) * 8;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      unsigned int byte = ((assumed >> shift) + v) & 0xffu;
      old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (old != assumed);
  } else {
    atomicAdd(p, v);
  }
}

template <typename D, typename I>
__global__ void scatter_add_kernel(const D* src, const I* idx, D* y, int64_t total, int64_t n, int64_t size,
                                   int64_t inner, cuda::DeviceError* err) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t j = e % inner, r = e / inner, i = r % n, o = r / n;
    int64_t w = checked_index(idx, i, size, err, cuda::kErrScatterIndex);
    if (w >= 0) atomic_add(y + (o * size + w) * inner + j, src[e]);
  }
}

template <typename U>
struct CopyOp {
  U* dst;
  const U* src;
  __device__ void operator()(const int64_t* off) const { dst[off[0]] = src[off[1]]; }
};

// Copies src (any strides) into the block of dst (contiguous) at start with steps.
void write_block(const Tensor& dst, const Tensor& src, const Shape& start, const Shape& step) {
  const Strides& ds = dst.strides();
  int64_t base = 0;
  Strides block_strides(ds.size());
  for (size_t d = 0; d < ds.size(); ++d) {
    base += start[d] * ds[d];
    block_strides[d] = ds[d] * step[d];
  }
  cuda::copy_strided(static_cast<char*>(dst.data_ptr()) + base * int64_t(dst.itemsize()), block_strides,
                     src.data_ptr(), src.strides(), src.shape(), dst.itemsize(), dst.device().index, "write_block");
}

}  // namespace

namespace cuda {

void copy_strided(void* dst, const Strides& dst_strides, const void* src, const Strides& src_strides,
                  const Shape& shape, size_t itemsize, int device, const char* name) {
  auto copy = [&]<typename U>(const Shape& sh, const Strides& d, const Strides& s) {
    launch_strided<2>(sh, {d, s}, device, CopyOp<U>{static_cast<U*>(dst), static_cast<const U*>(src)}, name);
  };
  // 16-byte units: the last dim dense in both, its bytes and every other stride a multiple of 16.
  int nd = int(shape.size());
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  int64_t per = 16 / int64_t(itemsize);
  bool wide = nd > 0 && itemsize <= 16 && 16 % itemsize == 0 && aligned(dst) && aligned(src) && shape[nd - 1] > 1 &&
              dst_strides[nd - 1] == 1 && src_strides[nd - 1] == 1 && shape[nd - 1] % per == 0;
  for (int d = 0; wide && d < nd - 1; ++d)
    wide = shape[d] == 1 || (dst_strides[d] % per == 0 && src_strides[d] % per == 0);
  if (wide && per > 1) {
    Shape sh = shape;
    Strides ds = dst_strides, ss = src_strides;
    sh[nd - 1] /= per;
    for (int d = 0; d < nd - 1; ++d) {
      ds[d] /= per;
      ss[d] /= per;
    }
    copy.template operator()<uint4>(sh, ds, ss);
    return;
  }
  switch (itemsize) {
    case 1: copy.template operator()<uint8_t>(shape, dst_strides, src_strides); break;
    case 2: copy.template operator()<uint16_t>(shape, dst_strides, src_strides); break;
    case 4: copy.template operator()<uint32_t>(shape, dst_strides, src_strides); break;
    default: copy.template operator()<uint64_t>(shape, dst_strides, src_strides); break;
  }
}

}  // namespace cuda

void Gather::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor index = cuda::contiguous_on_device(in[1]);
  out.allocate();
  AxisSplit s = split_at(x.shape(), axis_);
  int64_t total = out.numel(), n = index.numel();
  if (total == 0) return;
  int device = out.device().index;
  dispatch_index(index.dtype(), "gather", [&]<typename I>() {
    dispatch_all(x.dtype(), [&]<typename T>() {
      using U = typename bits_of<sizeof(T)>::type;
      gather_kernel<U, I><<<cuda::grid_for(total, device), cuda::kThreads, 0, cuda::stream(device)>>>(
          static_cast<const U*>(x.data_ptr()), static_cast<const I*>(index.data_ptr()), static_cast<U*>(out.data_ptr()),
          total, n, s.size, s.inner, cuda::device_error(device));
      WICK_CUDA_LAUNCH_CHECK("gather_kernel");
    });
  });
}

void ScatterAdd::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  WICK_CHECK(in[0].dtype() != Dtype::Bool, "scatter_add: not defined for bool tensors");
  AsType().eval_cuda({in[0]}, out);  // out = a contiguous copy of base
  Tensor index = cuda::contiguous_on_device(in[1]);
  Tensor src = cuda::contiguous_on_device(in[2]);
  AxisSplit s = split_at(out.shape(), axis_);
  int64_t total = src.numel(), n = index.numel();
  if (total == 0) return;
  int device = out.device().index;
  dispatch_index(index.dtype(), "scatter_add", [&]<typename I>() {
    dispatch_all(out.dtype(), [&]<typename T>() {
      if constexpr (!std::is_same_v<T, bool>) {
        using D = cuda::dev_t<T>;
        scatter_add_kernel<D, I><<<cuda::grid_for(total, device), cuda::kThreads, 0, cuda::stream(device)>>>(
            cuda::cptr<T>(src), static_cast<const I*>(index.data_ptr()), cuda::mptr<T>(out), total, n, s.size, s.inner,
            cuda::device_error(device));
        WICK_CUDA_LAUNCH_CHECK("scatter_add_kernel");
      }
    });
  });
}

void SliceUpdate::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& dst = in[0];
  // Into dst's own memory when nothing else can see it, else into a copy of dst.
  if (!take_over_input(in, out)) AsType().eval_cuda({dst}, out);
  write_block(out, in[1], start_, step_);
}

void PlaceBlocks::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  size_t nbytes = size_t(out.numel()) * out.itemsize();
  if (nbytes) WICK_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, nbytes, cuda::stream_of(out)));
  for (size_t i = 0; i < in.size(); ++i) write_block(out, in[i], starts_[i], Shape(starts_[i].size(), 1));
}

void Concat::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  if (view_of_inputs(in, out)) return;
  out.allocate();
  Shape start(out.ndim(), 0), step(out.ndim(), 1);
  for (const Tensor& x : in) {
    write_block(out, x, start, step);
    start[axis_] += x.shape(axis_);
  }
}

}  // namespace wick
