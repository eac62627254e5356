// CUDA kernels of the batched-adapter LoRA update, one CTA per token and its own slot (BGMV-style:
// a batch is tens to a few hundred tokens; adapters used by several tokens are read from L2):
//   shrink: CTA i, warp w takes ranks w, w + 8, ...: t[i, j] = A[slot_i][j] . x[i] (f32), 16-byte
//           loads along `in` when rows are whole vectors;
//   expand: CTA (i, 128 outputs): thread o adds scale * B[slot_i][o] . t[i] to y[i, o], reading its
//           row of B (r contiguous values) with 16-byte loads when r allows.
// Tokens with slot -1 are skipped; a slot past the stack raises a device error (and is skipped).
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

constexpr int kShrinkWarps = 8;
constexpr int kExpandThreads = 128;

// sum_k p[k] * q[k] over n values; lanes of a warp take interleaved pieces (16-byte vectors when
// `vec`), the warp's total is returned to every lane.
template <typename D>
__device__ __forceinline__ float warp_dot(const D* __restrict__ p, const D* __restrict__ q, int n, bool vec,
                                          int lane) {
  constexpr int kV = 16 / int(sizeof(D));
  float acc = 0.f;
  if (vec) {
    const uint4* pv = reinterpret_cast<const uint4*>(p);
    const uint4* qv = reinterpret_cast<const uint4*>(q);
#pragma unroll 4
    for (int v = lane; v < n / kV; v += 32) {
      uint4 a = pv[v], b = qv[v];
      const D* ae = reinterpret_cast<const D*>(&a);
      const D* be = reinterpret_cast<const D*>(&b);
#pragma unroll
      for (int e = 0; e < kV; ++e) acc = fmaf(float(cuda::to_c(ae[e])), float(cuda::to_c(be[e])), acc);
    }
  } else {
    for (int k = lane; k < n; k += 32) acc = fmaf(float(cuda::to_c(p[k])), float(cuda::to_c(q[k])), acc);
  }
  return cuda::warp_sum(acc);
}

template <typename D>
__global__ void shrink_kernel(const D* __restrict__ x, const int32_t* __restrict__ slots, const D* __restrict__ a,
                              float* __restrict__ t, int din, int r, int num_slots, bool vec, cuda::DeviceError* err) {
  const int64_t i = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int slot = slots[i];
  if (slot < 0) return;
  if (slot >= num_slots) {
    if (threadIdx.x == 0) cuda::raise_error(err, cuda::kErrLoraSlot, slot, num_slots);
    return;
  }
  const D* xi = x + i * din;
  for (int j = warp; j < r; j += kShrinkWarps) {
    float v = warp_dot(a + (int64_t(slot) * r + j) * din, xi, din, vec, lane);
    if (lane == 0) t[i * r + j] = v;
  }
}

template <typename D>
__global__ void expand_kernel(D* __restrict__ y, const int32_t* __restrict__ slots, const D* __restrict__ b,
                              const float* __restrict__ t, const float* __restrict__ scales, int dout, int r,
                              int num_slots, bool vec) {
  constexpr int kV = 16 / int(sizeof(D));
  extern __shared__ float ts[];  // t[i, :]
  const int64_t i = blockIdx.y;
  const int slot = slots[i];
  if (slot < 0 || slot >= num_slots) return;
  for (int j = threadIdx.x; j < r; j += blockDim.x) ts[j] = t[i * r + j];
  __syncthreads();
  const int o = blockIdx.x * kExpandThreads + threadIdx.x;
  if (o >= dout) return;
  const D* row = b + (int64_t(slot) * dout + o) * r;
  float acc = 0.f;
  if (vec) {
    const uint4* rv = reinterpret_cast<const uint4*>(row);
    for (int v = 0; v < r / kV; ++v) {
      uint4 w = rv[v];
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

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

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
    const bool shrink_vec = din % kV == 0 && aligned16(x.data_ptr()) && aligned16(a.data_ptr());
    shrink_kernel<D><<<unsigned(n), kShrinkWarps * 32, 0, stream>>>(
        static_cast<const D*>(x.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
        static_cast<const D*>(a.data_ptr()), static_cast<float*>(t.data_ptr()), int(din), int(r), int(s), shrink_vec,
        cuda::device_error(device));
    WICK_CUDA_LAUNCH_CHECK("lora_gather_add (shrink)");
    const bool expand_vec = r % kV == 0 && aligned16(b.data_ptr());
    dim3 expand_grid(unsigned((dout + kExpandThreads - 1) / kExpandThreads), unsigned(n));
    expand_kernel<D><<<expand_grid, kExpandThreads, size_t(r) * sizeof(float), stream>>>(
        static_cast<D*>(out.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
        static_cast<const D*>(b.data_ptr()), static_cast<const float*>(t.data_ptr()),
        static_cast<const float*>(scales.data_ptr()), int(dout), int(r), int(s), expand_vec);
    WICK_CUDA_LAUNCH_CHECK("lora_gather_add (expand)");
  });
}

}  // namespace wick
