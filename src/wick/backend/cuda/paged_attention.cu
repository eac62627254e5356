// CUDA kernels of the paged KV cache. Writes: one thread per element of the new keys/values.
// Attention: one CTA per (token, kv head, split of the context) computes the queries of the
// heads sharing that kv head (GQA without repeating K/V) over its split with an online softmax,
// staging tiles of 32 keys and values in shared memory; when a token's context is split
// (flash-decoding, to fill the GPU when few tokens attend over long contexts) a second kernel
// combines the splits' partial sums. Rows, positions and block tables are read on the device, so
// the launches keep fixed shapes from one decode step to the next.
#include <algorithm>

#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/ops/paged_attention.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

constexpr int kTile = 32;         // keys per shared-memory tile (one per lane in the softmax step)
constexpr int kAttnThreads = 128;
constexpr int kMaxOutPerThread = 32;  // group * head_dim <= 4096

struct DevPaging {
  const int32_t* tables;
  const int32_t* rows;
  const int32_t* positions;
  int rows_count, width, block_size, num_blocks;
};

// The flat slot (block * block_size + offset) of position p of row r, or -1 after raising the
// device error flag when the block table or the row is out of range.
__device__ __forceinline__ int64_t slot_of(const DevPaging& pg, int row, int p, cuda::DeviceError* err) {
  if (row < 0 || row >= pg.rows_count) {
    cuda::raise_error(err, cuda::kErrPagedIndex, row, pg.rows_count);
    return -1;
  }
  if (p < 0 || p >= pg.width * pg.block_size) {
    cuda::raise_error(err, cuda::kErrPagedIndex, p, int64_t(pg.width) * pg.block_size);
    return -1;
  }
  int block = pg.tables[int64_t(row) * pg.width + p / pg.block_size];
  if (block < 0 || block >= pg.num_blocks) {
    cuda::raise_error(err, cuda::kErrPagedIndex, block, pg.num_blocks);
    return -1;
  }
  return int64_t(block) * pg.block_size + p % pg.block_size;
}

struct Strides3 {
  int64_t tok, head, dim;
};

// One thread per element of the new keys and values; keys rotated (rotate-half) when inv != null.
template <typename D>
__global__ void kv_write_kernel(D* cache, const D* k, Strides3 ks, const D* v, Strides3 vs, const float* inv,
                                DevPaging pg, int64_t n, int heads, int dim, cuda::DeviceError* err) {
  using C = cuda::dcompute_t<D>;
  int64_t total = n * heads * dim;
  const int half = dim / 2;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int j = int(i % dim);
    int h = int((i / dim) % heads);
    int64_t t = i / (int64_t(dim) * heads);
    int pos = pg.positions[t];
    int64_t slot = slot_of(pg, pg.rows[t], pos, err);
    if (slot < 0) continue;
    int64_t block = slot / pg.block_size, offset = slot % pg.block_size;
    int64_t kd = (((block * 2 + 0) * heads + h) * pg.block_size + offset) * dim + j;
    int64_t vd = (((block * 2 + 1) * heads + h) * pg.block_size + offset) * dim + j;
    cache[vd] = v[t * vs.tok + h * vs.head + j * vs.dim];
    const D* krow = k + t * ks.tok + h * ks.head;
    if (!inv) {
      cache[kd] = krow[j * ks.dim];
      continue;
    }
    bool first = j < half;
    int fi = first ? j : j - half;
    // The angle in f32, as the rope op forms it (and HF), unless the data is f64.
    C angle = std::is_same_v<C, double> ? C(double(pos) * double(inv[fi])) : C(float(pos) * inv[fi]);
    C c = cos(angle), sn = sin(angle);
    C x1 = cuda::to_c(krow[fi * ks.dim]), x2 = cuda::to_c(krow[(fi + half) * ks.dim]);
    cache[kd] = cuda::from_c<D>(first ? x1 * c - x2 * sn : x2 * c + x1 * sn);
  }
}

struct AttnShape {
  int hq, hkv, group, dim;
  int splits, chunk;  // the context of a token is cut into `splits` pieces of `chunk` positions
  int max_context;
  float scale;
  int64_t q_stride;   // elements from one token's queries to the next ([Hq, D] contiguous within)
  const float* inv;   // rotate q (rotate-half RoPE) with these inverse frequencies, or nullptr
  bool vec_loads;     // the cache is 16-byte aligned: tiles load 16 bytes at a time
};

// Grid (splits, hkv, tokens). Shared memory: q [group][dim], k and v tiles [kTile][dim],
// scores [group][kTile], and per head the running max, sum and rescale factor.
template <typename D>
__global__ void __launch_bounds__(kAttnThreads) paged_attention_kernel(const D* __restrict__ q,
                                                                       const D* __restrict__ cache, D* __restrict__ out,
                                                                       float* __restrict__ part_acc, float* __restrict__ part_ml,
                                                                       DevPaging pg, AttnShape sh, cuda::DeviceError* err) {
  cuda::launch_dependents();  // a skinny product after this kernel may start loading its weights
  extern __shared__ float smem[];
  const int split = blockIdx.x, g = blockIdx.y;
  const int64_t t = blockIdx.z;
  const int dim = sh.dim, group = sh.group, tid = threadIdx.x;
  float* qs = smem;                         // [group][dim]
  float* ks = qs + group * dim;             // [kTile][dim + 1] (padded: lanes read 32 keys at once)
  float* vs = ks + kTile * (dim + 1);       // [kTile][dim]
  float* sc = vs + kTile * dim;             // [group][kTile]
  float* mrow = sc + group * kTile;         // [group]
  float* lrow = mrow + group;               // [group]
  float* corr = lrow + group;               // [group]
  __shared__ int64_t slots[kTile];

  const int row = pg.rows[t], pos = pg.positions[t];
  // A position past max_context is an error (reported at the next sync); the token attends to nothing.
  const bool bad = pos >= sh.max_context;
  if (bad && split == 0 && g == 0 && tid == 0) cuda::raise_error(err, cuda::kErrPagedIndex, pos, sh.max_context);
  const int len = bad ? 0 : pos + 1;
  const int begin = split * sh.chunk, end = min(len, begin + sh.chunk);
  if (sh.splits > 1 && begin >= end) {  // past the token's context: a split that weighs nothing
    if (tid < group) {
      const int64_t at = ((t * sh.hq + g * group + tid) * sh.splits + split) * 2;
      part_ml[at] = -INFINITY;
      part_ml[at + 1] = 0.f;
    }
    return;
  }

  for (int i = tid; i < group * dim; i += kAttnThreads) {
    const int h = g * group + i / dim, j = i % dim;
    const D* qh = q + t * sh.q_stride + int64_t(h) * dim;
    float qv;
    if (sh.inv) {
      // Rotated in the compute type and rounded to D, as the rope op leaves q (and the keys).
      using C = cuda::dcompute_t<D>;
      const int half = dim / 2, fi = j < half ? j : j - half;
      C angle = std::is_same_v<C, double> ? C(double(pos) * double(sh.inv[fi])) : C(float(pos) * sh.inv[fi]);
      C c = cos(angle), sn = sin(angle);
      C x1 = cuda::to_c(qh[fi]), x2 = cuda::to_c(qh[fi + half]);
      qv = float(cuda::to_c(cuda::from_c<D>(j < half ? x1 * c - x2 * sn : x2 * c + x1 * sn)));
    } else {
      qv = float(cuda::to_c(qh[j]));
    }
    qs[i] = qv * sh.scale;
  }
  if (tid < group) {
    mrow[tid] = -INFINITY;
    lrow[tid] = 0.f;
  }
  const int outs = group * dim;
  float acc[kMaxOutPerThread];
#pragma unroll
  for (int o = 0; o < kMaxOutPerThread; ++o) acc[o] = 0.f;
  __syncthreads();

  const int warp = tid / 32, lane = tid % 32;
  for (int base = begin; base < end; base += kTile) {
    const int count = min(kTile, end - base);
    if (tid < kTile) slots[tid] = tid < count ? slot_of(pg, row, base + tid, err) : -1;
    __syncthreads();
    // Keys and values of the tile: 16 bytes per load where the head dim allows (a decode step's
    // CTAs wait on these loads more than on anything else), else one element.
    constexpr int kVec = sizeof(D) <= 4 ? 16 / int(sizeof(D)) : 1;
    const int vecs = sh.vec_loads && dim % kVec == 0 ? dim / kVec : 0;
    if (kVec > 1 && vecs > 0) {
      for (int i = tid; i < kTile * vecs; i += kAttnThreads) {
        const int p = i / vecs, j = (i % vecs) * kVec;
        const int64_t s = slots[p];
        uint4 kraw = make_uint4(0, 0, 0, 0), vraw = make_uint4(0, 0, 0, 0);
        if (s >= 0) {
          const int64_t block = s / pg.block_size, offset = s % pg.block_size;
          const int64_t at = (((block * 2) * sh.hkv + g) * pg.block_size + offset) * dim + j;
          kraw = *reinterpret_cast<const uint4*>(cache + at);
          vraw = *reinterpret_cast<const uint4*>(cache + at + int64_t(sh.hkv) * pg.block_size * dim);
        }
        const D* ke = reinterpret_cast<const D*>(&kraw);
        const D* ve = reinterpret_cast<const D*>(&vraw);
#pragma unroll
        for (int e = 0; e < kVec; ++e) {
          ks[p * (dim + 1) + j + e] = float(cuda::to_c(ke[e]));
          vs[p * dim + j + e] = float(cuda::to_c(ve[e]));
        }
      }
    } else {
      for (int i = tid; i < kTile * dim; i += kAttnThreads) {
        const int p = i / dim, j = i % dim;
        const int64_t s = slots[p];
        float kv = 0.f, vv = 0.f;
        if (s >= 0) {
          const int64_t block = s / pg.block_size, offset = s % pg.block_size;
          const int64_t at = (((block * 2) * sh.hkv + g) * pg.block_size + offset) * dim + j;
          kv = cuda::to_c(cache[at]);
          vv = cuda::to_c(cache[at + int64_t(sh.hkv) * pg.block_size * dim]);
        }
        ks[p * (dim + 1) + j] = kv;
        vs[i] = vv;
      }
    }
    __syncthreads();
    for (int i = tid; i < group * kTile; i += kAttnThreads) {
      const int h = i / kTile, p = i % kTile;
      float dot = -INFINITY;
      if (slots[p] >= 0) {
        const float* qv = qs + h * dim;
        const float* kv = ks + p * (dim + 1);
        float d4[4] = {0.f, 0.f, 0.f, 0.f};
        int j = 0;
        for (; j + 4 <= dim; j += 4) {
#pragma unroll
          for (int e = 0; e < 4; ++e) d4[e] = fmaf(qv[j + e], kv[j + e], d4[e]);
        }
        for (; j < dim; ++j) d4[0] = fmaf(qv[j], kv[j], d4[0]);
        dot = (d4[0] + d4[1]) + (d4[2] + d4[3]);
      }
      sc[i] = dot;
    }
    __syncthreads();
    // Online softmax: warp w rescales heads w, w + 4, ...; lane p holds key p of the tile.
    for (int h = warp; h < group; h += kAttnThreads / 32) {
      float s = sc[h * kTile + lane];
      float tile_max = cuda::warp_max(s);
      float m_old = mrow[h], m_new = fmaxf(m_old, tile_max);
      float e = s == -INFINITY ? 0.f : __expf(s - m_new);
      sc[h * kTile + lane] = e;
      float tile_sum = cuda::warp_sum(e);
      if (lane == 0) {
        float c = m_old == -INFINITY ? 0.f : __expf(m_old - m_new);
        corr[h] = c;
        mrow[h] = m_new;
        lrow[h] = lrow[h] * c + tile_sum;
      }
    }
    __syncthreads();
#pragma unroll
    for (int o = 0; o < kMaxOutPerThread; ++o) {
      int i = tid + o * kAttnThreads;
      if (i >= outs) break;
      int h = i / dim, j = i % dim;
      float a = acc[o] * corr[h];
      const float* pr = sc + h * kTile;
      for (int p = 0; p < count; ++p) a = fmaf(pr[p], vs[p * dim + j], a);
      acc[o] = a;
    }
    __syncthreads();
  }

#pragma unroll
  for (int o = 0; o < kMaxOutPerThread; ++o) {
    int i = tid + o * kAttnThreads;
    if (i >= outs) break;
    int h = g * group + i / dim, j = i % dim;
    if (sh.splits == 1) {
      float l = lrow[i / dim];
      out[(t * sh.hq + h) * dim + j] = cuda::from_c<D>(l > 0.f ? acc[o] / l : 0.f);
    } else {
      part_acc[((t * sh.hq + h) * sh.splits + split) * dim + j] = acc[o];
    }
  }
  if (sh.splits > 1 && tid < group) {
    int64_t at = ((t * sh.hq + g * group + tid) * sh.splits + split) * 2;
    part_ml[at] = mrow[tid];
    part_ml[at + 1] = lrow[tid];
  }
}

struct MaxOf {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOf {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// One CTA per (token, head): out = sum_s e^(m_s - m) acc_s / sum_s e^(m_s - m) l_s. A split that saw
// none of the token's context has m_s = -inf and weighs nothing. The weights are formed by all
// threads at once (a decode step has up to max_context / 32 splits).
template <typename D>
__global__ void combine_splits_kernel(const float* __restrict__ part_acc, const float* __restrict__ part_ml,
                                      D* __restrict__ out, int splits, int dim) {
  cuda::launch_dependents();  // a skinny product after this kernel may start loading its weights
  const int64_t th = blockIdx.x;  // token * heads + head
  // One dynamic array only: [splits rounded up to 4] weights, then 32 floats of scratch for the
  // block reductions. (The loop over the weights below is read with vector loads; a static
  // __shared__ array beside a dynamic one of exactly `splits` floats left them past its end.)
  extern __shared__ float weights[];
  float* scratch = weights + ((splits + 3) & ~3);
  const float* ml = part_ml + th * splits * 2;
  float m = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) m = fmaxf(m, ml[2 * s]);
  m = cuda::block_combine(m, MaxOf{}, scratch);
  float l = 0.f;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    const float ms = ml[2 * s];
    const float w = ms == -INFINITY ? 0.f : __expf(ms - m);
    weights[s] = w;
    l += w * ml[2 * s + 1];
  }
  const float total = cuda::block_combine(l, SumOf{}, scratch);
  __syncthreads();  // every weight is in shared memory
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    float a = 0.f;
    for (int s = 0; s < splits; ++s)
      if (weights[s] != 0.f) a = fmaf(weights[s], part_acc[(th * splits + s) * dim + j], a);
    out[th * dim + j] = cuda::from_c<D>(total > 0.f ? a / total : 0.f);
  }
}

DevPaging dev_paging(const Tensor& cache, const Tensor& tables, const Tensor& rows, const Tensor& positions) {
  return DevPaging{static_cast<const int32_t*>(tables.data_ptr()), static_cast<const int32_t*>(rows.data_ptr()),
                   static_cast<const int32_t*>(positions.data_ptr()), int(tables.shape(0)), int(tables.shape(1)),
                   int(cache.shape(3)), int(cache.shape(0))};
}

}  // namespace

void PagedKVWrite::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& cache = in[0];
  if (!take_over_input(in, out)) AsType().eval_cuda({cache}, out);
  const Tensor &k = in[1], &v = in[2];
  Tensor tables = cuda::contiguous_on_device(in[3]), rows = cuda::contiguous_on_device(in[4]);
  Tensor positions = cuda::contiguous_on_device(in[5]);
  Tensor inv = rope_ ? cuda::contiguous_on_device(in[6]) : Tensor();
  int device = out.device().index;
  int64_t n = k.shape(0), heads = out.shape(2), dim = out.shape(4);
  if (n == 0) return;
  DevPaging pg = dev_paging(out, tables, rows, positions);
  Strides3 ks{k.strides()[0], k.strides()[1], k.strides()[2]}, vs{v.strides()[0], v.strides()[1], v.strides()[2]};
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    kv_write_kernel<D><<<cuda::grid_for(n * heads * dim, device), cuda::kThreads, 0, cuda::stream(device)>>>(
        static_cast<D*>(out.data_ptr()), static_cast<const D*>(k.data_ptr()), ks, static_cast<const D*>(v.data_ptr()),
        vs, rope_ ? static_cast<const float*>(inv.data_ptr()) : nullptr, pg, n, int(heads), int(dim),
        cuda::device_error(device));
    WICK_CUDA_LAUNCH_CHECK("paged_kv_write");
  });
}

void PagedAttention::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  // q may be a view whose tokens are strided (the q columns of a fused qkv product).
  const Tensor& q_in = in[0];
  const bool rows_ok = q_in.strides()[2] == 1 && (q_in.shape(1) == 1 || q_in.strides()[1] == q_in.shape(2)) &&
                       q_in.strides()[0] >= q_in.shape(1) * q_in.shape(2);
  Tensor q = rows_ok ? q_in : cuda::contiguous_on_device(q_in), cache = cuda::contiguous_on_device(in[1]);
  Tensor inv = rope_ ? cuda::contiguous_on_device(in[5]) : Tensor();
  Tensor tables = cuda::contiguous_on_device(in[2]), rows = cuda::contiguous_on_device(in[3]);
  Tensor positions = cuda::contiguous_on_device(in[4]);
  out.allocate();
  int device = out.device().index;
  int64_t n = q.shape(0);
  if (n == 0) return;
  AttnShape sh;
  sh.hq = int(q.shape(1));
  sh.hkv = int(cache.shape(2));
  sh.group = sh.hq / sh.hkv;
  sh.dim = int(q.shape(2));
  sh.max_context = int(max_context_);
  sh.scale = float(scale_);
  sh.q_stride = q.shape(0) > 1 ? q.strides()[0] : q.shape(1) * q.shape(2);
  sh.inv = rope_ ? static_cast<const float*>(inv.data_ptr()) : nullptr;
  sh.vec_loads = (reinterpret_cast<uintptr_t>(cache.data_ptr()) & 15) == 0;
  WICK_CHECK(int64_t(sh.group) * sh.dim <= int64_t(kMaxOutPerThread) * kAttnThreads, name(), ": ", sh.group,
             " query heads per kv head of dim ", sh.dim, " exceed the CUDA kernel's ", kMaxOutPerThread * kAttnThreads,
             " outputs per block");
  // Enough CTAs to fill the GPU twice over when few tokens attend, down to one tile per split (the
  // splits past a token's context return at once, and a decode step's tokens attend to few tiles
  // each, so a CTA's latency is the step's).
  int64_t ctas = n * sh.hkv, target = 2 * int64_t(cuda::sm_count(device));
  int64_t max_splits = std::max<int64_t>(1, (max_context_ + kTile - 1) / kTile);
  int64_t splits = std::clamp<int64_t>((target + ctas - 1) / ctas, 1, max_splits);
  int64_t chunk = (max_context_ + splits - 1) / splits;
  chunk = (chunk + kTile - 1) / kTile * kTile;
  splits = (max_context_ + chunk - 1) / chunk;
  sh.splits = int(splits);
  sh.chunk = int(chunk);
  WICK_CHECK(n <= 65535, name(), ": at most 65535 tokens per call on CUDA, got ", n);
  DevPaging pg = dev_paging(cache, tables, rows, positions);
  Tensor part_acc, part_ml;
  if (splits > 1) {
    part_acc = Tensor::empty({n, sh.hq, splits, sh.dim}, Dtype::F32, out.device());
    part_ml = Tensor::empty({n, sh.hq, splits, 2}, Dtype::F32, out.device());
  }
  size_t smem = sizeof(float) * (size_t(sh.group) * sh.dim + size_t(kTile) * (2 * sh.dim + 1) + size_t(sh.group) * kTile +
                                 3 * size_t(sh.group));
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using D = cuda::dev_t<T>;
    auto kernel = paged_attention_kernel<D>;
    if (smem > 48 * 1024)
      WICK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    dim3 grid(unsigned(splits), unsigned(sh.hkv), unsigned(n));
    kernel<<<grid, kAttnThreads, smem, cuda::stream(device)>>>(
        static_cast<const D*>(q.data_ptr()), static_cast<const D*>(cache.data_ptr()), static_cast<D*>(out.data_ptr()), splits > 1 ? static_cast<float*>(part_acc.data_ptr()) : nullptr,
        splits > 1 ? static_cast<float*>(part_ml.data_ptr()) : nullptr, pg, sh, cuda::device_error(device));
    WICK_CUDA_LAUNCH_CHECK("paged_attention");
    if (splits > 1) {
      combine_splits_kernel<D><<<unsigned(n * sh.hq), 64, sizeof(float) * (((splits + 3) & ~3) + 32),
                                 cuda::stream(device)>>>(
          static_cast<const float*>(part_acc.data_ptr()), static_cast<const float*>(part_ml.data_ptr()),
          static_cast<D*>(out.data_ptr()), sh.splits, sh.dim);
      WICK_CUDA_LAUNCH_CHECK("paged_attention (combine)");
    }
  });
}

}  // namespace wick
