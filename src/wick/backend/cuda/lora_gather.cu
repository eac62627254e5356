// CUDA kernels of the batched-adapter LoRA update (BGMV-style: a batch is tens to a few hundred
// tokens; adapters used by several tokens are read from L2). Each dot product gets a CTA of its own,
// so a step's short, latency-bound products spread over the whole GPU:
//   shrink: CTA (j, i): its 128 threads split `in` for t[i, j] = A[slot_i][j] . x[i] (f32), with
//           16-byte loads when rows are whole vectors;
//   expand: CTA (128 outputs, i): thread o adds scale * B[slot_i][o] . t[i] to y[i, o], reading its
//           row of B (r contiguous values) with 16-byte loads when r allows; with output parts (a
//           stacked projection's compact B) o's part picks its rank columns of t. Calls of more
//           tokens than a decode step has (a prompt's chunk) take CTA (128 outputs, 8 consecutive
//           tokens) instead, thread o keeping its row of B in registers while the tokens' slot stays
//           the same (a prompt's tokens share theirs): B is read once per run of a slot in the tile,
//           not once per token; each token's sum is the same sequence of operations either way.
// Tokens with slot -1 get zeros from the shrink and are skipped by the expand; a slot past the stack
// raises a device error (and is skipped). Both kernels are launched as programmatic dependents (kernel_utils.cuh) and load their first
// vectors of A or B (weights) before they wait: the shrink while the base product drains, the
// expand while the shrink runs. Slots and scales are written by copies, never by a kernel of the
// step, so they too are read before the wait.
#include <type_traits>

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

// t's type: f32, or f64 for f64 operands.
template <typename D>
using acc_t = std::conditional_t<std::is_same_v<D, double>, double, float>;

template <typename D>
__global__ void shrink_kernel(const D* __restrict__ x, const int32_t* __restrict__ slots, const D* __restrict__ a,
                              acc_t<D>* __restrict__ t, int din, int r, int num_slots, bool vec, cuda::DeviceError* err) {
  using A = acc_t<D>;
  constexpr int kV = 16 / int(sizeof(D));
  __shared__ A scratch[32];
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
    if (threadIdx.x == 0) t[i * r + j] = 0;
    if (slot >= num_slots && j == 0 && threadIdx.x == 0) cuda::raise_error(err, cuda::kErrLoraSlot, slot, num_slots);
    return;
  }
  const D* xi = x + i * din;
  A acc = 0;
  if (vec) {
    const uint4* xv = reinterpret_cast<const uint4*>(xi);
    for (int k = 0, v = threadIdx.x; v < vectors; ++k, v += kShrinkThreads) {
      uint4 w = vector_at(held, reinterpret_cast<const uint4*>(row), k, v), xx = xv[v];
      const D* we = reinterpret_cast<const D*>(&w);
      const D* xe = reinterpret_cast<const D*>(&xx);
#pragma unroll
      for (int e = 0; e < kV; ++e) acc = fma(A(cuda::to_c(we[e])), A(cuda::to_c(xe[e])), acc);
    }
  } else {
    for (int k = threadIdx.x; k < din; k += kShrinkThreads) acc = fma(A(cuda::to_c(row[k])), A(cuda::to_c(xi[k])), acc);
  }
  acc = cuda::block_combine(acc, [](A p, A q) { return p + q; }, scratch);
  if (threadIdx.x == 0) t[i * r + j] = acc;
}

// The ends of an expand's output parts (lora_gather_expand's `parts`; one part: {dout}).
constexpr int kMaxParts = 8;
struct PartEnds {
  int end[kMaxParts];
  int count;
};

// kDelta: y is written with the update alone (zeros for tokens without a slot), not added to.
template <typename D, bool kDelta = false>
__global__ void expand_kernel(D* __restrict__ y, const int32_t* __restrict__ slots, const D* __restrict__ b,
                              const acc_t<D>* __restrict__ t, const float* __restrict__ scales, int dout, int r,
                              int t_cols, PartEnds parts, int num_slots, bool vec) {
  using A = acc_t<D>;
  constexpr int kV = 16 / int(sizeof(D));
  extern __shared__ __align__(16) unsigned char smem[];
  A* ts = reinterpret_cast<A*>(smem);  // t[i, :]
  const int64_t i = blockIdx.y;
  const int slot = slots[i];
  const int o = blockIdx.x * kExpandThreads + threadIdx.x;
  int part = 0;
  while (part + 1 < parts.count && o >= parts.end[part]) ++part;
  const bool active = slot >= 0 && slot < num_slots && o < dout;
  const D* row = b + (int64_t(active ? slot : 0) * dout + (active ? o : 0)) * r;
  const int vectors = vec ? r / kV : 0;
  uint4 held[kHeld];
#pragma unroll
  for (int k = 0; k < kHeld; ++k)
    if (active && k < vectors) held[k] = reinterpret_cast<const uint4*>(row)[k];
  cuda::grid_dependency_wait();  // t (the shrink's) and y (the product's)
  cuda::launch_dependents();
  if (slot < 0 || slot >= num_slots) {
    if (kDelta && o < dout) y[i * dout + o] = cuda::from_c<D>(A(0));
    return;
  }
  for (int j = threadIdx.x; j < t_cols; j += blockDim.x) ts[j] = t[i * t_cols + j];
  __syncthreads();
  if (o >= dout) return;
  const A* tp = ts + part * r;  // the part's rank columns of t
  A acc = 0;
  if (vec) {
    for (int v = 0; v < vectors; ++v) {
      uint4 w = vector_at(held, reinterpret_cast<const uint4*>(row), v, v);
      const D* we = reinterpret_cast<const D*>(&w);
#pragma unroll
      for (int e = 0; e < kV; ++e) acc = fma(A(cuda::to_c(we[e])), tp[v * kV + e], acc);
    }
  } else {
    for (int j = 0; j < r; ++j) acc = fma(A(cuda::to_c(row[j])), tp[j], acc);
  }
  D* yo = y + i * dout + o;
  if constexpr (kDelta) {
    *yo = cuda::from_c<D>(A(scales[slot]) * acc);
  } else {
    *yo = cuda::from_c<D>(cuda::to_c(*yo) + A(scales[slot]) * acc);
  }
}

// The expand over tiles of kTile consecutive tokens: thread o holds its row of B (vectors <= kRowVectors
// 16-byte vectors) in registers while consecutive tokens share a slot. Each token's sum is
// expand_kernel's, operation for operation (the same fma order over the rank), so its bits are too.
constexpr int kTile = 8;
constexpr int kRowVectors = 8;
// Tokens per call from which the expand takes tiles (above the largest decode batch).
constexpr int64_t kTileFromTokens = 65;

template <typename D, bool kDelta>
__global__ void expand_tile_kernel(D* __restrict__ y, const int32_t* __restrict__ slots, const D* __restrict__ b,
                                   const acc_t<D>* __restrict__ t, const float* __restrict__ scales, int64_t n,
                                   int dout, int r, int t_cols, PartEnds parts, int num_slots) {
  using A = acc_t<D>;
  constexpr int kV = 16 / int(sizeof(D));
  extern __shared__ __align__(16) unsigned char smem[];
  A* ts = reinterpret_cast<A*>(smem);  // t[i0 .. i0 + kTile, :]
  const int64_t i0 = int64_t(blockIdx.y) * kTile;
  const int tokens = int(min(int64_t(kTile), n - i0));
  const int o = blockIdx.x * kExpandThreads + threadIdx.x;
  int part = 0;
  while (part + 1 < parts.count && o >= parts.end[part]) ++part;
  const int vectors = r / kV;
  uint4 row[kRowVectors];
  auto load_row = [&](int slot) {
    const uint4* p = reinterpret_cast<const uint4*>(b + (int64_t(slot) * dout + o) * r);
#pragma unroll
    for (int v = 0; v < kRowVectors; ++v)
      if (v < vectors) row[v] = p[v];
  };
  int held = -1;  // the slot whose row is in registers
  const int first = slots[i0];
  if (o < dout && first >= 0 && first < num_slots) {
    load_row(first);  // weights: before the wait
    held = first;
  }
  cuda::grid_dependency_wait();  // t (the shrink's) and y (the product's)
  cuda::launch_dependents();
  for (int k = threadIdx.x; k < tokens * t_cols; k += blockDim.x) ts[k] = t[i0 * t_cols + k];
  __syncthreads();
  if (o >= dout) return;
  for (int k = 0; k < tokens; ++k) {
    const int64_t i = i0 + k;
    const int slot = slots[i];
    D* yo = y + i * dout + o;
    if (slot < 0 || slot >= num_slots) {
      if (kDelta) *yo = cuda::from_c<D>(A(0));
      continue;
    }
    if (slot != held) {
      load_row(slot);
      held = slot;
    }
    const A* tp = ts + k * t_cols + part * r;
    A acc = 0;
#pragma unroll
    for (int v = 0; v < kRowVectors; ++v) {
      if (v < vectors) {
        const D* we = reinterpret_cast<const D*>(&row[v]);
#pragma unroll
        for (int e = 0; e < kV; ++e) acc = fma(A(cuda::to_c(we[e])), tp[v * kV + e], acc);
      }
    }
    if constexpr (kDelta) {
      *yo = cuda::from_c<D>(A(scales[slot]) * acc);
    } else {
      *yo = cuda::from_c<D>(cuda::to_c(*yo) + A(scales[slot]) * acc);
    }
  }
}

}  // namespace

void LoraGatherShrink::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  Tensor x = cuda::contiguous_on_device(in[0]), slots = cuda::contiguous_on_device(in[1]);
  Tensor a = cuda::contiguous_on_device(in[2]);
  int device = out.device().index;
  int64_t n = x.shape(0), din = x.shape(1), s = a.shape(0), r = a.shape(1);
  if (n == 0) return;
  WICK_CHECK(n <= 65535, name(), ": at most 65535 tokens per call on CUDA, got ", n);
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    constexpr int64_t kV = 16 / int64_t(sizeof(D));
    const bool vec = din % kV == 0 && cuda::aligned16(x.data_ptr()) && cuda::aligned16(a.data_ptr());
    cuda::launch_dependent(shrink_kernel<D>, dim3(unsigned(r), unsigned(n)), dim3(kShrinkThreads), 0,
                           cuda::stream(device), static_cast<const D*>(x.data_ptr()),
                           static_cast<const int32_t*>(slots.data_ptr()), static_cast<const D*>(a.data_ptr()),
                           static_cast<acc_t<D>*>(out.data_ptr()), int(din), int(r), int(s), vec,
                           cuda::device_error(device));
    WICK_CUDA_LAUNCH_CHECK("lora_gather_shrink");
  });
}

namespace {

// The expand over out[N, dout]: added into it, or (kDelta) written as the update alone.
template <bool kDelta>
void launch_expand(const char* op, const Tensor& out, const Tensor& t_in, const Tensor& slots_in, const Tensor& b_in,
                   const Tensor& scales_in, const std::vector<int64_t>& parts) {
  Tensor t = cuda::contiguous_on_device(t_in), slots = cuda::contiguous_on_device(slots_in);
  Tensor b = cuda::contiguous_on_device(b_in), scales = cuda::contiguous_on_device(scales_in);
  int device = out.device().index;
  int64_t n = t.shape(0), t_cols = t.shape(1), dout = out.shape(1), s = b.shape(0), r = b.shape(2);
  if (n == 0 || dout == 0) return;
  WICK_CHECK(n <= 65535, op, ": at most 65535 tokens per call on CUDA, got ", n);
  WICK_CHECK(t_cols <= LoraGatherShrink::kMaxRank, op, ": rank ", t_cols, " is above ", LoraGatherShrink::kMaxRank);
  WICK_CHECK(int64_t(parts.size()) <= kMaxParts, op, ": at most ", kMaxParts, " output parts on CUDA, got ",
             parts.size());
  if (s == 0) {
    if (kDelta) WICK_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, size_t(out.numel()) * out.itemsize(), cuda::stream(device)));
    return;
  }
  PartEnds ends{{}, 1};
  ends.end[0] = int(dout);
  if (!parts.empty()) {
    ends.count = int(parts.size());
    int64_t end = 0;
    for (size_t p = 0; p < parts.size(); ++p) ends.end[p] = int(end += parts[p]);
  }
  dispatch_float(out.dtype(), op, [&]<typename T>() {
    using D = cuda::dev_t<T>;
    constexpr int64_t kV = 16 / int64_t(sizeof(D));
    const bool vec = r % kV == 0 && cuda::aligned16(b.data_ptr());
    const unsigned out_blocks = unsigned((dout + kExpandThreads - 1) / kExpandThreads);
    if (n >= kTileFromTokens && vec && r / kV <= kRowVectors) {
      dim3 grid(out_blocks, unsigned((n + kTile - 1) / kTile));
      cuda::launch_dependent(expand_tile_kernel<D, kDelta>, grid, dim3(kExpandThreads),
                             size_t(kTile * t_cols) * sizeof(acc_t<D>), cuda::stream(device),
                             static_cast<D*>(out.data_ptr()), static_cast<const int32_t*>(slots.data_ptr()),
                             static_cast<const D*>(b.data_ptr()), static_cast<const acc_t<D>*>(t.data_ptr()),
                             static_cast<const float*>(scales.data_ptr()), n, int(dout), int(r), int(t_cols), ends,
                             int(s));
      WICK_CUDA_LAUNCH_CHECK("lora_gather_expand (or _delta), tiles");
      return;
    }
    dim3 grid(out_blocks, unsigned(n));
    cuda::launch_dependent(expand_kernel<D, kDelta>, grid, dim3(kExpandThreads), size_t(t_cols) * sizeof(acc_t<D>),
                           cuda::stream(device), static_cast<D*>(out.data_ptr()),
                           static_cast<const int32_t*>(slots.data_ptr()), static_cast<const D*>(b.data_ptr()),
                           static_cast<const acc_t<D>*>(t.data_ptr()), static_cast<const float*>(scales.data_ptr()),
                           int(dout), int(r), int(t_cols), ends, int(s), vec);
    WICK_CUDA_LAUNCH_CHECK("lora_gather_expand (or _delta)");
  });
}

}  // namespace

void LoraGatherExpand::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  if (!take_over_input(in, out)) AsType().eval_cuda({in[0]}, out);
  launch_expand<false>(name(), out, in[1], in[2], in[3], in[4], parts());
}

void LoraGatherDelta::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  launch_expand<true>(name(), out, in[0], in[1], in[2], in[3], parts());
}

}  // namespace wick
