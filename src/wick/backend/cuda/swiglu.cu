// CUDA kernels of SwiGLU and its backward (any strides; 16-bit floats compute in float).
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

using cuda::cptr;
using cuda::dev_t;
using cuda::from_c;
using cuda::launch_strided;
using cuda::mptr;
using cuda::to_c;

namespace {

template <typename D>
struct SwiGLUOp {
  const D* a;
  const D* b;
  D* y;
  __device__ void operator()(const int64_t* off) const {
    y[off[0]] = from_c<D>(fn::Silu{}(to_c(a[off[1]])) * to_c(b[off[2]]));
  }
};

// d gate and d up of silu(a) * b, written to two outputs of one layout.
template <typename D>
struct SwiGLUBackwardOp {
  const D* a;
  const D* b;
  const D* g;
  D* d_gate;
  D* d_up;
  __device__ void operator()(const int64_t* off) const {
    using C = cuda::dcompute_t<D>;
    C av = to_c(a[off[1]]), bv = to_c(b[off[2]]), gv = to_c(g[off[3]]);
    C s = C(1) / (C(1) + exp(-av));
    d_gate[off[0]] = from_c<D>(gv * bv * s * (C(1) + av * (C(1) - s)));
    d_up[off[0]] = from_c<D>(gv * av * s);
  }
};

// Matrices [rows, cols] whose rows are dense and 16-byte aligned (as the halves of one [rows,
// 2 cols] projection are): 16 bytes per load, one division per 16 bytes.
constexpr int kRowVec = 16;

bool dense_rows(const Tensor& t, const Shape& shape) {
  int64_t per = kRowVec / int64_t(t.itemsize());
  return t.ndim() == 2 && t.shape() == shape && t.strides()[1] == 1 && shape[1] % per == 0 &&
         (shape[0] == 1 || t.strides()[0] % per == 0) && reinterpret_cast<uintptr_t>(t.data_ptr()) % kRowVec == 0;
}

template <typename D>
__global__ void swiglu_rows_kernel(int64_t rows, int64_t cols, const D* a, int64_t sa, const D* b, int64_t sb, D* y,
                                   int64_t sy) {
  constexpr int V = kRowVec / sizeof(D);
  int64_t per_row = cols / V, n = rows * per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i / per_row, c = (i % per_row) * V;
    __align__(16) D va[V], vb[V], vy[V];
    *reinterpret_cast<uint4*>(va) = *reinterpret_cast<const uint4*>(a + r * sa + c);
    *reinterpret_cast<uint4*>(vb) = *reinterpret_cast<const uint4*>(b + r * sb + c);
#pragma unroll
    for (int k = 0; k < V; ++k) vy[k] = from_c<D>(fn::Silu{}(to_c(va[k])) * to_c(vb[k]));
    *reinterpret_cast<uint4*>(y + r * sy + c) = *reinterpret_cast<const uint4*>(vy);
  }
}

template <typename D>
__global__ void swiglu_backward_rows_kernel(int64_t rows, int64_t cols, const D* a, int64_t sa, const D* b, int64_t sb,
                                            const D* g, int64_t sg, D* d_gate, D* d_up, int64_t so) {
  using C = cuda::dcompute_t<D>;
  constexpr int V = kRowVec / sizeof(D);
  int64_t per_row = cols / V, n = rows * per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i / per_row, c = (i % per_row) * V;
    __align__(16) D va[V], vb[V], vg[V], dg[V], du[V];
    *reinterpret_cast<uint4*>(va) = *reinterpret_cast<const uint4*>(a + r * sa + c);
    *reinterpret_cast<uint4*>(vb) = *reinterpret_cast<const uint4*>(b + r * sb + c);
    *reinterpret_cast<uint4*>(vg) = *reinterpret_cast<const uint4*>(g + r * sg + c);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      C av = to_c(va[k]), bv = to_c(vb[k]), gv = to_c(vg[k]);
      C s = C(1) / (C(1) + exp(-av));
      dg[k] = from_c<D>(gv * bv * s * (C(1) + av * (C(1) - s)));
      du[k] = from_c<D>(gv * av * s);
    }
    *reinterpret_cast<uint4*>(d_gate + r * so + c) = *reinterpret_cast<const uint4*>(dg);
    *reinterpret_cast<uint4*>(d_up + r * so + c) = *reinterpret_cast<const uint4*>(du);
  }
}

// swiglu_lora_shrink: CTA (g, i) computes row i of silu(a) * b (as swiglu_rows_kernel does; CTA
// (0, i) also writes it) and t[i, j] = A[slot_i][j] . act_i for the kShrinkRanks rank rows j of
// group g: each thread sums its own 16-byte vectors of the row for each j, then the CTA adds the
// threads' sums in a fixed order (f32). Many small CTAs rather than a warp per whole-row product, so
// a decode step's few tokens still spread over the GPU. Tokens with slot -1 get zeros; a slot past
// the stack raises a device error. Launched as a programmatic dependent: each thread's first vectors
// of A load before the wait, while the kernels before drain (slots are written by copies only).
constexpr int kShrinkRanks = 2;
constexpr int kHeldVectors = 3;  // per thread and rank row: the whole of a row of 4,864 bf16 values

template <typename D>
__global__ void swiglu_shrink_kernel(int cols, const D* a, int64_t sa, const D* b, int64_t sb, D* y, int64_t sy,
                                     const int32_t* slots, const D* as, float* t, int r, int num_slots,
                                     cuda::DeviceError* err) {
  cuda::launch_dependents();
  constexpr int V = kRowVec / sizeof(D);
  __shared__ float scratch[kShrinkRanks][cuda::kThreads / 32];
  const int64_t i = blockIdx.y;
  const int j0 = blockIdx.x * kShrinkRanks, nvec = cols / V, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int slot = slots[i];
  const bool active = slot >= 0 && slot < num_slots;
  const uint4* ar = reinterpret_cast<const uint4*>(as + (int64_t(active ? slot : 0) * r + j0) * cols);
  // The thread's first vectors of its rank rows of A, loaded before the wait (weights).
  uint4 held[kHeldVectors][kShrinkRanks];
#pragma unroll
  for (int k = 0; k < kHeldVectors; ++k)
#pragma unroll
    for (int q = 0; q < kShrinkRanks; ++q) {
      const int v = threadIdx.x + k * cuda::kThreads;
      if (active && j0 + q < r && v < nvec) held[k][q] = __ldg(ar + int64_t(q) * nvec + v);
    }
  cuda::grid_dependency_wait();  // gate and up come from the kernels before
  float acc[kShrinkRanks] = {};
  auto row_vector = [&](int v, const uint4 (&av)[kShrinkRanks]) {
    __align__(16) D va[V], vb[V], vy[V];
    *reinterpret_cast<uint4*>(va) = *reinterpret_cast<const uint4*>(a + i * sa + int64_t(v) * V);
    *reinterpret_cast<uint4*>(vb) = *reinterpret_cast<const uint4*>(b + i * sb + int64_t(v) * V);
#pragma unroll
    for (int k = 0; k < V; ++k) vy[k] = from_c<D>(fn::Silu{}(to_c(va[k])) * to_c(vb[k]));
    if (blockIdx.x == 0) *reinterpret_cast<uint4*>(y + i * sy + int64_t(v) * V) = *reinterpret_cast<const uint4*>(vy);
    if (!active) return;
#pragma unroll
    for (int q = 0; q < kShrinkRanks; ++q) {
      if (j0 + q >= r) break;
      const D* ae = reinterpret_cast<const D*>(&av[q]);
#pragma unroll
      for (int k = 0; k < V; ++k) acc[q] = fmaf(float(to_c(ae[k])), float(to_c(vy[k])), acc[q]);
    }
  };
#pragma unroll
  for (int k = 0; k < kHeldVectors; ++k) {
    const int v = threadIdx.x + k * cuda::kThreads;
    if (v < nvec) row_vector(v, held[k]);
  }
  for (int v = threadIdx.x + kHeldVectors * cuda::kThreads; v < nvec; v += cuda::kThreads) {
    uint4 av[kShrinkRanks];
#pragma unroll
    for (int q = 0; q < kShrinkRanks; ++q)
      if (active && j0 + q < r) av[q] = __ldg(ar + int64_t(q) * nvec + v);
    row_vector(v, av);
  }
  if (!active) {
    if (threadIdx.x < kShrinkRanks && j0 + int(threadIdx.x) < r) t[i * r + j0 + threadIdx.x] = 0.f;
    if (slot >= num_slots && blockIdx.x == 0 && threadIdx.x == 0)
      cuda::raise_error(err, cuda::kErrLoraSlot, slot, num_slots);
    return;
  }
#pragma unroll
  for (int q = 0; q < kShrinkRanks; ++q) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) acc[q] += __shfl_xor_sync(0xffffffffu, acc[q], m);
    if (lane == 0) scratch[q][warp] = acc[q];
  }
  __syncthreads();
  if (threadIdx.x < kShrinkRanks && j0 + int(threadIdx.x) < r) {
    float sum = 0.f;
    for (int w = 0; w < int(blockDim.x / 32); ++w) sum += scratch[threadIdx.x][w];
    t[i * r + j0 + threadIdx.x] = sum;
  }
}

}  // namespace

void SwiGLUBackward::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor &a = in[0], &b = in[1], &g = in[2];
  const Tensor &d_gate = outs[0], &d_up = outs[1];
  allocate_outputs(in, outs);  // side by side when gate and up are (split's vjp then joins them)
  const Shape& shape = a.shape();
  if (a.numel() > 0 && dense_rows(a, shape) && dense_rows(b, shape) && dense_rows(g, shape) &&
      dense_rows(d_gate, shape) && dense_rows(d_up, shape)) {
    int device = d_gate.device().index;
    dispatch_float(a.dtype(), name(), [&]<typename T>() {
      using D = dev_t<T>;
      int64_t n = a.numel() / (kRowVec / int64_t(sizeof(D)));
      swiglu_backward_rows_kernel<D><<<cuda::grid_for(n, device), cuda::kThreads, 0, cuda::stream(device)>>>(
          shape[0], shape[1], cptr<T>(a), a.strides()[0], cptr<T>(b), b.strides()[0], cptr<T>(g), g.strides()[0],
          mptr<T>(d_gate), mptr<T>(d_up), d_gate.strides()[0]);
      WICK_CUDA_LAUNCH_CHECK("swiglu_backward_rows_kernel");
    });
    return;
  }
  dispatch_float(a.dtype(), name(), [&]<typename T>() {
    launch_strided<4>(a.shape(), {d_gate.strides(), a.strides(), b.strides(), g.strides()},
                      d_gate.device().index,
                      SwiGLUBackwardOp<dev_t<T>>{cptr<T>(a), cptr<T>(b), cptr<T>(g), mptr<T>(d_gate), mptr<T>(d_up)},
                      name());
  });
}

void SwiGLULoraShrink::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor &a = in[0], &b = in[1], &act = outs[0], &t = outs[1];
  Tensor slots = cuda::contiguous_on_device(in[2]), as = cuda::contiguous_on_device(in[3]);
  const int device = a.device().index;
  const int64_t rows = a.shape(0), cols = a.shape(1), s = as.shape(0), r = as.shape(1);
  bool done = false;
  if (dense_rows(a, a.shape()) && dense_rows(b, a.shape()) && cuda::aligned16(as.data_ptr()) && rows >= 1 &&
      rows <= 65535) {
    dispatch_float(a.dtype(), name(), [&]<typename T>() {
      using D = dev_t<T>;
      if constexpr (sizeof(D) <= 4) {
        act.allocate();
        t.allocate();
        dim3 grid(unsigned((r + kShrinkRanks - 1) / kShrinkRanks), unsigned(rows));
        cuda::launch_dependent(swiglu_shrink_kernel<D>, grid, dim3(cuda::kThreads), 0, cuda::stream(device),
                               int(cols), cptr<T>(a), a.strides()[0], cptr<T>(b), b.strides()[0], mptr<T>(act),
                               act.strides()[0], static_cast<const int32_t*>(slots.data_ptr()), cptr<T>(as),
                               static_cast<float*>(t.data_ptr()), int(r), int(s), cuda::device_error(device));
        WICK_CUDA_LAUNCH_CHECK("swiglu_shrink_kernel");
        done = true;
      }
    });
  }
  if (done) return;
  SwiGLU().eval_cuda({a, b}, act);
  LoraGatherShrink().eval_cuda({act, slots, as}, t);
}

void SwiGLU::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  out.allocate();
  if (out.numel() > 0 && dense_rows(a, out.shape()) && dense_rows(b, out.shape()) && dense_rows(out, out.shape())) {
    int device = out.device().index;
    dispatch_float(a.dtype(), "swiglu", [&]<typename T>() {
      using D = dev_t<T>;
      int64_t n = out.numel() / (kRowVec / int64_t(sizeof(D)));
      swiglu_rows_kernel<D><<<cuda::grid_for(n, device), cuda::kThreads, 0, cuda::stream(device)>>>(
          out.shape(0), out.shape(1), cptr<T>(a), a.strides()[0], cptr<T>(b), b.strides()[0], mptr<T>(out),
          out.strides()[0]);
      WICK_CUDA_LAUNCH_CHECK("swiglu_rows_kernel");
    });
    return;
  }
  dispatch_float(a.dtype(), "swiglu", [&]<typename T>() {
    launch_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, out.device().index,
                      SwiGLUOp<dev_t<T>>{cptr<T>(a), cptr<T>(b), mptr<T>(out)}, "swiglu");
  });
}

}  // namespace wick
