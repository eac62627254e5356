// The SIMD K-quant kernels on 256-value activation blocks (Q8KBlock, see quant_dot.h), written once
// and compiled twice: for AVX2 (quant_dot_k_avx2.cpp) and for AVX2 with AVX512-VNNI on 256-bit
// registers (quant_dot_k_vnni.cpp), chosen at run time by rows_dot_k_kernel. Per super-block of
// 256 weights and each weight row: the unsigned quants u meet the activations in
// _mm256_maddubs_epi16 (int16 pair sums, at most 2 * 63 * 127), each 16 or 32 of those pair sums
// are weighted by the integer scale of their sub-block and summed into int32 by _mm256_madd_epi16
// (VNNI: _mm256_dpwssd_epi32, multiply and add in one), and the super-block's int32 sums become
// float once, times d_w * d_x. The min / offset terms come from the activation sums per 16 values
// (Q8KBlock::sum), also in integers. The int32 sums stay far from overflow: |u * scale * q| <=
// 63 * 128 * 127 per value, about 2.6e8 per super-block. One weight row at a time, its super-blocks
// in order: decode streams the weights from memory, and rows read in turn are one sequential stream
// (several rows interleaved, sharing the activation loads, ran 2-3x slower from memory here).
//
// Included only by those two files, whose `#pragma GCC target` lines set the instructions; the
// anonymous namespace gives each its own copies, so code built for one set never stands in for the
// other's at link time.
#pragma once

#if !defined(__x86_64__)
#error "quant_dot_k.h is for x86-64"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "wick/backend/cpu/quant_dot.h"

namespace wick::cpu {
namespace {

inline __m256i k_load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i k_load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

inline float k_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float k_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float k_hsum(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// acc + the int32 sums of adjacent int16 products a * b.
template <bool kVnni>
inline __m256i k_madd_acc(__m256i acc, __m256i a, __m256i b) {
  if constexpr (kVnni)
    return _mm256_dpwssd_epi32(acc, a, b);
  else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}

// Every int16 lane = int16 lane `s` of each 128-bit half of v (the scale of 32-value group s, when
// both halves hold the 8 scales).
template <int s>
inline __m256i k_broadcast_word(__m256i v) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(int16_t((2 * s + 1) << 8 | 2 * s)));
}

// Q4_K / Q5_K: value = d * sc[s] * u - dmin * mn[s] per 32-value group s, with 6-bit sc and mn
// packed in 12 bytes (ggml's get_scale_min_k4), unpacked here as two 32-bit words each.
template <bool kFive, bool kVnni>
struct KernelQk45 {
  static constexpr size_t kBytes = kFive ? 176 : 144;
  static constexpr size_t kQs = kFive ? 48 : 16;

  static float row(const uint8_t* w, const Q8KBlock* x, int64_t n) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_min = _mm_setzero_ps();
    for (int64_t b = 0; b < n / 256; ++b, w += kBytes) {
      const Q8KBlock& xb = x[b];
      uint32_t p[3];
      std::memcpy(p, w + 4, 12);
      const uint64_t sc = uint64_t(p[0] & 0x3F3F3F3F) |
                          uint64_t((p[2] & 0x0F0F0F0F) | ((p[0] >> 2) & 0x30303030)) << 32;
      const uint64_t mn = uint64_t(p[1] & 0x3F3F3F3F) |
                          uint64_t(((p[2] >> 4) & 0x0F0F0F0F) | ((p[1] >> 2) & 0x30303030)) << 32;
      // The activation sums per 32 values, as 8 int16 (|sum| <= 32 * 127), against the mins.
      const __m128i sums32 = _mm_hadd_epi16(k_load128(xb.sum), k_load128(xb.sum + 8));
      const __m128i mins = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(mn))), sums32);
      acc_min = _mm_fmadd_ps(_mm_set1_ps(k_f16(w + 2) * xb.d), _mm_cvtepi32_ps(mins), acc_min);
      const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sc))));
      __m256i qh = kFive ? k_load256(w + 16) : _mm256_setzero_si256();
      // Two chains of sums (even and odd groups), so that the multiply-adds overlap.
      __m256i sumi[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      step<0>(w, xb, scales, qh, sumi, low4, bit4);
      step<1>(w, xb, scales, qh, sumi, low4, bit4);
      step<2>(w, xb, scales, qh, sumi, low4, bit4);
      step<3>(w, xb, scales, qh, sumi, low4, bit4);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(w) * xb.d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0], sumi[1])),
                            acc);
    }
    return k_hsum(acc) - k_hsum(acc_min);
  }

  // Values 64c .. 64c + 63: groups 2c (the low nibbles of 32 bytes) and 2c + 1 (the high ones);
  // Q5_K's fifth bits are bits 2c and 2c + 1 of qh, which each step shifts down by 2.
  template <int c>
  static inline void step(const uint8_t* w, const Q8KBlock& xb, __m256i scales, __m256i& qh, __m256i* sumi,
                          __m256i low4, __m256i bit4) {
    const __m256i raw = k_load256(w + kQs + 32 * c);
    __m256i u0 = _mm256_and_si256(raw, low4), u1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    if constexpr (kFive) {
      u0 = _mm256_or_si256(u0, _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4));
      u1 = _mm256_or_si256(u1, _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4));
      qh = _mm256_srli_epi16(qh, 2);
    }
    sumi[0] = k_madd_acc<kVnni>(sumi[0], _mm256_maddubs_epi16(u0, k_load256(xb.q + 64 * c)),
                                k_broadcast_word<2 * c>(scales));
    sumi[1] = k_madd_acc<kVnni>(sumi[1], _mm256_maddubs_epi16(u1, k_load256(xb.q + 64 * c + 32)),
                                k_broadcast_word<2 * c + 1>(scales));
  }
};

// Q6_K: value = d * sc[k] * (u - 32) per 16 values k, u of 6 bits (a nibble of ql, two bits of qh),
// int8 scales. The offset term -32 * sum_k sc[k] * sum_k(q) starts each super-block's int32 sums.
template <bool kVnni>
struct KernelQ6K {
  static float row(const uint8_t* w, const Q8KBlock* x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; ++b, w += 210) {
      const Q8KBlock& xb = x[b];
      const __m128i sc8 = k_load128(w + 192);
      const __m256i offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), k_load256(xb.sum));
      // Two chains of sums (even and odd groups), so that the multiply-adds overlap.
      __m256i sumi[2] = {_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5)),
                         _mm256_setzero_si256()};
      const __m256i scale_bytes = _mm256_broadcastsi128_si256(sc8);
      half<0>(w, xb, scale_bytes, sumi);
      half<1>(w, xb, scale_bytes, sumi);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(w + 208) * xb.d),
                            _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0], sumi[1])), acc);
    }
    return k_hsum(acc);
  }

  // The int16 scales of 32-value group g: sc[2g] in the low 128 bits, sc[2g + 1] in the high ones
  // (each byte moved to the high half of its lane, then shifted down with its sign).
  template <int g>
  static inline __m256i group_scales(__m256i scale_bytes) {
    const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(int16_t((2 * g + 1) << 8 | 0x80)),
                                          _mm_set1_epi16(int16_t((2 * g) << 8 | 0x80)));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(scale_bytes, pick), 8);
  }

  // Values 128h .. 128h + 127: groups 4h + j, j = 0..3, whose u takes nibble j / 2 of ql bytes
  // 32 (j % 2) .. and bits 2j, 2j + 1 of the 32 qh bytes.
  template <int h>
  static inline void half(const uint8_t* w, const Q8KBlock& xb, __m256i scale_bytes, __m256i* sumi) {
    const __m256i ql0 = k_load256(w + 64 * h), ql1 = k_load256(w + 64 * h + 32), qh = k_load256(w + 128 + 32 * h);
    group<h, 0>(ql0, qh, xb, scale_bytes, sumi);
    group<h, 1>(ql1, qh, xb, scale_bytes, sumi);
    group<h, 2>(ql0, qh, xb, scale_bytes, sumi);
    group<h, 3>(ql1, qh, xb, scale_bytes, sumi);
  }

  template <int h, int j>
  static inline void group(__m256i ql, __m256i qh, const Q8KBlock& xb, __m256i scale_bytes, __m256i* sumi) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
    const __m256i low = j < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
    // Bits 2j, 2j + 1 of each qh byte moved to bits 4, 5.
    const __m256i high = j == 0   ? _mm256_slli_epi16(qh, 4)
                         : j == 1 ? _mm256_slli_epi16(qh, 2)
                         : j == 2 ? qh
                                  : _mm256_srli_epi16(qh, 2);
    const __m256i u = _mm256_or_si256(low, _mm256_and_si256(high, bits45));
    sumi[j % 2] = k_madd_acc<kVnni>(sumi[j % 2], _mm256_maddubs_epi16(u, k_load256(xb.q + 128 * h + 32 * j)),
                                    group_scales<4 * h + j>(scale_bytes));
  }
};

// The int16 lanes of 32-value group g: byte 2g of v (in each 128-bit half) in the low 128 bits,
// byte 2g + 1 in the high ones, zero-extended: the unsigned 16-value scales of Q2_K.
template <int g>
inline __m256i k_group_bytes_u16(__m256i v) {
  const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(int16_t(0x8000 | (2 * g + 1))),
                                        _mm_set1_epi16(int16_t(0x8000 | (2 * g))));
  return _mm256_shuffle_epi8(v, pick);
}

// Q2_K: value = d * (sc[k] & 15) * u - dmin * (sc[k] >> 4) per 16 values k, u of 2 bits: group
// 4h + j (h = 0, 1) takes bits 2j, 2j + 1 of the 32 bytes qs[32h ..].
template <bool kVnni>
struct KernelQ2K {
  static float row(const uint8_t* w, const Q8KBlock* x, int64_t n) {
    const __m256i three = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; ++b, w += 84) {
      const Q8KBlock& xb = x[b];
      const __m128i sc8 = k_load128(w);
      const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0F)));
      acc_min = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(w + 82) * xb.d),
                                _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, k_load256(xb.sum))), acc_min);
      const __m256i scales = _mm256_broadcastsi128_si256(_mm_and_si128(sc8, _mm_set1_epi8(0x0F)));
      __m256i sumi[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      half<0>(w, xb, scales, three, sumi);
      half<1>(w, xb, scales, three, sumi);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(w + 80) * xb.d),
                            _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0], sumi[1])), acc);
    }
    return k_hsum(acc) - k_hsum(acc_min);
  }

  template <int h>
  static inline void half(const uint8_t* w, const Q8KBlock& xb, __m256i scales, __m256i three, __m256i* sumi) {
    const __m256i raw = k_load256(w + 16 + 32 * h);
    group<h, 0>(_mm256_and_si256(raw, three), xb, scales, sumi);
    group<h, 1>(_mm256_and_si256(_mm256_srli_epi16(raw, 2), three), xb, scales, sumi);
    group<h, 2>(_mm256_and_si256(_mm256_srli_epi16(raw, 4), three), xb, scales, sumi);
    group<h, 3>(_mm256_and_si256(_mm256_srli_epi16(raw, 6), three), xb, scales, sumi);
  }

  template <int h, int j>
  static inline void group(__m256i u, const Q8KBlock& xb, __m256i scales, __m256i* sumi) {
    sumi[j % 2] = k_madd_acc<kVnni>(sumi[j % 2], _mm256_maddubs_epi16(u, k_load256(xb.q + 128 * h + 32 * j)),
                                    k_group_bytes_u16<4 * h + j>(scales));
  }
};

// Q3_K: value = d * (sc[k] - 32) * (u - 4) per 16 values k, u of 3 bits: 2 from qs as in Q2_K, the
// third bit s of hmask[l] for value 32s + l; the 6-bit scales packed in 12 bytes (4 low bits of
// each in bytes 0-7, 2 high bits in bytes 8-11), unpacked here as 32-bit words. The offset term
// -4 * sum_k (sc[k] - 32) * sum_k(q) starts each super-block's int32 sums, as Q6_K's does.
template <bool kVnni>
struct KernelQ3K {
  static float row(const uint8_t* w, const Q8KBlock* x, int64_t n) {
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; ++b, w += 110) {
      const Q8KBlock& xb = x[b];
      uint32_t a[3];
      std::memcpy(a, w + 96, 12);
      const __m128i sc8 = _mm_sub_epi8(
          _mm_setr_epi32(int((a[0] & 0x0F0F0F0F) | (a[2] & 0x03030303) << 4),
                         int((a[1] & 0x0F0F0F0F) | ((a[2] >> 2) & 0x03030303) << 4),
                         int(((a[0] >> 4) & 0x0F0F0F0F) | ((a[2] >> 4) & 0x03030303) << 4),
                         int(((a[1] >> 4) & 0x0F0F0F0F) | ((a[2] >> 6) & 0x03030303) << 4)),
          _mm_set1_epi8(32));
      const __m256i offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), k_load256(xb.sum));
      __m256i sumi[2] = {_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 2)),
                         _mm256_setzero_si256()};
      const __m256i scale_bytes = _mm256_broadcastsi128_si256(sc8);
      const __m256i hmask = k_load256(w);
      half<0>(w, xb, scale_bytes, hmask, three, one, sumi);
      half<1>(w, xb, scale_bytes, hmask, three, one, sumi);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(w + 108) * xb.d),
                            _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0], sumi[1])), acc);
    }
    return k_hsum(acc);
  }

  template <int h>
  static inline void half(const uint8_t* w, const Q8KBlock& xb, __m256i scale_bytes, __m256i hmask, __m256i three,
                          __m256i one, __m256i* sumi) {
    const __m256i raw = k_load256(w + 32 + 32 * h);
    group<h, 0>(raw, hmask, xb, scale_bytes, three, one, sumi);
    group<h, 1>(raw, hmask, xb, scale_bytes, three, one, sumi);
    group<h, 2>(raw, hmask, xb, scale_bytes, three, one, sumi);
    group<h, 3>(raw, hmask, xb, scale_bytes, three, one, sumi);
  }

  template <int h, int j>
  static inline void group(__m256i raw, __m256i hmask, const Q8KBlock& xb, __m256i scale_bytes, __m256i three,
                           __m256i one, __m256i* sumi) {
    constexpr int s = 4 * h + j;  // the 32-value group, and its bit of hmask
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * j), three);
    const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hmask, s), one), 2);
    sumi[j % 2] = k_madd_acc<kVnni>(sumi[j % 2],
                                    _mm256_maddubs_epi16(_mm256_or_si256(low, high), k_load256(xb.q + 32 * s)),
                                    KernelQ6K<kVnni>::template group_scales<s>(scale_bytes));
  }
};

// quantize_row_q8k's steps in registers, with the same float operations (x * (127 / amax), rounded
// to nearest even by the conversion, as std::nearbyint does), so the blocks are the same bytes.
inline void k_quantize_row(const float* x, int64_t n, Q8KBlock* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i top = _mm256_set1_epi32(127), bottom = _mm256_set1_epi32(-127);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / 256; ++b, x += 256) {
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < 256; j += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    Q8KBlock& o = out[b];
    o.d = amax / 127.0f;
    for (int j = 0; j < 256; j += 32) {
      __m256i v[4];
      for (int k = 0; k < 4; ++k)
        v[k] = _mm256_min_epi32(
            top, _mm256_max_epi32(bottom, _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), id))));
      for (int h = 0; h < 2; ++h) {
        __m256i s = _mm256_add_epi32(v[2 * h], v[2 * h + 1]);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
        o.sum[j / 16 + h] = int16_t(_mm_cvtsi128_si32(s4));
      }
      // Packing works within 128-bit halves; the permutation puts the 32 bytes back in order.
      const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q + j), _mm256_permutevar8x32_epi32(bytes, order));
    }
    std::memset(o.padding, 0, sizeof(o.padding));
  }
}

// Kernel::row for each of `rows` rows.
template <class Kernel>
void k_rows(const uint8_t* w, size_t row_bytes, int64_t rows, const Q8KBlock* x, int64_t n, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = Kernel::row(w + size_t(r) * row_bytes, x, n);
}

template <bool kVnni>
RowsDotKFn k_kernels(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q2_K: return k_rows<KernelQ2K<kVnni>>;
    case GgmlType::Q3_K: return k_rows<KernelQ3K<kVnni>>;
    case GgmlType::Q4_K: return k_rows<KernelQk45<false, kVnni>>;
    case GgmlType::Q5_K: return k_rows<KernelQk45<true, kVnni>>;
    case GgmlType::Q6_K: return k_rows<KernelQ6K<kVnni>>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace wick::cpu
