// CUDA kernels of the batched-adapter LoRA update (BGMV-style: a batch is tens to a few hundred
// tokens; adapters used by several tokens are read from L2). Each dot product gets a CTA of its own,
// so a step's short, latency-bound products spread over the whole GPU:
//   shrink: CTA (j, i): its 128 threads split `in` for t[i, j] = A[slot_i][j] . x[i] (f32), with
//           16-byte loads when rows are whole vectors;
//   expand: CTA (128 outputs, i): thread o adds scale * B[slot_i][o] . t[i] to y[i, o], reading its
//           row of B (r contiguous values) with 16-byte loads when r allows.
// Tokens with slot -1 are skipped; a slot past the stack raises a device error (and is skipped).
// Both kernels are launched as programmatic dependents (kernel_utils.cuh) and load their first
// vectors of A or B (weights) before they wait: the shrink while the base product drains, the
// expand while the shrink runs. Slots and scales are written by copies, never by a kernel of the
// step, so they too are read before the wait.
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

constexpr int kShrinkThreads = 128;
constexpr int kExpandThreads = 128;
constexpr int kHeld = 4;  // 16-byte vectors per thread loaded before the wait

// The 16-byte vector `v` of a thread's sequence: one of the `held` ones, or loaded now.
__device__ __forceinline__ uint4 vector_at(const uint4 (&held)[kHeld], const uint4* p, int k, int v) {
  uint4 w = make_uint4(0, 0, 0, 0);
  if (k < kHeld) {
#pragma unroll
    for (int h = 0; h < kHeld; ++h)
      if (h == k) w = held[h];
  } else {
    w = p[v];
  }
  return w;
}

template <typename D>
__global__ void shrink_kernel(const D* __restrict__ x, const int32_t* __restrict__ slots, const D* __restrict__ a,
                              float* __restrict__ t, int din, int r, int num_slots, bool vec, cuda::DeviceError* err) {
  constexpr int kV = 16 / int(sizeof(D));
  __shared__ float scratch[32];
  const int j = blockIdx.x;
  const int64_t i = blockIdx.y;
  const int slot = slots[i];
  const bool active = slot >= 0 && slot < num_slots;
  const D* row = a + (int64_t(active ? slot : 0) * r + j) * din;
  const int vectors = vec ? din / kV : 0;
  uint4 held[kHeld];
#pragma unroll
  for (int k = 0; k < kHeld; ++k) {
    int v = threadIdx.x + k * kShrinkThreads;
    if (active && v < vectors) held[k] = reinterpret_cast<const uint4*>(row)[v];
  }
  cuda::grid_dependency_wait();  // x comes from an earlier kernel, and t's memory may have served one
  cuda::launch_dependents();
  if (!active) {
    if (slot >= num_slots && j == 0 && threadIdx.x == 0) cuda::raise_error(err, cuda::kErrLoraSlot, slot, num_slots);
    return;
  }
  const D* xi = x + i * din;
  float acc = 0.f;
  if (vec) {
    const uint4* xv = reinterpret_cast<const uint4*>(xi);
    for (int k = 0, v = threadIdx.x; v < vectors; ++k, v += kShrinkThreads) {
      uint4 w = vector_at(held, reinterpret_cast<const uint4*>(row), k, v), xx = xv[v];
      const D* we = reinterpret_cast<const D*>(&w);
      const D* xe = reinterpret_cast<const D*>(&xx);
#pragma unroll
      for (int e = 0; e < kV; ++e) acc = fmaf(float(cuda::to_c(we[e])), float(cuda::to_c(xe[e])), acc);
    }
  } else {
    for (int k = threadIdx.x; k < din; k += kShrinkThreads) acc = fmaf(float(cuda::to_c(row[k])), float(cuda::to_c(xi[k])), acc);
  }
  acc = cuda::block_combine(acc, [](float p, float q) { return p + q; }, scratch);
  if (threadIdx.x == 0) t[i * r + j] = acc;
}

template <typename D>
__global__ void expand_kernel(D* __restrict__ y, const int32_t* __restrict__ slots, const D* __restrict__ b,
                              const float* __restrict__ t, const float* __restrict__ scales, int dout, int r,
                              int num_slots, bool vec) {
  constexpr int kV = 16 / int(sizeof(D));
  extern __shared__ float ts[];  // t[i, :]
  const int64_t i = blockIdx.y;
  const int slot = slots[i];
  const int o = blockIdx.x * kExpandThreads + threadIdx.x;
  const bool active = slot >= 0 && slot < num_slots && o < dout;
  const D* row = b + (int64_t(active ? slot : 0) * dout + (active ? o : 0)) * r;
  const int vectors = vec ? r / kV : 0;
  uint4 held[kHeld];
#pragma unroll
  for (int k = 0; k < kHeld; ++k)
    if (active && k < vectors) held[k] = reinterpret_cast<const uint4*>(row)[k];
  cuda::grid_dependency_wait();  // t (the shrink's) and y (the product's)
  cuda::launch_dependents();
  if (slot < 0 || slot >= num_slots) return;
  for (int j = threadIdx.x; j < r; j += blockDim.x) ts[j] = t[i * r + j];
  __syncthreads();
  if (o >= dout) return;
  float acc = 0.f;
  if (vec) {
    for (int v = 0; v < vectors; ++v) {
      uint4 w = vector_at(held, reinterpret_cast<const uint4*>(row), v, v);
      const D* we = reinterpret_cast<const D*>(&w);
#pragma unroll
      for (int e = 0; e < kV; ++e) acc = fmaf(float(cuda::to_c(we[e])), ts[v * kV + e], acc);
    }
  } else {
    for (int j = 0; j < r; ++j) acc = fmaf(float(cuda::to_c(row[j])), ts[j], acc);
  }
  D* yo = y + i * dout + o;
  *yo = cuda::from_c<D>(cuda::to_c(*yo) + scales[slot] * acc);
}

}  // namespace

void LoraGatherAdd::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& base = in[0];
  if (!take_over_input(in, out)) AsType().eval_cuda({base}, out);
  Tensor x = cuda::contiguous_on_device(in[1]), slots = cuda::contiguous_on_device(in[2]);
  Tensor a = cuda::contiguous_on_device(in[3]), b = cuda::contiguous_on_device(in[4]);
  Tensor scales = cuda::contiguous_on_device(in[5]);
  int device = out.device().index;
  int64_t n = x.shape(0), din = x.shape(1), dout = out.shape(1), s = a.shape(0), r = a.shape(1);
  if (n == 0 || s == 0) return;
  WICK_CHECK(n <= 65535, name(), ": at most 65535 tokens per call on CUDA, got ", n);
  Tensor t = Tensor::empty({n, r}, Dtype::F32, out.device());
  cudaStream_t stream = cuda::stream(device);
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    constexpr int64_t kV = 16 / int64_t(sizeof(D));
    const bool shrink_vec = din % kV == 0 && cuda::aligned16(x.data_ptr()) && cuda::aligned16(a.data_ptr());
    cuda::launch_dependent(shrink_kernel<D>, dim3(unsigned(r), unsigned(n)), dim3(kShrinkThreads), 0, stream,
                           static_cast<const D*>(x.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
                           static_cast<const D*>(a.data_ptr()), static_cast<float*>(t.data_ptr()), int(din), int(r),
                           int(s), shrink_vec, cuda::device_error(device));
    WICK_CUDA_LAUNCH_CHECK("lora_gather_add (shrink)");
    const bool expand_vec = r % kV == 0 && cuda::aligned16(b.data_ptr());
    dim3 expand_grid(unsigned((dout + kExpandThreads - 1) / kExpandThreads), unsigned(n));
    cuda::launch_dependent(expand_kernel<D>, expand_grid, dim3(kExpandThreads), size_t(r) * sizeof(float), stream,
                           static_cast<D*>(out.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
                           static_cast<const D*>(b.data_ptr()), static_cast<const float*>(t.data_ptr()),
                           static_cast<const float*>(scales.data_ptr()), int(dout), int(r), int(s), expand_vec);
    WICK_CUDA_LAUNCH_CHECK("lora_gather_add (expand)");
  });
}

}  // namespace wick
