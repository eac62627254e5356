// Entry points of the skinny products (checks, the choice of split, the launch per format family)
// and the row gather of dense or block-quantized matrices.
#include "wick/backend/cuda/gemv.h"

#include <algorithm>

#include "wick/backend/cuda/gemv_launch.cuh"
#include "wick/backend/cuda/kernel_utils.cuh"

namespace wick::cuda {

namespace {

using gemv::with_format;

constexpr int kMaxSmemBytes = 48 * 1024;  // the default dynamic shared-memory limit of a block

struct FormatFacts {
  int unit_k;  // k per unit of the kernels: 32, or 256 for K-quants
  bool dense;
  int (*smem)(const SkinnyConfig&);  // shared memory per block
  int chunk8, chunk16;               // units a warp loads at once with tiles of 8 or 16 weight rows
};

FormatFacts facts_of(ggml::GgmlType type) {
  return with_format(type, [&]<class Dec, typename T>() {
    return FormatFacts{Dec::kUnitK, gemv::is_dense<Dec>(), &gemv::skinny_smem_bytes<Dec>, gemv::chunk_units<Dec>(8),
                       gemv::chunk_units<Dec>(16)};
  });
}

bool is_kernel_type(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

Dtype dense_dtype(ggml::GgmlType type) {
  return type == ggml::GgmlType::F32 ? Dtype::F32 : type == ggml::GgmlType::F16 ? Dtype::F16 : Dtype::BF16;
}

bool is_float_dtype(Dtype d) { return d == Dtype::F32 || d == Dtype::BF16 || d == Dtype::F16; }

int device_of(cudaStream_t stream) { return device_of_stream(stream); }

std::string weight_str(const SkinnyWeight& w) {
  return str_cat(ggml::ggml_type_name(w.type), " [", w.n, ", ", w.k, "]");
}

// The weight's own checks. The product reads k in units of 32 values (256 for K-quants); the
// gather of a dense matrix takes any k. Messages are built only for a problem (these run per launch).
std::string weight_problem(const SkinnyWeight& w, bool product) {
  if (ggml::find_ggml_type(uint32_t(w.type)) == nullptr) return str_cat("unknown GGML type id ", uint32_t(w.type));
  if (!is_kernel_type(w.type))
    return str_cat("no kernel reads ", ggml::ggml_type_name(w.type),
                   " weights (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
  if (w.n < 1 || w.k < 1 || w.n > INT32_MAX || w.k > INT32_MAX)
    return str_cat("weight ", weight_str(w), ": n and k must lie in 1..2^31-1");
  const FormatFacts facts = facts_of(w.type);
  const int64_t unit = product || !facts.dense ? facts.unit_k : 1;
  if (w.k % unit != 0) return str_cat("weight ", weight_str(w), ": k must be a multiple of ", unit);
  if (w.data == nullptr || !aligned16(w.data))
    return str_cat("weight ", weight_str(w), ": the data must be a 16-byte aligned device pointer");
  return {};
}

std::string config_problem(const SkinnyConfig& c, const SkinnyWeight& w, int64_t m, Dtype x_dtype) {
  const bool tiles_ok =
      x_dtype == Dtype::F32
          ? c.x_tiles == 1
          : (c.x_tiles == 1 || c.x_tiles == 2 || c.x_tiles == 4 || c.x_tiles == 8) && 8 * int64_t(c.x_tiles) >= m;
  if (!tiles_ok)
    return str_cat("x_tiles ", c.x_tiles, " does not cover ", m, " ", dtype_name(x_dtype),
                   " rows (1, 2, 4 or 8 tiles of 8 rows; 1 with f32, taken 8 rows a launch)");
  const int max_threads = gemv::max_threads(x_dtype == Dtype::F32, c.x_tiles);
  if (c.k_warps < 1 || c.tiles_per_block < 1 || 32 * c.k_warps * c.tiles_per_block > max_threads)
    return str_cat("k_warps ", c.k_warps, " x tiles_per_block ", c.tiles_per_block,
                   " must be positive and give at most ", max_threads / 32,
                   " warps (16, or 8 with f32 activations or 4 and more x_tiles)");
  if (const int smem = facts_of(w.type).smem(c); smem > kMaxSmemBytes)
    return str_cat("the split needs ", smem, " bytes of shared memory per block, more than ", kMaxSmemBytes);
  return {};
}

}  // namespace

std::string skinny_matmul_problem(const SkinnyWeight& w, const void* x, Dtype x_dtype, int64_t m, Dtype y_dtype) {
  std::string problem = weight_problem(w, true);
  if (!problem.empty()) return problem;
  const bool dense = facts_of(w.type).dense;
  if (m < 1 || m > kSkinnyMaxRows) return str_cat(m, " activation rows: the skinny product takes 1..", kSkinnyMaxRows);
  if (!is_float_dtype(x_dtype) || (dense && x_dtype != dense_dtype(w.type)))
    return str_cat(dtype_name(x_dtype), " activations do not pair with weight ", weight_str(w), " (expected ",
                   dense ? dtype_name(dense_dtype(w.type)) : "bf16, f16 or f32", ")");
  if (y_dtype != x_dtype && y_dtype != Dtype::F32)
    return str_cat("output dtype ", dtype_name(y_dtype), ": expected ", dtype_name(x_dtype),
                   " (the activations') or f32");
  if (x == nullptr || !aligned16(x))
    return str_cat("activations [", m, ", ", w.k, "]: the data must be a 16-byte aligned device pointer");
  return {};
}

SkinnyConfig skinny_config(const SkinnyWeight& w, int64_t m, Dtype x_dtype, int sm_count) {
  const FormatFacts facts = facts_of(w.type);
  SkinnyConfig c;
  c.x_tiles = x_dtype == Dtype::F32 || m <= 8 ? 1 : m <= 16 ? 2 : m <= 32 ? 4 : 8;
  const int64_t tiles = (w.n + skinny_warp_rows(c) - 1) / skinny_warp_rows(c);
  const int64_t units = w.k / facts.unit_k;
  // Enough warps for about 24 per multiprocessor (each keeps a chunk of loads in flight), but no
  // split of k finer than 4 units of 32 or one super-block per warp: below that the extra partial
  // sums cost more than the parallelism brings.
  const int64_t want = int64_t(std::max(sm_count, 1)) * 24;
  const int64_t min_units = facts.unit_k == 32 ? 4 : 1;
  int64_t k_warps = (want + tiles - 1) / tiles;
  const int max_warps = gemv::max_threads(x_dtype == Dtype::F32, c.x_tiles) / 32;
  k_warps = std::min({k_warps, std::max<int64_t>(1, units / min_units), int64_t(max_warps)});
  // Measured on an H200 (bench/gemv_bench.cu's sweep): when the tiles alone fill the GPU several
  // times over, each warp's range of k is best loaded in few rounds of `chunk` units. With more
  // than ~16 tiles per multiprocessor and long rows, 4 warps per tile beat 1 (32768 x 4096: 79
  // against 92 us in Q8_0, 67 against 96 us in Q4_K), though not for rows of 896 (151936 x 896 in
  // Q8_0: 79 us with 1 warp x 4 tiles, 96 us with 4 warps); with 4-16 tiles per multiprocessor, the
  // fewest warps that keep the same number of rounds (2 instead of 3 warps for 9728 x 896 bf16:
  // 9.9 against 11.7 us).
  const int64_t chunk = c.x_tiles == 1 ? facts.chunk8 : facts.chunk16;
  const int64_t sms = std::max(sm_count, 1);
  if (tiles >= 16 * sms && w.k >= 2048) {
    k_warps = std::min<int64_t>({4, std::max<int64_t>(1, units / min_units), int64_t(max_warps)});
  } else if (tiles >= 4 * sms && k_warps > 1) {
    const int64_t rounds = (units + k_warps * chunk - 1) / (k_warps * chunk);
    while (k_warps > 1 && (units + (k_warps - 1) * chunk - 1) / ((k_warps - 1) * chunk) == rounds) --k_warps;
  }
  c.k_warps = int(std::max<int64_t>(k_warps, 1));
  // At least 4 warps a block, from several tiles when k is split little.
  c.tiles_per_block = int(std::clamp<int64_t>(4 / c.k_warps, 1, tiles));
  while (facts.smem(c) > kMaxSmemBytes) {
    if (c.tiles_per_block > 1)
      --c.tiles_per_block;
    else
      --c.k_warps;
  }
  return c;
}

void skinny_matmul(const SkinnyWeight& w, const void* x, Dtype x_dtype, int64_t m, void* y, Dtype y_dtype,
                   const void* bias, Dtype bias_dtype, cudaStream_t stream, const SkinnyConfig& config,
                   const void* residual) {
  std::string problem = skinny_matmul_problem(w, x, x_dtype, m, y_dtype);
  WICK_CHECK(problem.empty(), "skinny_matmul: ", problem);
  WICK_CHECK(y != nullptr && reinterpret_cast<uintptr_t>(y) % dtype_size(y_dtype) == 0,
             "skinny_matmul: the output must be a device pointer aligned to its ", dtype_name(y_dtype), " elements");
  WICK_CHECK(bias == nullptr ||
                 (is_float_dtype(bias_dtype) && reinterpret_cast<uintptr_t>(bias) % dtype_size(bias_dtype) == 0),
             "skinny_matmul: the bias must be bf16, f16 or f32 and aligned to its elements, got ",
             dtype_name(bias_dtype));
  WICK_CHECK(residual == nullptr || reinterpret_cast<uintptr_t>(residual) % dtype_size(y_dtype) == 0,
             "skinny_matmul: the residual must be a device pointer aligned to its ", dtype_name(y_dtype), " elements");
  problem = config_problem(config, w, m, x_dtype);
  WICK_CHECK(problem.empty(), "skinny_matmul: ", problem);

  gemv::SkinnyParams p{};
  p.w = w.data;
  p.row_bytes = int64_t(ggml::ggml_nbytes(w.type, w.k));
  p.n = int(w.n);
  p.k = int(w.k);
  p.units = int(w.k / facts_of(w.type).unit_k);
  p.y_dtype = y_dtype;
  p.bias = bias;
  p.bias_dtype = bias_dtype;
  p.k_warps = config.k_warps;
  p.tiles_per_block = config.tiles_per_block;
  // f32 activations go through the CUDA-core path 8 rows a launch (each launch reads W again).
  const int64_t rows_per_launch = x_dtype == Dtype::F32 ? 8 : m;
  const size_t x_item = dtype_size(x_dtype), y_item = dtype_size(y_dtype);
  for (int64_t r0 = 0; r0 < m; r0 += rows_per_launch) {
    p.x = static_cast<const char*>(x) + r0 * w.k * int64_t(x_item);
    p.y = static_cast<char*>(y) + r0 * w.n * int64_t(y_item);
    p.residual = residual ? static_cast<const char*>(residual) + r0 * w.n * int64_t(y_item) : nullptr;
    p.m = int(std::min(rows_per_launch, m - r0));
    with_format(w.type, [&]<class Dec, typename T>() { gemv::launch_format<Dec, T>(x_dtype, p, config, stream); });
  }
}

void skinny_matmul(const SkinnyWeight& w, const void* x, Dtype x_dtype, int64_t m, void* y, Dtype y_dtype,
                   const void* bias, Dtype bias_dtype, cudaStream_t stream, const void* residual) {
  std::string problem = skinny_matmul_problem(w, x, x_dtype, m, y_dtype);
  WICK_CHECK(problem.empty(), "skinny_matmul: ", problem);
  SkinnyConfig config = skinny_config(w, m, x_dtype, sm_count(device_of(stream)));
  skinny_matmul(w, x, x_dtype, m, y, y_dtype, bias, bias_dtype, stream, config, residual);
}

// ---- the row gather

namespace {

template <typename O>
__device__ __forceinline__ void store_out(O* out, int64_t i, float v) {
  out[i] = from_c<O>(v);
}

template <typename I>
__device__ __forceinline__ int64_t checked_id(const I* ids, int64_t i, int64_t n, DeviceError* err) {
  int64_t id = int64_t(ids[i]);
  if (id < 0 || id >= n) {
    raise_error(err, kErrGatherIndex, id, n);
    return -1;
  }
  return id;
}

// Blocks: one thread per (row of out, step of 32 values, quad lane t), writing the 8 values the
// lane owns in that step, each w = scale * (q - zero point) - min rounded as the CPU dequantizer
// rounds it (one product, one difference, no FMA).
template <class Dec, typename O, typename I>
__global__ void gather_blocks_kernel(const uint8_t* w, int64_t row_bytes, int64_t n, int64_t k, const I* ids,
                                     int64_t count, O* out, DeviceError* err) {
  const int64_t steps = k / 32, total = count * steps * 4;
  for (int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; item < total;
       item += int64_t(gridDim.x) * blockDim.x) {
    const int t = int(item & 3);
    const int64_t step = (item >> 2) % steps, row = (item >> 2) / steps;
    const int64_t id = checked_id(ids, row, n, err);
    O* dst = out + row * k + step * 32;
    const int s = int(step % (Dec::kUnitK / 32));
    gemv::QuantStep st{};
    if (id >= 0) st = Dec::step(w + id * row_bytes + (step * 32 / Dec::kUnitK) * Dec::kUnitBytes, s, t);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = 0.0f;
        if (id >= 0) v = __fsub_rn(__fmul_rn(st.scale[h], gemv::quant_value<Dec>(st.q[h], e)), st.min[h]);
        store_out(dst, gemv::slot_start<Dec::kLayout>(t, h) + e, v);
      }
    }
  }
}

// Dense rows: one thread per value.
template <typename T, typename O, typename I>
__global__ void gather_dense_kernel(const T* w, int64_t n, int64_t k, const I* ids, int64_t count, O* out,
                                    DeviceError* err) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < count * k;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = e / k;
    const int64_t id = checked_id(ids, row, n, err);
    store_out(out, e, id < 0 ? 0.0f : float(to_c(w[id * k + e % k])));
  }
}

}  // namespace

void embedding_gather(const SkinnyWeight& w, const void* ids, Dtype ids_dtype, int64_t count, void* out,
                      Dtype out_dtype, cudaStream_t stream) {
  std::string problem = weight_problem(w, false);
  WICK_CHECK(problem.empty(), "embedding_gather: ", problem);
  WICK_CHECK(ids_dtype == Dtype::I32 || ids_dtype == Dtype::I64, "embedding_gather: ids must be i32 or i64, got ",
             dtype_name(ids_dtype));
  WICK_CHECK(is_float_dtype(out_dtype), "embedding_gather: the output must be bf16, f16 or f32, got ",
             dtype_name(out_dtype));
  WICK_CHECK(count >= 0, "embedding_gather: negative row count ", count);
  if (count == 0) return;
  WICK_CHECK(ids != nullptr && reinterpret_cast<uintptr_t>(ids) % dtype_size(ids_dtype) == 0 && out != nullptr &&
                 reinterpret_cast<uintptr_t>(out) % dtype_size(out_dtype) == 0,
             "embedding_gather: ids and output must be device pointers aligned to their elements");
  DeviceError* err = device_error(device_of(stream));
  const int threads = 256;
  const int64_t work = facts_of(w.type).dense ? count * w.k : count * (w.k / 32) * 4;
  const unsigned blocks = unsigned(std::clamp<int64_t>((work + threads - 1) / threads, 1, int64_t(1) << 20));
  const int64_t row_bytes = int64_t(ggml::ggml_nbytes(w.type, w.k));
  auto launch = [&]<typename O, typename I>() {
    with_format(w.type, [&]<class Dec, typename T>() {
      if constexpr (gemv::is_dense<Dec>()) {
        gather_dense_kernel<T, O, I><<<blocks, threads, 0, stream>>>(
            reinterpret_cast<const T*>(w.data), w.n, w.k, static_cast<const I*>(ids), count, static_cast<O*>(out), err);
      } else {
        gather_blocks_kernel<Dec, O, I><<<blocks, threads, 0, stream>>>(
            w.data, row_bytes, w.n, w.k, static_cast<const I*>(ids), count, static_cast<O*>(out), err);
      }
      WICK_CUDA_LAUNCH_CHECK("embedding_gather");
    });
  };
  auto with_ids = [&]<typename O>() {
    if (ids_dtype == Dtype::I32)
      launch.template operator()<O, int32_t>();
    else
      launch.template operator()<O, int64_t>();
  };
  if (out_dtype == Dtype::BF16)
    with_ids.template operator()<__nv_bfloat16>();
  else if (out_dtype == Dtype::F16)
    with_ids.template operator()<__half>();
  else
    with_ids.template operator()<float>();
}

}  // namespace wick::cuda
