// CUDA kernels of the elementwise primitives, fills and random draws (any strides, every dtype
// the CPU backend accepts; 16-bit floats compute in float).
#include <cstring>

#include "wick/backend/cuda/copy.h"
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"
#include "wick/core/random_bits.h"

namespace wick {

using cuda::cptr;
using cuda::dev_t;
using cuda::from_c;
using cuda::launch_strided;
using cuda::mptr;
using cuda::to_c;

namespace {

// Integers compute in their own type for the ops defined on them (neg, abs, relu, + - * / ...),
// in double for the others (as std:: math promotes them on the CPU).
template <class Fn, typename D>
__device__ __forceinline__ D apply_unary(D x) {
  if constexpr (std::is_integral_v<D>) {
    if constexpr (std::is_unsigned_v<D> && std::is_same_v<Fn, fn::Abs>)
      return x;
    else if constexpr (std::is_same_v<Fn, fn::Neg> || std::is_same_v<Fn, fn::Abs> || std::is_same_v<Fn, fn::Relu>)
      return D(Fn{}(x));
    else
      return D(Fn{}(double(x)));
  } else {
    return from_c<D>(Fn{}(to_c(x)));
  }
}

template <class Fn, typename D>
__device__ __forceinline__ auto apply_binary(D a, D b) {
  using C = cuda::dcompute_t<D>;
  if constexpr (std::is_integral_v<D> && std::is_same_v<Fn, fn::Pow>) {
    return D(Fn{}(double(a), double(b)));
  } else {
    using R = decltype(Fn{}(C(), C()));
    if constexpr (std::is_same_v<R, bool>) return Fn{}(to_c(a), to_c(b));
    else return from_c<D>(Fn{}(to_c(a), to_c(b)));
  }
}

template <class Fn, typename D>
struct UnaryOp {
  const D* x;
  D* y;
  __device__ void operator()(const int64_t* off) const { y[off[0]] = apply_unary<Fn>(x[off[1]]); }
};

template <class Fn, typename D, typename R>
struct BinaryOp {
  const D* a;
  const D* b;
  R* y;
  __device__ void operator()(const int64_t* off) const { y[off[0]] = apply_binary<Fn>(a[off[1]], b[off[2]]); }
};

template <typename D>
struct WhereOp {
  const bool* c;
  const D* a;
  const D* b;
  D* y;
  __device__ void operator()(const int64_t* off) const { y[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]]; }
};

// Device twin of the CPU backend's convert<D, S>.
template <typename D, typename S>
__device__ __forceinline__ D dconvert(S s) {
  if constexpr (std::is_same_v<D, bool>) {
    return to_c(s) != cuda::dcompute_t<S>(0);
  } else if constexpr (std::is_same_v<S, bool>) {
    return from_c<D>(cuda::dcompute_t<D>(s ? 1 : 0));
  } else {
    return from_c<D>(static_cast<cuda::dcompute_t<D>>(to_c(s)));
  }
}

template <typename D, typename S>
struct CastOp {
  const S* x;
  D* y;
  __device__ void operator()(const int64_t* off) const { y[off[0]] = dconvert<D, S>(x[off[1]]); }
};

template <typename U>
struct FillOp {
  U* y;
  U value;
  __device__ void operator()(const int64_t* off) const { y[off[0]] = value; }
};

template <typename D>
struct ArangeOp {
  D* y;
  double start, step;
  __device__ void operator()(const int64_t* off) const { y[off[0]] = dconvert<D, double>(start + double(off[0]) * step); }
};

struct RandomOp {
  float* y;
  uint64_t seed, counter;
  bool normal;
  __device__ void operator()(const int64_t* off) const {
    uint64_t i = uint64_t(off[0]);
    y[i] = normal ? rng::normal(seed, counter, i) : rng::uniform(seed, counter + i);
  }
};

// Contiguous floating operands of one shape, 16-byte aligned: 16 bytes per load and store (8
// bf16/f16 values or 4 f32), the tail one value at a time. Each thread reads its values before it
// writes them, so an output that aliases an input is fine.
template <class Fn, typename D, int Inputs>
__global__ void vec16_kernel(int64_t n, const D* a, const D* b, D* y) {
  constexpr int V = 16 / sizeof(D);
  int64_t stride = int64_t(gridDim.x) * blockDim.x, first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t nv = n / V;
  for (int64_t i = first; i < nv; i += stride) {
    __align__(16) D va[V], vb[V], vy[V];
    *reinterpret_cast<uint4*>(va) = reinterpret_cast<const uint4*>(a)[i];
    if constexpr (Inputs == 2) *reinterpret_cast<uint4*>(vb) = reinterpret_cast<const uint4*>(b)[i];
#pragma unroll
    for (int k = 0; k < V; ++k) {
      if constexpr (Inputs == 2) vy[k] = apply_binary<Fn>(va[k], vb[k]);
      else vy[k] = apply_unary<Fn>(va[k]);
    }
    reinterpret_cast<uint4*>(y)[i] = *reinterpret_cast<const uint4*>(vy);
  }
  for (int64_t i = nv * V + first; i < n; i += stride) {
    if constexpr (Inputs == 2) y[i] = apply_binary<Fn>(a[i], b[i]);
    else y[i] = apply_unary<Fn>(a[i]);
  }
}

template <typename T>
constexpr bool kVec16Type = std::is_floating_point_v<T> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// Whether vec16_kernel applies: one shape, all dense and 16-byte aligned.
bool vec16_applies(const Tensor& out, std::initializer_list<const Tensor*> in) {
  auto ok = [&](const Tensor& t) {
    return t.shape() == out.shape() && t.strides() == contiguous_strides(out.shape()) &&
           reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  };
  if (out.numel() == 0 || !ok(out)) return false;
  for (const Tensor* t : in)
    if (!ok(*t)) return false;
  return true;
}

template <class Fn, typename T, int Inputs>
void launch_vec16(const Tensor& out, const Tensor& a, const Tensor* b) {
  using D = dev_t<T>;
  int64_t n = out.numel();
  constexpr int V = 16 / sizeof(D);
  int device = out.device().index;
  vec16_kernel<Fn, D, Inputs><<<cuda::grid_for((n + V - 1) / V, device), cuda::kThreads, 0, cuda::stream(device)>>>(
      n, cptr<T>(a), b ? cptr<T>(*b) : nullptr, mptr<T>(out));
  WICK_CUDA_LAUNCH_CHECK("vec16_kernel");
}

// Host twin of the CPU backend's convert<T, double> (the fill value is formed once on the host).
template <typename T>
T host_convert(double v) {
  if constexpr (std::is_same_v<T, bool>) return v != 0.0;
  else return T(static_cast<compute_t<T>>(v));
}

template <typename U>
void fill_bits(const Tensor& out, U bits) {
  launch_strided<1>(out.shape(), {out.strides()}, out.device().index, FillOp<U>{static_cast<U*>(out.data_ptr()), bits},
                    "full");
}

}  // namespace

template <class Fn>
void Unary<Fn>::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  dispatch_all(x.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(Fn::name, ": not defined for bool tensors");
    } else {
      if constexpr (kVec16Type<T>) {
        if (vec16_applies(out, {&x})) return launch_vec16<Fn, T, 1>(out, x, nullptr);
      }
      launch_strided<2>(out.shape(), {out.strides(), x.strides()}, out.device().index,
                        UnaryOp<Fn, dev_t<T>>{cptr<T>(x), mptr<T>(out)}, Fn::name);
    }
  });
}

template <class Fn>
void Binary<Fn>::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  out.allocate();
  dispatch_all(a.dtype(), [&]<typename T>() {
    using C = compute_t<T>;
    using R = decltype(Fn{}(C(), C()));
    std::array<Strides, 3> strides{out.strides(), a.strides(), b.strides()};
    if constexpr (std::is_same_v<R, bool>) {
      launch_strided<3>(out.shape(), strides, out.device().index,
                        BinaryOp<Fn, dev_t<T>, bool>{cptr<T>(a), cptr<T>(b), mptr<bool>(out)}, Fn::name);
    } else if constexpr (std::is_same_v<T, bool>) {
      fail(Fn::name, ": not defined for bool tensors");
    } else {
      if constexpr (kVec16Type<T>) {
        if (vec16_applies(out, {&a, &b})) return launch_vec16<Fn, T, 2>(out, a, &b);
      }
      launch_strided<3>(out.shape(), strides, out.device().index,
                        BinaryOp<Fn, dev_t<T>, dev_t<T>>{cptr<T>(a), cptr<T>(b), mptr<T>(out)}, Fn::name);
    }
  });
}

#define WICK_INSTANTIATE(F) template void Unary<fn::F>::eval_cuda(const std::vector<Tensor>&, const Tensor&);
WICK_UNARY_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE
#define WICK_INSTANTIATE(F) template void Binary<fn::F>::eval_cuda(const std::vector<Tensor>&, const Tensor&);
WICK_ARITH_FNS(WICK_INSTANTIATE)
WICK_COMPARE_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE

void Where::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &c = in[0], &a = in[1], &b = in[2];
  out.allocate();
  dispatch_all(a.dtype(), [&]<typename T>() {
    launch_strided<4>(out.shape(), {out.strides(), c.strides(), a.strides(), b.strides()}, out.device().index,
                      WhereOp<dev_t<T>>{cptr<bool>(c), cptr<T>(a), cptr<T>(b), mptr<T>(out)}, "where");
  });
}

void AsType::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.allocate();
  if (x.dtype() == out.dtype() && x.is_contiguous()) {
    size_t nbytes = size_t(out.numel()) * out.itemsize();
    if (nbytes)
      WICK_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), x.data_ptr(), nbytes, cudaMemcpyDeviceToDevice,
                                      cuda::stream_of(out)));
    return;
  }
  if (x.dtype() == out.dtype()) {  // a strided copy (a reshape or contiguous of a view)
    cuda::copy_strided(out.data_ptr(), out.strides(), x.data_ptr(), x.strides(), out.shape(), out.itemsize(),
                       out.device().index, "astype");
    return;
  }
  dispatch_all(x.dtype(), [&]<typename S>() {
    dispatch_all(out.dtype(), [&]<typename D>() {
      launch_strided<2>(out.shape(), {out.strides(), x.strides()}, out.device().index,
                        CastOp<dev_t<D>, dev_t<S>>{cptr<S>(x), mptr<D>(out)}, "astype");
    });
  });
}

void Full::eval_cuda(const std::vector<Tensor>&, const Tensor& out) {
  out.allocate();
  dispatch_all(out.dtype(), [&]<typename T>() {
    T v = host_convert<T>(value_);
    if constexpr (sizeof(T) == 1) { uint8_t u; std::memcpy(&u, &v, 1); fill_bits(out, u); }
    else if constexpr (sizeof(T) == 2) { uint16_t u; std::memcpy(&u, &v, 2); fill_bits(out, u); }
    else if constexpr (sizeof(T) == 4) { uint32_t u; std::memcpy(&u, &v, 4); fill_bits(out, u); }
    else { uint64_t u; std::memcpy(&u, &v, 8); fill_bits(out, u); }
  });
}

void Arange::eval_cuda(const std::vector<Tensor>&, const Tensor& out) {
  out.allocate();
  dispatch_all(out.dtype(), [&]<typename T>() {
    launch_strided<1>(out.shape(), {out.strides()}, out.device().index, ArangeOp<dev_t<T>>{mptr<T>(out), start_, step_},
                      "arange");
  });
}

void Random::eval_cuda(const std::vector<Tensor>&, const Tensor& out) {
  out.allocate();
  launch_strided<1>(out.shape(), {out.strides()}, out.device().index,
                    RandomOp{mptr<float>(out), seed_, counter_, kind_ == RandomKind::Normal}, name());
}

}  // namespace wick
