// 8-bit activation blocks, and the portable (scalar) dot products of GGML weight rows with them and
// with f32 activations; the AVX2 kernels are in quant_dot_avx2.cpp. Each weight type is decoded 32 values at a time into
// unsigned quants u and the (a, b) of each half: value = a * u + b (see quant_dot.h).
#include "wick/backend/cpu/quant_dot.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "wick/base/error.h"
#include "wick/base/half.h"

namespace wick::cpu {

void quantize_row_q8(const float* x, int64_t n, Q8Block* out) {
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b, x += kQ8BlockSize) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
    Q8Block& o = out[b];
    o.d = d;
    for (int h = 0; h < 2; ++h) {
      int sum = 0;
      for (int j = 16 * h; j < 16 * h + 16; ++j) {
        int q = int(std::nearbyint(x[j] * id));
        q = std::min(127, std::max(-127, q));
        o.q[j] = int8_t(q);
        sum += q;
      }
      o.sum[h] = int16_t(sum);
    }
    o.ds = d * float(int(o.sum[0]) + int(o.sum[1]));
  }
}

void quantize_row_q8k(const float* x, int64_t n, Q8KBlock* out) {
  if (k_dot_best_isa() >= KDotIsa::kAvx2)
    detail::quantize_row_q8k_avx2(x, n, out);
  else
    detail::quantize_row_q8k_scalar(x, n, out);
}

void detail::quantize_row_q8k_scalar(const float* x, int64_t n, Q8KBlock* out) {
  for (int64_t b = 0; b < n / kQ8KBlockSize; ++b, x += kQ8KBlockSize) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
    float id = amax > 0 ? 127.0f / amax : 0.0f;
    Q8KBlock& o = out[b];
    o.d = amax / 127.0f;
    for (int k = 0; k < 16; ++k) {
      int sum = 0;
      for (int j = 16 * k; j < 16 * k + 16; ++j) {
        int q = std::min(127, std::max(-127, int(std::nearbyint(x[j] * id))));
        o.q[j] = int8_t(q);
        sum += q;
      }
      o.sum[k] = int16_t(sum);
    }
    std::memset(o.padding, 0, sizeof(o.padding));
  }
}

namespace {

constexpr int64_t QK_K = 256;

using ggml::f16_at;
uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

using detail::Sub;
using detail::SubDecodeFn;

void sub_q4_0(const uint8_t* blk, int, Sub& s) {
  float d = f16_at(blk);
  for (int j = 0; j < 16; ++j) {
    s.u[j] = blk[2 + j] & 0x0F;
    s.u[j + 16] = blk[2 + j] >> 4;
  }
  s.affine(d, -8.0f * d);
}

void sub_q4_1(const uint8_t* blk, int, Sub& s) {
  for (int j = 0; j < 16; ++j) {
    s.u[j] = blk[4 + j] & 0x0F;
    s.u[j + 16] = blk[4 + j] >> 4;
  }
  s.affine(f16_at(blk), f16_at(blk + 2));
}

void fifth_bits(const uint8_t* qs, uint32_t qh, Sub& s) {
  for (int j = 0; j < 16; ++j) {
    s.u[j] = uint8_t((qs[j] & 0x0F) | ((qh >> j) & 1) << 4);
    s.u[j + 16] = uint8_t((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
  }
}

void sub_q5_0(const uint8_t* blk, int, Sub& s) {
  fifth_bits(blk + 6, u32_at(blk + 2), s);
  float d = f16_at(blk);
  s.affine(d, -16.0f * d);
}

void sub_q5_1(const uint8_t* blk, int, Sub& s) {
  fifth_bits(blk + 8, u32_at(blk + 4), s);
  s.affine(f16_at(blk), f16_at(blk + 2));
}

void sub_q8_0(const uint8_t* blk, int, Sub& s) {
  for (int j = 0; j < 32; ++j) s.u[j] = uint8_t(int(int8_t(blk[2 + j])) + 128);
  float d = f16_at(blk);
  s.affine(d, -128.0f * d);
}

// Sub-block s of a Q2_K super-block: 2-bit quants, a 4-bit scale and min per 16 values.
void sub_q2_k(const uint8_t* blk, int s, Sub& out) {
  const uint8_t* qs = blk + 16 + 32 * (s / 4);
  int shift = 2 * (s % 4);
  for (int l = 0; l < 32; ++l) out.u[l] = (qs[l] >> shift) & 3;
  float d = f16_at(blk + 80), dmin = f16_at(blk + 82);
  for (int h = 0; h < 2; ++h) {
    uint8_t sc = blk[2 * s + h];
    out.a[h] = d * float(sc & 0x0F);
    out.b[h] = -dmin * float(sc >> 4);
  }
}

// Q3_K: u = low 2 bits + 4 * high bit, value = scale * (u - 4); 6-bit signed scales per 16.
void sub_q3_k(const uint8_t* blk, int s, Sub& out) {
  const uint8_t* hmask = blk;
  const uint8_t* qs = blk + 32 + 32 * (s / 4);
  const uint8_t* sc = blk + 96;
  int shift = 2 * (s % 4);
  for (int l = 0; l < 32; ++l) out.u[l] = uint8_t(((qs[l] >> shift) & 3) | ((hmask[l] >> s) & 1) << 2);
  float d = f16_at(blk + 108);
  for (int h = 0; h < 2; ++h) {
    int i = 2 * s + h;
    int low = (sc[i % 8] >> (4 * (i / 8))) & 0x0F, high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    out.a[h] = d * float((low | high << 4) - 32);
    out.b[h] = -4.0f * out.a[h];
  }
}

void sub_q4_k(const uint8_t* blk, int s, Sub& out) {
  uint8_t sc[8], mn[8];
  ggml::k_scale_min(blk + 4, sc, mn);
  const uint8_t* chunk = blk + 16 + 32 * (s / 2);
  int shift = 4 * (s % 2);
  for (int l = 0; l < 32; ++l) out.u[l] = (chunk[l] >> shift) & 0x0F;
  out.affine(f16_at(blk) * float(sc[s]), -f16_at(blk + 2) * float(mn[s]));
}

void sub_q5_k(const uint8_t* blk, int s, Sub& out) {
  uint8_t sc[8], mn[8];
  ggml::k_scale_min(blk + 4, sc, mn);
  const uint8_t* qh = blk + 16;
  const uint8_t* chunk = blk + 48 + 32 * (s / 2);
  int shift = 4 * (s % 2);
  for (int l = 0; l < 32; ++l) out.u[l] = uint8_t(((chunk[l] >> shift) & 0x0F) | ((qh[l] >> s) & 1) << 4);
  out.affine(f16_at(blk) * float(sc[s]), -f16_at(blk + 2) * float(mn[s]));
}

// Q6_K: 6-bit u, value = d * scale * (u - 32), int8 scales per 16.
void sub_q6_k(const uint8_t* blk, int s, Sub& out) {
  int h = s / 4, r = s % 4;  // half of the super-block, 32-value group within it
  const uint8_t* ql = blk + 64 * h + 32 * (r % 2);
  const uint8_t* qh = blk + 128 + 32 * h;
  const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
  for (int l = 0; l < 32; ++l)
    out.u[l] = uint8_t(((ql[l] >> (4 * (r / 2))) & 0x0F) | ((qh[l] >> (2 * r)) & 3) << 4);
  float d = f16_at(blk + 208);
  for (int k = 0; k < 2; ++k) {
    out.a[k] = d * float(scales[2 * s + k]);
    out.b[k] = -32.0f * out.a[k];
  }
}

template <int64_t kBlock, size_t kBytes, SubDecodeFn Decode>
float row_dot(const uint8_t* w, const Q8Block* x, int64_t n) {
  constexpr int kSubs = int(kBlock / kQ8BlockSize);
  float acc = 0;
  Sub s;
  for (int64_t b = 0; b < n / kBlock; ++b, w += kBytes) {
    for (int k = 0; k < kSubs; ++k, ++x) {
      Decode(w, k, s);
      float part = 0;
      for (int h = 0; h < 2; ++h) {
        int32_t dot = 0;
        for (int j = 16 * h; j < 16 * h + 16; ++j) dot += int32_t(s.u[j]) * int32_t(x->q[j]);
        part += s.a[h] * float(dot) + s.b[h] * float(x->sum[h]);
      }
      acc += x->d * part;
    }
  }
  return acc;
}

// The K-quants' portable kernel on 256-value activation blocks: the decoders' (a, b) per 16 values,
// d * (a * sum u q + b * sum q) per 16, one row after another.
template <size_t kBytes, SubDecodeFn Decode>
void rows_dot_k(const uint8_t* w, size_t row_bytes, int64_t rows, const Q8KBlock* x, int64_t n, float* out) {
  Sub s;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* wr = w + size_t(r) * row_bytes;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; ++b, wr += kBytes) {
      const Q8KBlock& xb = x[b];
      float part = 0;
      for (int k = 0; k < 8; ++k) {
        Decode(wr, k, s);
        for (int h = 0; h < 2; ++h) {
          int32_t dot = 0;
          for (int j = 16 * h; j < 16 * h + 16; ++j) dot += int32_t(s.u[j]) * int32_t(xb.q[32 * k + j]);
          part += s.a[h] * float(dot) + s.b[h] * float(xb.sum[2 * k + h]);
        }
      }
      acc += xb.d * part;
    }
    out[r] = acc;
  }
}

// The f32 family's portable kernel: value = a * u + b as the reference dequantizers compute it, times
// x in f32, one accumulator per activation row.
template <int64_t kBlock, size_t kBytes, SubDecodeFn Decode>
void row_dot_f32(const uint8_t* w, const float* x, int64_t ldx, int m, int64_t n, float* out) {
  constexpr int kSubs = int(kBlock / 32);
  float acc[kF32DotMaxRows] = {};
  Sub s;
  float wv[32];
  for (int64_t b = 0; b < n / kBlock; ++b, w += kBytes) {
    for (int k = 0; k < kSubs; ++k) {
      Decode(w, k, s);
      for (int j = 0; j < 32; ++j) wv[j] = s.a[j / 16] * float(s.u[j]) + s.b[j / 16];
      int64_t at = b * kBlock + 32 * k;
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < 32; ++j) acc[i] += wv[j] * x[i * ldx + at + j];
    }
  }
  for (int i = 0; i < m; ++i) out[i] = acc[i];
}

// The one table of the block types with kernels: f.template operator()<values per block, bytes per
// block, decoder>() for `type`, or R{} (none) for any other type.
template <class R, class F>
R with_decoder(ggml::GgmlType type, F&& f) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_0: return f.template operator()<32, 18, sub_q4_0>();
    case GgmlType::Q4_1: return f.template operator()<32, 20, sub_q4_1>();
    case GgmlType::Q5_0: return f.template operator()<32, 22, sub_q5_0>();
    case GgmlType::Q5_1: return f.template operator()<32, 24, sub_q5_1>();
    case GgmlType::Q8_0: return f.template operator()<32, 34, sub_q8_0>();
    case GgmlType::Q2_K: return f.template operator()<QK_K, 84, sub_q2_k>();
    case GgmlType::Q3_K: return f.template operator()<QK_K, 110, sub_q3_k>();
    case GgmlType::Q4_K: return f.template operator()<QK_K, 144, sub_q4_k>();
    case GgmlType::Q5_K: return f.template operator()<QK_K, 176, sub_q5_k>();
    case GgmlType::Q6_K: return f.template operator()<QK_K, 210, sub_q6_k>();
    default: return R{};
  }
}

}  // namespace

bool f32_dot_supported(ggml::GgmlType type) { return detail::row_dot_f32_scalar(type) != nullptr; }

RowDotF32Fn row_dot_f32_kernel(ggml::GgmlType type, bool simd) {
  if (simd && int8_dot_simd_available())
    if (RowDotF32Fn f = detail::row_dot_f32_avx2(type)) return f;
  RowDotF32Fn f = detail::row_dot_f32_scalar(type);
  WICK_CHECK(f != nullptr, "quantized product: no f32 dot product for GGML type ", ggml::ggml_type_name(type));
  return f;
}

bool int8_dot_supported(ggml::GgmlType type) { return detail::row_dot_scalar(type) != nullptr; }

bool int8_dot_simd_available() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool available =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return available;
#else
  return false;
#endif
}

RowDotFn row_dot_kernel(ggml::GgmlType type, bool simd) {
  if (simd && int8_dot_simd_available())
    if (RowDotFn f = detail::row_dot_avx2(type)) return f;
  RowDotFn f = detail::row_dot_scalar(type);
  WICK_CHECK(f != nullptr, "quantized product: no 8-bit dot product for GGML type ", ggml::ggml_type_name(type));
  return f;
}

KDotIsa k_dot_best_isa() {
#if defined(__x86_64__) || defined(__i386__)
  static const KDotIsa best = !int8_dot_simd_available()                ? KDotIsa::kScalar
                              : __builtin_cpu_supports("avx512vnni") &&
                                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
                                  ? KDotIsa::kAvx512Vnni
                                  : KDotIsa::kAvx2;
  return best;
#else
  return KDotIsa::kScalar;
#endif
}

namespace {

RowsDotKFn rows_dot_k_scalar(ggml::GgmlType type) {
  return with_decoder<RowsDotKFn>(type, []<int64_t kBlock, size_t kBytes, SubDecodeFn Decode>() -> RowsDotKFn {
    if constexpr (kBlock == QK_K)
      return &rows_dot_k<kBytes, Decode>;
    else
      return nullptr;
  });
}

}  // namespace

bool k_dot_supported(ggml::GgmlType type) { return rows_dot_k_scalar(type) != nullptr; }

RowsDotKFn rows_dot_k_kernel(ggml::GgmlType type, KDotIsa isa) {
  WICK_CHECK(int(isa) <= int(k_dot_best_isa()), "quantized product: this CPU lacks the instructions of the K-quant ",
             "kernel asked for");
  RowsDotKFn f = nullptr;
  if (isa == KDotIsa::kAvx512Vnni) f = detail::rows_dot_k_vnni(type);
  if (!f && isa >= KDotIsa::kAvx2) f = detail::rows_dot_k_avx2(type);
  if (!f) f = rows_dot_k_scalar(type);
  WICK_CHECK(f != nullptr, "quantized product: no K-quant dot product for GGML type ", ggml::ggml_type_name(type));
  return f;
}

namespace detail {

RowDotFn row_dot_scalar(ggml::GgmlType type) {
  return with_decoder<RowDotFn>(type, []<int64_t kBlock, size_t kBytes, SubDecodeFn Decode>() {
    return &row_dot<kBlock, kBytes, Decode>;
  });
}

RowDotF32Fn row_dot_f32_scalar(ggml::GgmlType type) {
  return with_decoder<RowDotF32Fn>(type, []<int64_t kBlock, size_t kBytes, SubDecodeFn Decode>() {
    return &row_dot_f32<kBlock, kBytes, Decode>;
  });
}

SubDecodeFn sub_decoder(ggml::GgmlType type) {
  return with_decoder<SubDecodeFn>(type, []<int64_t, size_t, SubDecodeFn Decode>() { return Decode; });
}

}  // namespace detail

}  // namespace wick::cpu
