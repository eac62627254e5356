// GPU dequantization of GGML blocks and products with a quantized matrix: a few rows of a linear
// layer (up to cuda::kSkinnyMaxRows, a decode step) through the skinny kernel, which dequantizes in
// registers (gemv.h); otherwise the blocks are dequantized into a scratch matrix from the caching
// allocator, then one cuBLASLt GEMM (cuda::gemm_nt or gemm_nn).
//
// Each element is computed on its own, with the operations of io's CPU dequantizers in the same
// order and explicitly rounded intrinsics (__fmul_rn, __fadd_rn, __fsub_rn) so that nvcc does not
// contract them into FMAs: the GPU gives the CPU's values bit for bit.
#include "wick/backend/cuda/gemv.h"
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

using ggml::GgmlType;

__device__ __forceinline__ float f16_at(const uint8_t* p) {
  return __half2float(__ushort_as_half(uint16_t(p[0] | (p[1] << 8))));
}
__device__ __forceinline__ uint32_t u32_at(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
// Nibble of element j of a 32-element block: low nibbles hold elements 0-15, high ones 16-31.
__device__ __forceinline__ int nibble32(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4; }

// Scale and min k (0-7) of the 12-byte packing shared by Q4_K and Q5_K.
__device__ __forceinline__ void k_scale_min(const uint8_t* p, int k, int& sc, int& mn) {
  if (k < 4) {
    sc = p[k] & 0x3F;
    mn = p[4 + k] & 0x3F;
  } else {
    int i = k - 4;
    sc = (p[8 + i] & 0x0F) | ((p[i] >> 2) & 0x30);
    mn = (p[8 + i] >> 4) | ((p[4 + i] >> 2) & 0x30);
  }
}

// Element j of block b.
template <GgmlType Q>
__device__ __forceinline__ float dequant_element(const uint8_t* b, int j) {
  if constexpr (Q == GgmlType::Q4_0) {
    return __fmul_rn(f16_at(b), float(nibble32(b + 2, j) - 8));
  } else if constexpr (Q == GgmlType::Q4_1) {
    return __fadd_rn(__fmul_rn(f16_at(b), float(nibble32(b + 4, j))), f16_at(b + 2));
  } else if constexpr (Q == GgmlType::Q5_0) {
    int q = nibble32(b + 6, j) | int((u32_at(b + 2) >> j) & 1) << 4;
    return __fmul_rn(f16_at(b), float(q - 16));
  } else if constexpr (Q == GgmlType::Q5_1) {
    int q = nibble32(b + 8, j) | int((u32_at(b + 4) >> j) & 1) << 4;
    return __fadd_rn(__fmul_rn(f16_at(b), float(q)), f16_at(b + 2));
  } else if constexpr (Q == GgmlType::Q8_0) {
    return __fmul_rn(float(int8_t(b[2 + j])), f16_at(b));
  } else if constexpr (Q == GgmlType::Q2_K) {
    int sub = j / 16;
    float dl = __fmul_rn(f16_at(b + 80), float(b[sub] & 0x0F));
    float ml = __fmul_rn(f16_at(b + 82), float(b[sub] >> 4));
    int h = j / 128, s = (j % 128) / 32, l = j % 32;
    int q = (b[16 + 32 * h + l] >> (2 * s)) & 3;
    return __fsub_rn(__fmul_rn(dl, float(q)), ml);
  } else if constexpr (Q == GgmlType::Q3_K) {
    const uint8_t* sc = b + 96;
    int i = j / 16;
    int low_sc = (sc[i % 8] >> (4 * (i / 8))) & 0x0F;
    int high_sc = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    float dl = __fmul_rn(f16_at(b + 108), float((low_sc | high_sc << 4) - 32));
    int h = j / 128, s = (j % 128) / 32, l = j % 32;
    int low = (b[32 + 32 * h + l] >> (2 * s)) & 3;
    int hbit = (b[l] >> (j / 32)) & 1;
    return __fmul_rn(dl, float(low - ((hbit ^ 1) << 2)));
  } else if constexpr (Q == GgmlType::Q4_K || Q == GgmlType::Q5_K) {
    int k = j / 32, l = j % 32, sc, mn;
    k_scale_min(b + 4, k, sc, mn);
    float dk = __fmul_rn(f16_at(b), float(sc));
    float mk = __fmul_rn(f16_at(b + 2), float(mn));
    const uint8_t* qs = b + (Q == GgmlType::Q4_K ? 16 : 48);
    int q = (qs[32 * (k / 2) + l] >> (4 * (k % 2))) & 0x0F;
    if constexpr (Q == GgmlType::Q5_K) q |= ((b[16 + l] >> k) & 1) << 4;
    return __fsub_rn(__fmul_rn(dk, float(q)), mk);
  } else {
    static_assert(Q == GgmlType::Q6_K);
    int h = j / 128, r = j % 128;
    int low = (b[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    int high = (b[128 + 32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
    float dl = __fmul_rn(f16_at(b + 208), float(int8_t(b[192 + j / 16])));
    return __fmul_rn(dl, float((low | high << 4) - 32));
  }
}

// One thread per element of out [rows, cols] (row-major); blocks of `type_size` bytes hold
// `block` elements each.
template <GgmlType Q, typename D>
__global__ void dequantize_kernel(const uint8_t* __restrict__ blocks, D* __restrict__ out, int64_t total,
                                  int64_t cols, int64_t row_bytes, int block, int type_size) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t row = e / cols, col = e % cols;
    const uint8_t* b = blocks + row * row_bytes + (col / block) * type_size;
    out[e] = cuda::from_c<D>(dequant_element<Q>(b, int(col % block)));
  }
}

template <typename D>
void launch_dequantize(GgmlType type, const uint8_t* blocks, D* out, int64_t rows, int64_t cols, cudaStream_t s) {
  const ggml::GgmlTypeInfo& info = ggml::ggml_type_info(type);
  int64_t total = rows * cols, row_bytes = cols / info.block_size * int64_t(info.type_size);
  int threads = 256;
  int64_t grid = std::min<int64_t>((total + threads - 1) / threads, int64_t(1) << 20);
  auto go = [&]<GgmlType Q>() {
    dequantize_kernel<Q, D><<<unsigned(grid), threads, 0, s>>>(blocks, out, total, cols, row_bytes,
                                                                  int(info.block_size), int(info.type_size));
    WICK_CUDA_LAUNCH_CHECK("dequantize_kernel");
  };
  switch (type) {
    case GgmlType::Q4_0: return go.template operator()<GgmlType::Q4_0>();
    case GgmlType::Q4_1: return go.template operator()<GgmlType::Q4_1>();
    case GgmlType::Q5_0: return go.template operator()<GgmlType::Q5_0>();
    case GgmlType::Q5_1: return go.template operator()<GgmlType::Q5_1>();
    case GgmlType::Q8_0: return go.template operator()<GgmlType::Q8_0>();
    case GgmlType::Q2_K: return go.template operator()<GgmlType::Q2_K>();
    case GgmlType::Q3_K: return go.template operator()<GgmlType::Q3_K>();
    case GgmlType::Q4_K: return go.template operator()<GgmlType::Q4_K>();
    case GgmlType::Q5_K: return go.template operator()<GgmlType::Q5_K>();
    case GgmlType::Q6_K: return go.template operator()<GgmlType::Q6_K>();
    default: fail("dequantize: GGML type ", info.name, " has no CUDA dequantizer");
  }
}

}  // namespace

namespace {

// Dense [rows, cols] in `dtype` from contiguous blocks, queued on stream s.
void dequantize_into(GgmlType type, const uint8_t* src, int64_t rows, int64_t cols, Dtype dtype, void* dst,
                     cudaStream_t s) {
  if (rows * cols == 0) return;
  switch (dtype) {
    case Dtype::F32: return launch_dequantize(type, src, static_cast<float*>(dst), rows, cols, s);
    case Dtype::BF16: return launch_dequantize(type, src, static_cast<__nv_bfloat16*>(dst), rows, cols, s);
    case Dtype::F16: return launch_dequantize(type, src, static_cast<__half*>(dst), rows, cols, s);
    default: fail("dequantize: the output must be f32, bf16 or f16, got ", dtype_name(dtype));
  }
}

}  // namespace

void Dequantize::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  WICK_CHECK(!lanes_, "dequantize: blocks in the CPU's lane layout cannot be read on CUDA");
  Tensor blocks = cuda::contiguous_on_device(in[0]);
  out.allocate();
  dequantize_into(type_, static_cast<const uint8_t*>(blocks.data_ptr()), out.shape(0), out.shape(1), out.dtype(),
                  out.data_ptr(), cuda::stream_of(out));
}

void QuantizedMatmul::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  WICK_CHECK(!lanes_, "quantized_matmul: blocks in the CPU's lane layout cannot be read on CUDA");
  Tensor x = cuda::contiguous_on_device(in[0]);
  Tensor blocks = cuda::contiguous_on_device(in[1]);
  out.allocate();
  int64_t k = x.shape(-1), n = out.shape(-1), m = x.numel() / k;
  if (m == 0) return;
  if (transposed_) {
    const cuda::SkinnyWeight w{static_cast<const uint8_t*>(blocks.data_ptr()), type_, rows_, cols_};
    if (cuda::skinny_matmul_problem(w, x.data_ptr(), x.dtype(), m, out.dtype()).empty()) {
      cuda::skinny_matmul(w, x.data_ptr(), x.dtype(), m, out.data_ptr(), out.dtype(), nullptr, Dtype::F32,
                          cuda::stream_of(out));
      return;
    }
  }
  // The scratch matrix goes back to the caching allocator when this returns; the stream orders its
  // reuse after the GEMM.
  Tensor w = Tensor::empty({rows_, cols_}, x.dtype(), x.device());
  dequantize_into(type_, static_cast<const uint8_t*>(blocks.data_ptr()), rows_, cols_, x.dtype(), w.data_ptr(),
                  cuda::stream_of(out));
  int device = out.device().index;
  if (transposed_)
    cuda::gemm_nt(x.dtype(), m, n, k, x.data_ptr(), w.data_ptr(), out.data_ptr(), 1.0f, 0.0f, device);
  else
    cuda::gemm_nn(x.dtype(), m, n, k, x.data_ptr(), w.data_ptr(), out.data_ptr(), 1.0f, 0.0f, device);
}

}  // namespace wick
