// CPU dequantization of GGML blocks (through io's reference dequantizers) and products with a
// quantized matrix. A few rows of activations (decode) go through the row dot kernels of quant_dot.h,
// the weight's rows split across the thread pool: in f32 with the weights dequantized in registers,
// or, with int8_activations on, quantized to 8-bit blocks (of 256 for the K-quants, else of 32) and
// multiplied with integer dot products. Q4_K, Q5_K and Q6_K blocks that the loader reordered into
// lanes (QuantizedMatrix::lanes) take any number of rows, a prompt's too, through the lane kernels.
// Other products of more rows dequantize the matrix (rows in parallel; blocks in lanes put back in
// the file's layout first) into a scratch buffer of the compute dtype and multiply it with OpenBLAS
// (16-bit values widened to f32 around the GEMM, as in Matmul); f32 products with W^T (inference)
// do so a slice of rows at a time into a small scratch.
#include <algorithm>
#if defined(__AVX512F__)
// GCC 12 takes the undefined vectors inside its AVX-512 intrinsics for uninitialised variables.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif
#include <memory>
#include <vector>

#include "wick/backend/cpu/gemm.h"
#include "wick/backend/cpu/quant_dot.h"
#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

#if defined(__AVX512F__)
// Q4_0, Q4_1, Q8_0, Q4_K and Q6_K blocks to f32 16 values at a time, with the reference's products,
// sums and differences each rounded once (the *_round_ intrinsics are never contracted into FMAs):
// the bits of ggml::dequantize_to_f32. A prompt's products over K-quant weights spent a quarter of
// their time dequantizing with the scalar reference.
constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

void deq_q4_k_16(const uint8_t* b, float* y) {
  const float d = ggml::f16_at(b), dmin = ggml::f16_at(b + 2);
  uint8_t sc[8], mn[8];
  ggml::k_scale_min(b + 4, sc, mn);
  const uint8_t* qs = b + 16;
  for (int k = 0; k < 8; ++k) {
    const __m512 dk = _mm512_set1_ps(d * float(sc[k])), mk = _mm512_set1_ps(dmin * float(mn[k]));
    const int shift = 4 * (k % 2);
    for (int half = 0; half < 2; ++half) {
      __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * (k / 2) + 16 * half)));
      q = _mm512_and_si512(_mm512_srli_epi32(q, unsigned(shift)), _mm512_set1_epi32(0x0F));
      const __m512 v = _mm512_sub_round_ps(_mm512_mul_round_ps(dk, _mm512_cvtepi32_ps(q), kRound), mk, kRound);
      _mm512_storeu_ps(y + 32 * k + 16 * half, v);
    }
  }
}

void deq_q6_k_16(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = ggml::f16_at(b + 208);
  for (int u = 0; u < 16; ++u) {  // elements 16u .. 16u + 15 share scale u
    const int h = u / 8, r = (u % 8) * 16;
    __m512i low = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ql + 64 * h + r % 64)));
    __m512i high = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 32 * h + r % 32)));
    low = _mm512_and_si512(_mm512_srli_epi32(low, unsigned(4 * (r / 64))), _mm512_set1_epi32(0x0F));
    high = _mm512_and_si512(_mm512_srli_epi32(high, unsigned(2 * (r / 32))), _mm512_set1_epi32(0x03));
    const __m512i q = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), _mm512_set1_epi32(32));
    const __m512 dl = _mm512_set1_ps(d * float(scales[u]));
    _mm512_storeu_ps(y + 16 * u, _mm512_mul_round_ps(dl, _mm512_cvtepi32_ps(q), kRound));
  }
}

// Q4_0 (value d * (q - 8)) and Q4_1 (d * q + m): nibble j and j + 16 of the 16 bytes after the
// block's f16 fields.
template <bool kMin>
void deq_q4_32(const uint8_t* b, float* y) {
  const __m512 d = _mm512_set1_ps(ggml::f16_at(b));
  const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + (kMin ? 4 : 2))));
  const __m512i nib[2] = {_mm512_and_si512(q, _mm512_set1_epi32(0x0F)), _mm512_srli_epi32(q, 4)};
  for (int h = 0; h < 2; ++h) {
    __m512 v;
    if constexpr (kMin) {
      v = _mm512_add_round_ps(_mm512_mul_round_ps(d, _mm512_cvtepi32_ps(nib[h]), kRound), _mm512_set1_ps(ggml::f16_at(b + 2)),
                              kRound);
    } else {
      v = _mm512_mul_round_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(nib[h], _mm512_set1_epi32(8))), kRound);
    }
    _mm512_storeu_ps(y + 16 * h, v);
  }
}

// Q8_0: value q * d.
void deq_q8_0_32(const uint8_t* b, float* y) {
  const __m512 d = _mm512_set1_ps(ggml::f16_at(b));
  for (int h = 0; h < 2; ++h) {
    const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + 16 * h)));
    _mm512_storeu_ps(y + 16 * h, _mm512_mul_round_ps(_mm512_cvtepi32_ps(q), d, kRound));
  }
}

// True when `type` has a vector dequantizer here (and `n` values were written).
bool dequantize_vectorised(ggml::GgmlType type, const uint8_t* src, int64_t n, float* y) {
  void (*block)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case ggml::GgmlType::Q4_0: block = deq_q4_32<false>; break;
    case ggml::GgmlType::Q4_1: block = deq_q4_32<true>; break;
    case ggml::GgmlType::Q8_0: block = deq_q8_0_32; break;
    case ggml::GgmlType::Q4_K: block = deq_q4_k_16; break;
    case ggml::GgmlType::Q6_K: block = deq_q6_k_16; break;
    default: return false;
  }
  const int64_t size = ggml::ggml_type_info(type).block_size;
  if (n % size != 0) return false;
  const size_t bytes = ggml::ggml_type_info(type).type_size;
  for (int64_t i = 0; i < n / size; ++i) block(src + size_t(i) * bytes, y + size * i);
  return true;
}
#endif

// Dense [rows, cols] in `dtype` from contiguous blocks, on the calling thread.
void dequantize_rows(ggml::GgmlType type, const uint8_t* src, int64_t rows, int64_t cols, Dtype dtype, void* dst) {
  int64_t n = rows * cols;
  switch (dtype) {
    case Dtype::F32:
#if defined(__AVX512F__)
      if (dequantize_vectorised(type, src, n, static_cast<float*>(dst))) return;
#endif
      ggml::dequantize_to_f32(type, src, n, static_cast<float*>(dst));
      return;
    case Dtype::BF16: ggml::dequantize_to_bf16(type, src, n, static_cast<uint16_t*>(dst)); return;
    case Dtype::F16: {
      // Row by row through a float buffer: the f32 dequantizer's values, rounded once.
      size_t row_bytes = ggml::ggml_nbytes(type, cols);
      std::vector<float> row(static_cast<size_t>(cols));
      f16* out = static_cast<f16*>(dst);
      for (int64_t r = 0; r < rows; ++r) {
        ggml::dequantize_to_f32(type, src + size_t(r) * row_bytes, cols, row.data());
        for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = f16(row[size_t(c)]);
      }
      return;
    }
    default: fail("dequantize: the output must be f32, bf16 or f16, got ", dtype_name(dtype));
  }
}

// Dense [rows, cols] in `dtype` from contiguous blocks (in the lane layout when `lanes`: each
// range of rows put back into the file's first), rows split across the thread pool.
void dequantize_into(ggml::GgmlType type, const uint8_t* src, int64_t rows, int64_t cols, Dtype dtype, void* dst,
                     bool lanes = false) {
  size_t row_bytes = ggml::ggml_nbytes(type, cols), item = dtype_size(dtype);
  cpu::parallel_for(rows, std::max<int64_t>(1, 16384 / cols), [&](int64_t r0, int64_t r1) {
    const uint8_t* blocks = src + size_t(r0) * row_bytes;
    std::vector<uint8_t> file;
    if (lanes) {
      file.resize(size_t(r1 - r0) * row_bytes);
      cpu::k_lanes_unpack(type, blocks, (r1 - r0) * cols / cpu::kQ8KBlockSize, file.data());
      blocks = file.data();
    }
    dequantize_rows(type, blocks, r1 - r0, cols, dtype, static_cast<uint8_t*>(dst) + size_t(r0 * cols) * item);
  });
}

// The most activation rows multiplied by the row dot kernels (f32 or 8-bit activations); more (a
// prompt) go through the dequantized matrix and a GEMM, whose cost per row is lower once the
// dequantization of the whole matrix (an LM head's 28M values for SmolLM2) is shared by enough rows:
// at 17 rows the GEMM path decoded SmolLM2 at 125-135 tok/s against the row dots' ~300, at 48 and
// more it is ahead.
constexpr int64_t kRowDotMaxRows = 32;

template <typename T>
std::vector<float> widened(const T* p, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = float(p[i]);
  return out;
}

// out[i, r] = x[i, :] . W[r, :] for m rows of x in f32 (16-bit x widened), the weights dequantized
// in registers; up to kF32DotMaxRows rows of x share each decoded weight row.
template <typename T>
void f32_product(ggml::GgmlType type, const uint8_t* blocks, int64_t rows, int64_t cols, const T* x, int64_t m,
                 T* out) {
  std::vector<float> wide;
  const float* xf = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    xf = x;
  } else {
    wide = widened(x, m * cols);
    xf = wide.data();
  }
  cpu::RowDotF32Fn dot = cpu::row_dot_f32_kernel(type);
  size_t row_bytes = ggml::ggml_nbytes(type, cols);
  cpu::parallel_for(rows, std::max<int64_t>(1, 32768 / (cols * m)), [&](int64_t r0, int64_t r1) {
    float part[cpu::kF32DotMaxRows];
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i0 = 0; i0 < m; i0 += cpu::kF32DotMaxRows) {
        int tile = int(std::min<int64_t>(cpu::kF32DotMaxRows, m - i0));
        dot(blocks + size_t(r) * row_bytes, xf + i0 * cols, cols, tile, cols, part);
        for (int t = 0; t < tile; ++t) out[(i0 + t) * rows + r] = T(part[t]);
      }
  });
}

// out[i, r] = x[i, :] . W[r, :] for m rows of x through 8-bit activation blocks.
template <typename T>
void int8_product(ggml::GgmlType type, const uint8_t* blocks, int64_t rows, int64_t cols, const T* x, int64_t m,
                  T* out) {
  int64_t nb = cols / cpu::kQ8BlockSize;
  std::vector<cpu::Q8Block> xq(size_t(m * nb));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t i = 0; i < m; ++i) {
    const float* xr;
    if constexpr (std::is_same_v<T, float>) {
      xr = x + i * cols;
    } else {
      for (int64_t j = 0; j < cols; ++j) row[size_t(j)] = float(x[i * cols + j]);
      xr = row.data();
    }
    cpu::quantize_row_q8(xr, cols, xq.data() + i * nb);
  }
  cpu::RowDotFn dot = cpu::row_dot_kernel(type);
  size_t row_bytes = ggml::ggml_nbytes(type, cols);
  cpu::parallel_for(rows, std::max<int64_t>(1, 32768 / (cols * m)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < m; ++i)
        out[i * rows + r] = T(dot(blocks + size_t(r) * row_bytes, xq.data() + i * nb, cols));
  });
}

// Each of the m rows of x (f32, or 16-bit values widened) quantized by `quantize` into its cols / 256
// blocks at out + i * cols / 256.
template <typename T, typename Block>
void quantize_rows(const T* x, int64_t m, int64_t cols, void (*quantize)(const float*, int64_t, Block*), Block* out) {
  std::vector<float> row;
  for (int64_t i = 0; i < m; ++i) {
    const float* xr;
    if constexpr (std::is_same_v<T, float>) {
      xr = x + i * cols;
    } else {
      row.assign(x + i * cols, x + (i + 1) * cols);
      xr = row.data();
    }
    quantize(xr, cols, out + i * (cols / cpu::kQ8KBlockSize));
  }
}

// out[i, r] = x[i, :] . W[r, :] for m rows of x through 256-value activation blocks (the K-quants'
// kernels). One activation row (decode): each thread's range of weight rows in one call.
template <typename T>
void int8_k_product(ggml::GgmlType type, const uint8_t* blocks, int64_t rows, int64_t cols, const T* x, int64_t m,
                    T* out) {
  const int64_t nb = cols / cpu::kQ8KBlockSize;
  // Aligned to 64 bytes, so that each block's quants are (Q8KBlock).
  std::vector<cpu::Q8KBlock> storage(size_t(m * nb + 1));
  void* at = storage.data();
  size_t space = storage.size() * sizeof(cpu::Q8KBlock);
  auto* xq = static_cast<cpu::Q8KBlock*>(std::align(64, size_t(m * nb) * sizeof(cpu::Q8KBlock), at, space));
  quantize_rows(x, m, cols, cpu::quantize_row_q8k, xq);
  const cpu::RowsDotKFn dot = cpu::rows_dot_k_kernel(type);
  const size_t row_bytes = ggml::ggml_nbytes(type, cols);
  if (m == 1) {
    // Straight into out, whose row is the weight's rows.
    cpu::parallel_for(rows, std::max<int64_t>(1, 32768 / cols), [&](int64_t r0, int64_t r1) {
      if constexpr (std::is_same_v<T, float>) {
        dot(blocks + size_t(r0) * row_bytes, row_bytes, r1 - r0, xq, cols, out + r0);
      } else {
        std::vector<float> part(size_t(r1 - r0));
        dot(blocks + size_t(r0) * row_bytes, row_bytes, r1 - r0, xq, cols, part.data());
        for (int64_t r = r0; r < r1; ++r) out[r] = T(part[size_t(r - r0)]);
      }
    });
    return;
  }
  cpu::parallel_for(rows, std::max<int64_t>(1, 32768 / (cols * m)), [&](int64_t r0, int64_t r1) {
    float part;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < m; ++i) {
        dot(blocks + size_t(r) * row_bytes, row_bytes, 1, xq + i * nb, cols, &part);
        out[i * rows + r] = T(part);
      }
  });
}

// out[i, r] = x[i, :] . W[r, :] for m rows of x and W in the lane layout: the rows quantized to lane
// blocks, then each thread's range of weight rows against them, a prompt's rows in chunks of 64
// whose blocks stay in L2 while the weights stream past.
template <typename T>
void lanes_product(ggml::GgmlType type, const uint8_t* blocks, int64_t rows, int64_t cols, const T* x, int64_t m,
                   T* out) {
  const int64_t nb = cols / cpu::kQ8KBlockSize;
  auto xq = std::make_unique_for_overwrite<cpu::Q8KLanesBlock[]>(size_t(m * nb));
  quantize_rows(x, m, cols, cpu::quantize_row_q8k_lanes, xq.get());
  const cpu::RowsDotLanesFn dot = cpu::rows_dot_lanes_kernel(type);
  const size_t row_bytes = ggml::ggml_nbytes(type, cols);
  constexpr int64_t kChunk = 64;
  for (int64_t i0 = 0; i0 < m; i0 += kChunk) {
    const int64_t mc = std::min(kChunk, m - i0);
    cpu::parallel_for(rows, std::max<int64_t>(1, 32768 / (cols * mc)), [&](int64_t r0, int64_t r1) {
      if constexpr (std::is_same_v<T, float>) {
        dot(blocks + size_t(r0) * row_bytes, row_bytes, r1 - r0, xq.get() + i0 * nb, mc, cols, out + i0 * rows + r0,
            rows);
      } else {
        std::vector<float> part(size_t(mc * (r1 - r0)));
        dot(blocks + size_t(r0) * row_bytes, row_bytes, r1 - r0, xq.get() + i0 * nb, mc, cols, part.data(), r1 - r0);
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t r = r0; r < r1; ++r) out[(i0 + i) * rows + r] = T(part[size_t(i * (r1 - r0) + r - r0)]);
      }
    });
  }
}

}  // namespace

void Dequantize::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor blocks = cpu::contiguous_copy(in[0]);
  out.allocate();
  dequantize_into(type_, cpu::cdata<uint8_t>(blocks), out.shape(0), out.shape(1), out.dtype(), out.data_ptr(), lanes_);
}

void QuantizedMatmul::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  Tensor blocks = cpu::contiguous_copy(in[1]);
  out.allocate();
  int64_t k = x.shape(-1), n = out.shape(-1), m = x.numel() / k;
  // Blocks in lanes take their kernels for every product with 8-bit activations; the other products
  // read them through the dequantizer, which puts them back in the file's layout.
  if (lanes_ && transposed_ && int8_activations_ && x.dtype() != Dtype::F64) {
    dispatch_float(x.dtype(), name(), [&]<typename T>() {
      if constexpr (!std::is_same_v<T, double>)
        lanes_product(type_, cpu::cdata<uint8_t>(blocks), rows_, cols_, cpu::cdata<T>(x), m, cpu::mdata<T>(out));
    });
    return;
  }
  if (!lanes_ && transposed_ && m <= kRowDotMaxRows && cols_ % cpu::kQ8BlockSize == 0 &&
      x.dtype() != Dtype::F64) {
    bool int8 = int8_activations_ && cpu::int8_dot_supported(type_);
    if (int8 || cpu::f32_dot_supported(type_)) {
      dispatch_float(x.dtype(), name(), [&]<typename T>() {
        if constexpr (!std::is_same_v<T, double>) {
          const uint8_t* w = cpu::cdata<uint8_t>(blocks);
          if (int8 && cpu::k_dot_supported(type_))
            int8_k_product(type_, w, rows_, cols_, cpu::cdata<T>(x), m, cpu::mdata<T>(out));
          else if (int8)
            int8_product(type_, w, rows_, cols_, cpu::cdata<T>(x), m, cpu::mdata<T>(out));
          else
            f32_product(type_, w, rows_, cols_, cpu::cdata<T>(x), m, cpu::mdata<T>(out));
        }
      });
      return;
    }
  }
  if (transposed_ && x.dtype() == Dtype::F32) {
    // Slices of the weight's rows (about 4 MB of f32 each) dequantized in turn, each multiplied into
    // its columns of out: the scratch stays small however large the matrix (an LM head would need
    // hundreds of MB at once, which the heap keeps after a server's first long prompt).
    const int64_t slice = std::max<int64_t>(64, (int64_t(1) << 20) / cols_);
    // Not zeroed: every slice is written whole before the product reads it.
    auto w = std::make_unique_for_overwrite<float[]>(size_t(std::min(slice, rows_) * cols_));
    const size_t row_bytes = ggml::ggml_nbytes(type_, cols_);
    for (int64_t r0 = 0; r0 < rows_; r0 += slice) {
      const int64_t nr = std::min(slice, rows_ - r0);
      dequantize_into(type_, cpu::cdata<uint8_t>(blocks) + size_t(r0) * row_bytes, nr, cols_, Dtype::F32, w.get(),
                      lanes_);
      cpu::gemm(false, true, m, nr, k, cpu::cdata<float>(x), k, w.get(), cols_, cpu::mdata<float>(out) + r0, n);
    }
    return;
  }
  Tensor w = Tensor::empty({rows_, cols_}, x.dtype(), Device::cpu());
  dequantize_into(type_, cpu::cdata<uint8_t>(blocks), rows_, cols_, x.dtype(), w.data_ptr(), lanes_);
  // W is [rows, cols] row-major: the transposed product multiplies by W^T (ld cols), the other by W.
  auto gemm = [&](const float* a, const float* b, float* c) {
    cpu::gemm(false, transposed_, m, n, k, a, k, b, cols_, c, n);
  };
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      gemm(cpu::cdata<float>(x), cpu::cdata<float>(w), cpu::mdata<float>(out));
    } else if constexpr (std::is_same_v<T, double>) {
      fail("quantized_matmul: f64 inputs are not supported");
    } else {
      std::vector<float> fx = widened(cpu::cdata<T>(x), m * k), fw = widened(cpu::cdata<T>(w), rows_ * cols_);
      std::vector<float> fy(size_t(m * n));
      gemm(fx.data(), fw.data(), fy.data());
      T* po = cpu::mdata<T>(out);
      for (int64_t i = 0; i < m * n; ++i) po[i] = T(fy[size_t(i)]);
    }
  });
}

}  // namespace wick
