// CUDA kernels of the batched-adapter LoRA update, grouped by adapter slot so that each slot's A
// and B are read from memory once per launch whatever the number of tokens using it (SGMV-style):
//   shrink: one CTA per (slot, 4 ranks): warp j keeps row j of A[slot] in registers and takes its
//           dot product with every token of that slot -> t[N, r] (f32);
//   expand: one CTA per (slot, 128 outputs): thread o adds scale * B[slot][o] . t[n] to output o of
//           every token n of that slot.
// Tokens are matched to slots by scanning the slots array (N is a batch: tens to a few hundred).
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

constexpr int kShrinkWarps = 4;
constexpr int kExpandThreads = 128;

template <typename D>
__global__ void shrink_kernel(const D* __restrict__ x, const int32_t* __restrict__ slots, const D* __restrict__ a,
                              float* __restrict__ t, int n, int din, int r, int num_slots, cuda::DeviceError* err) {
  const int slot = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int j = blockIdx.x * kShrinkWarps + warp;
  if (blockIdx.x == 0 && blockIdx.y == 0)
    for (int i = threadIdx.x; i < n; i += blockDim.x)
      if (slots[i] >= num_slots) cuda::raise_error(err, cuda::kErrLoraSlot, slots[i], num_slots);
  if (j >= r) return;
  const D* row = a + (int64_t(slot) * r + j) * din;
  for (int i = 0; i < n; ++i) {
    if (slots[i] != slot) continue;
    const D* xi = x + int64_t(i) * din;
    float acc = 0.f;
    for (int k = lane; k < din; k += 32) acc = fmaf(cuda::to_c(row[k]), cuda::to_c(xi[k]), acc);
    acc = cuda::warp_sum(acc);
    if (lane == 0) t[int64_t(i) * r + j] = acc;
  }
}

template <typename D>
__global__ void expand_kernel(D* __restrict__ y, const int32_t* __restrict__ slots, const D* __restrict__ b,
                              const float* __restrict__ t, const float* __restrict__ scales, int n, int dout, int r) {
  const int slot = blockIdx.y;
  const int o = blockIdx.x * kExpandThreads + threadIdx.x;
  if (o >= dout) return;
  const float scale = scales[slot];
  const D* row = b + (int64_t(slot) * dout + o) * r;  // re-read per token from L1/L2, once from memory
  for (int i = 0; i < n; ++i) {
    if (slots[i] != slot) continue;
    const float* ti = t + int64_t(i) * r;
    float acc = 0.f;
    for (int j = 0; j < r; ++j) acc = fmaf(cuda::to_c(row[j]), ti[j], acc);
    D* yo = y + int64_t(i) * dout + o;
    *yo = cuda::from_c<D>(cuda::to_c(*yo) + scale * acc);
  }
}

}  // namespace

void LoraGatherAdd::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& base = in[0];
  if (SliceUpdate::can_reuse(base)) out.set_data(base.storage(), base.strides(), 0);
  else AsType().eval_cuda({base}, out);
  Tensor x = cuda::contiguous_on_device(in[1]), slots = cuda::contiguous_on_device(in[2]);
  Tensor a = cuda::contiguous_on_device(in[3]), b = cuda::contiguous_on_device(in[4]);
  Tensor scales = cuda::contiguous_on_device(in[5]);
  int device = out.device().index;
  int64_t n = x.shape(0), din = x.shape(1), dout = out.shape(1), s = a.shape(0), r = a.shape(1);
  if (n == 0 || s == 0) return;
  WICK_CHECK(s <= 65535, name(), ": at most 65535 adapter slots on CUDA, got ", s);
  Tensor t = Tensor::empty({n, r}, Dtype::F32, out.device());
  cudaStream_t stream = cuda::stream(device);
  WICK_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), 0, size_t(n * r) * sizeof(float), stream));
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    dim3 shrink_grid(unsigned((r + kShrinkWarps - 1) / kShrinkWarps), unsigned(s));
    shrink_kernel<D><<<shrink_grid, kShrinkWarps * 32, 0, stream>>>(
        static_cast<const D*>(x.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
        static_cast<const D*>(a.data_ptr()), static_cast<float*>(t.data_ptr()), int(n), int(din), int(r), int(s),
        cuda::device_error(device));
    WICK_CUDA_LAUNCH_CHECK("lora_gather_add (shrink)");
    dim3 expand_grid(unsigned((dout + kExpandThreads - 1) / kExpandThreads), unsigned(s));
    expand_kernel<D><<<expand_grid, kExpandThreads, 0, stream>>>(
        static_cast<D*>(out.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
        static_cast<const D*>(b.data_ptr()), static_cast<const float*>(t.data_ptr()),
        static_cast<const float*>(scales.data_ptr()), int(n), int(dout), int(r));
    WICK_CUDA_LAUNCH_CHECK("lora_gather_add (expand)");
  });
}

}  // namespace wick
