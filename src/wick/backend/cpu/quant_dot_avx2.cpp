// AVX2 dot products of GGML weight rows with f32 activations and with 8-bit activation blocks (see
// quant_dot.h); the f32 kernels follow the 8-bit ones. 8-bit: each
// 32 weights are unpacked into unsigned bytes u in registers; _mm256_maddubs_epi16(u, q) forms the
// pair sums u0*q0 + u1*q1 as int16 (at most 2 * 128 * 127 = 32512 here: u <= 63 for the K-quants
// and Q5, <= 15 for Q4, |w| <= 128 for Q8_0 through the sign trick), _mm256_madd_epi16 widens them
// to int32 (weighted by the 16-value scales for Q6_K), and one float FMA per block applies the
// scales. The offset terms b * sum(q) are summed on the side. Compiled for AVX2+FMA+F16C and
// called only where the CPU has them (int8_dot_simd_available).
#if defined(__x86_64__)

#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#if defined(__AVX512F__)
// GCC 12 reports the intentionally undefined registers inside its own AVX-512 widening intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstring>

#include "wick/backend/cpu/quant_dot.h"

namespace wick::cpu {

namespace {

inline float f16f(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m256i loadq(const Q8Block& x) { return load256(x.q); }

// The 8 int32 partial sums of u . q, as floats.
inline __m256 dot32(__m256i u, __m256i q) {
  __m256i pairs = _mm256_maddubs_epi16(u, q);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 bytes of nibbles -> 32 values: the low nibbles (elements 0-15), then the high ones (16-31).
inline __m256i nibbles32(const uint8_t* qs) {
  __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
}

// Byte j = 0x10 where bit j of `bits` is set: the fifth bit of Q5_0/Q5_1 quants.
inline __m256i fifth_bits(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  __m256i v = _mm256_set1_epi32(int(bits));
  v = _mm256_shuffle_epi8(v, _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i mask = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  v = _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// The 32-value kernels run two blocks per step into separate accumulators (vector and offset),
// halving the chains of dependent adds. `block(b, off)` returns block b's scaled products and adds
// its offset term to off.
template <class Block>
float sum_blocks(int64_t blocks, const Block& block) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float off0 = 0, off1 = 0;
  int64_t b = 0;
  for (; b + 1 < blocks; b += 2) {
    acc0 = block(b, acc0, off0);
    acc1 = block(b + 1, acc1, off1);
  }
  if (b < blocks) acc0 = block(b, acc0, off0);
  return hsum(_mm256_add_ps(acc0, acc1)) + off0 + off1;
}

// value = d * (u - offset): Q4_0 (offset 8), Q5_0 (16).
template <bool kFive>
float dot_q_0(const uint8_t* w, const Q8Block* x, int64_t n) {
  constexpr size_t kBytes = kFive ? 22 : 18;
  constexpr float kOffset = kFive ? -16.0f : -8.0f;
  return sum_blocks(n / 32, [&](int64_t b, __m256 acc, float& off) {
    const uint8_t* wb = w + size_t(b) * kBytes;
    float s = f16f(wb) * x[b].d;
    __m256i u = kFive ? _mm256_or_si256(nibbles32(wb + 6), fifth_bits(wb + 2)) : nibbles32(wb + 2);
    off += kOffset * f16f(wb) * x[b].ds;
    return _mm256_fmadd_ps(_mm256_set1_ps(s), dot32(u, loadq(x[b])), acc);
  });
}

// value = d * u + m: Q4_1, Q5_1.
template <bool kFive>
float dot_q_1(const uint8_t* w, const Q8Block* x, int64_t n) {
  constexpr size_t kBytes = kFive ? 24 : 20;
  return sum_blocks(n / 32, [&](int64_t b, __m256 acc, float& off) {
    const uint8_t* wb = w + size_t(b) * kBytes;
    float xd = x[b].d;
    __m256i u = kFive ? _mm256_or_si256(nibbles32(wb + 8), fifth_bits(wb + 4)) : nibbles32(wb + 4);
    off += f16f(wb + 2) * x[b].ds;
    return _mm256_fmadd_ps(_mm256_set1_ps(f16f(wb) * xd), dot32(u, loadq(x[b])), acc);
  });
}

// Q8_0: signed weights; |w| times q carrying w's sign keeps maddubs' unsigned operand.
float dot_q8_0(const uint8_t* w, const Q8Block* x, int64_t n) {
  return sum_blocks(n / 32, [&](int64_t b, __m256 acc, float&) {
    const uint8_t* wb = w + size_t(b) * 34;
    __m256i qw = load256(wb + 2);
    __m256i u = _mm256_sign_epi8(qw, qw);
    __m256i q = _mm256_sign_epi8(loadq(x[b]), qw);
    return _mm256_fmadd_ps(_mm256_set1_ps(f16f(wb) * x[b].d), dot32(u, q), acc);
  });
}

// Q4_K / Q5_K: per 32 values value = (d * sc) * u - dmin * mn.
template <bool kFive>
float dot_qk_4_5(const uint8_t* w, const Q8Block* x, int64_t n) {
  constexpr size_t kBytes = kFive ? 176 : 144;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float off = 0;
  for (int64_t b = 0; b < n / 256; ++b, w += kBytes, x += 8) {
    float d = f16f(w), dmin = f16f(w + 2);
    uint8_t sc[8], mn[8];
    ggml::k_scale_min(w + 4, sc, mn);
    const uint8_t* qs = w + (kFive ? 48 : 16);
    __m256i qh = kFive ? load256(w + 16) : _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i raw = load256(qs + 32 * c);
      __m256i u[2] = {_mm256_and_si256(raw, low4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4)};
      for (int k = 0; k < 2; ++k) {
        int s = 2 * c + k;
        if constexpr (kFive) {
          __m256i bit = _mm256_set1_epi8(char(1 << s));
          __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
          u[k] = _mm256_or_si256(u[k], _mm256_and_si256(high, _mm256_set1_epi8(0x10)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * float(sc[s]) * x[s].d), dot32(u[k], loadq(x[s])), acc);
        off += dmin * float(mn[s]) * x[s].ds;
      }
    }
  }
  return hsum(acc) - off;
}

// Q6_K: value = d * scale16 * (u - 32), u 6 bits (low nibble and two high bits).
float dot_q6_k(const uint8_t* w, const Q8Block* x, int64_t n) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
  __m256 acc = _mm256_setzero_ps();
  float off = 0;
  for (int64_t b = 0; b < n / 256; ++b, w += 210) {
    float d = f16f(w + 208);
    const auto* scales = reinterpret_cast<const int8_t*>(w + 192);
    for (int h = 0; h < 2; ++h, x += 4) {
      __m256i ql0 = load256(w + 64 * h), ql1 = load256(w + 64 * h + 32), qh = load256(w + 128 + 32 * h);
      __m256i lows[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                         _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                         _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
      __m256i highs[4] = {_mm256_and_si256(qh, two), _mm256_and_si256(_mm256_srli_epi16(qh, 2), two),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 4), two),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 6), two)};
      for (int r = 0; r < 4; ++r) {
        __m256i u = _mm256_or_si256(lows[r], _mm256_slli_epi16(highs[r], 4));
        int sc0 = scales[8 * h + 2 * r], sc1 = scales[8 * h + 2 * r + 1];
        __m256i pairs = _mm256_maddubs_epi16(u, loadq(x[r]));
        __m256i sv = _mm256_set_m128i(_mm_set1_epi16(int16_t(sc1)), _mm_set1_epi16(int16_t(sc0)));
        float s = d * x[r].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, sv)), acc);
        off += s * float(sc0 * x[r].sum[0] + sc1 * x[r].sum[1]);
      }
    }
  }
  return hsum(acc) - 32.0f * off;
}

// ---- f32 activations ----
// Per 32 weights: widen the bytes u to f32, w = a * u + b with one FMA, then one FMA per activation
// row; M rows share each decoded block. With AVX-512 (a build for a CPU that has it) the same steps
// run 16 values per register, half the instructions, and 4-bit codes (Q4_0, Q4_1, Q4_K) look their
// values up in a 16-entry table per scale instead (add_nibbles); otherwise 8 per register. Each row
// keeps two accumulators (AVX-512) or four (AVX2, one row) so the FMA chains overlap; their indices
// are constants, which keeps the sums in registers.
#if defined(__AVX512F__)
template <int M>
struct F32Rows {
  static constexpr int kChains = 2;
  const float* x;
  int64_t ldx;
  __m512 acc[M][kChains];

  F32Rows(const float* x_, int64_t ldx_) : x(x_), ldx(ldx_) {
    for (int i = 0; i < M; ++i)
      for (int c = 0; c < kChains; ++c) acc[i][c] = _mm512_setzero_ps();
  }

  // Weights at columns at .. at + 31: bytes u, (a0, b0) for the first 16, (a1, b1) for the rest.
  inline void add(__m256i u, float a0, float b0, float a1, float b1, int64_t at) {
    __m512 w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(u))),
                                _mm512_set1_ps(a0), _mm512_set1_ps(b0));
    __m512 w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(u, 1))),
                                _mm512_set1_ps(a1), _mm512_set1_ps(b1));
    add_pair(w0, w1, at, at + 16);
  }

  // 4-bit codes: a block's 16 possible values a * j + b (j = 0..15) fill one register and each code
  // picks its value (vpermps reads the low 4 bits of a 32-bit lane), which replaces widening the
  // codes to floats and a multiply-add per value; the values are the same floats.
  static inline __m512 value_table(float a, float b) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_fmadd_ps(iota, _mm512_set1_ps(a), _mm512_set1_ps(b));
  }
  static inline __m512i lanes16(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // 32 weights of one scale at columns at..: the low nibbles of qs[0..15], then their high nibbles
  // (Q4_0, Q4_1).
  inline void add_nibbles(const uint8_t* qs, float a, float b, int64_t at) {
    const __m512 table = value_table(a, b);
    const __m512i codes = lanes16(qs);
    add_pair(_mm512_permutexvar_ps(codes, table), _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table), at,
             at + 16);
  }
  // Two groups of 32 from 32 bytes (Q4_K): the low nibbles are the group at at_lo (a_lo, b_lo),
  // the high nibbles the group at at_hi.
  inline void add_nibble_groups(const uint8_t* qs, float a_lo, float b_lo, float a_hi, float b_hi, int64_t at_lo,
                                int64_t at_hi) {
    const __m512 lo = value_table(a_lo, b_lo), hi = value_table(a_hi, b_hi);
    const __m512i c0 = lanes16(qs), c1 = lanes16(qs + 16);
    add_pair(_mm512_permutexvar_ps(c0, lo), _mm512_permutexvar_ps(c1, lo), at_lo, at_lo + 16);
    add_pair(_mm512_permutexvar_ps(_mm512_srli_epi32(c0, 4), hi), _mm512_permutexvar_ps(_mm512_srli_epi32(c1, 4), hi),
             at_hi, at_hi + 16);
  }

  // 16 weights at columns at0.. and 16 at at1.., one chain each (indices known at compile time, so
  // the sums stay in registers).
  inline void add_pair(__m512 w0, __m512 w1, int64_t at0, int64_t at1) {
    for (int i = 0; i < M; ++i) {
      const float* xi = x + i * ldx;
      acc[i][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xi + at0), acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xi + at1), acc[i][1]);
    }
  }

  void store(float* out) const {
    for (int i = 0; i < M; ++i) {
      __m512 s = acc[i][0];
      for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[i][c]);
      out[i] = _mm512_reduce_add_ps(s);
    }
  }
};
#else
template <int M>
struct F32Rows {
  static constexpr int kChains = M == 1 ? 4 : 2;
  const float* x;
  int64_t ldx;
  __m256 acc[M][kChains];

  F32Rows(const float* x_, int64_t ldx_) : x(x_), ldx(ldx_) {
    for (int i = 0; i < M; ++i)
      for (int c = 0; c < kChains; ++c) acc[i][c] = _mm256_setzero_ps();
  }

  // Weights at columns at .. at + 31: bytes u, (a0, b0) for the first 16, (a1, b1) for the rest.
  inline void add(__m256i u, float a0, float b0, float a1, float b1, int64_t at) {
    __m128i lo = _mm256_castsi256_si128(u), hi = _mm256_extracti128_si256(u, 1);
    __m256 ha = _mm256_set1_ps(a0), hb = _mm256_set1_ps(b0);
    __m256 w[4];
    w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), ha, hb);
    w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(lo, lo))), ha, hb);
    ha = _mm256_set1_ps(a1);
    hb = _mm256_set1_ps(b1);
    w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), ha, hb);
    w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(hi, hi))), ha, hb);
    for (int i = 0; i < M; ++i) {
      const float* xi = x + i * ldx + at;
      for (int q = 0; q < 4; ++q)
        acc[i][q % kChains] = _mm256_fmadd_ps(w[q], _mm256_loadu_ps(xi + 8 * q), acc[i][q % kChains]);
    }
  }

  void store(float* out) const {
    for (int i = 0; i < M; ++i) {
      __m256 s = acc[i][0];
      for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[i][c]);
      out[i] = hsum(s);
    }
  }
};
#endif

// Block decoders: row(w, n, sink) calls sink.add once per 32 weights of a row of n values.

// value = d * u + offset * d: Q4_0 (offset -8), Q5_0 (-16); value = d * u + m: Q4_1, Q5_1.
template <bool kFive, bool kMin>
struct Decode32 {
  template <class Sink>
  static void row(const uint8_t* w, int64_t n, Sink& sink) {
    constexpr size_t kBytes = (kFive ? 22 : 18) + (kMin ? 2 : 0);
    constexpr size_t kQs = (kMin ? 4 : 2) + (kFive ? 4 : 0);
    for (int64_t b = 0; b < n / 32; ++b, w += kBytes) {
      float d = f16f(w);
      float off = kMin ? f16f(w + 2) : (kFive ? -16.0f : -8.0f) * d;
#if defined(__AVX512F__)
      if constexpr (!kFive) {
        sink.add_nibbles(w + kQs, d, off, 32 * b);
        continue;
      }
#endif
      __m256i u = nibbles32(w + kQs);
      if constexpr (kFive) u = _mm256_or_si256(u, fifth_bits(w + kQs - 4));
      sink.add(u, d, off, d, off, 32 * b);
    }
  }
};

// Q8_0: signed bytes q read as u = q + 128 (the sign bit flipped), value = d * u - 128 * d = d * q.
struct DecodeQ8_0 {
  template <class Sink>
  static void row(const uint8_t* w, int64_t n, Sink& sink) {
    const __m256i flip = _mm256_set1_epi8(char(0x80));
    for (int64_t b = 0; b < n / 32; ++b, w += 34) {
      float d = f16f(w);
      sink.add(_mm256_xor_si256(load256(w + 2), flip), d, -128.0f * d, d, -128.0f * d, 32 * b);
    }
  }
};

// Q4_K / Q5_K: 32-value group s has value = (d * sc[s]) * u - dmin * mn[s].
template <bool kFive>
struct DecodeQk45 {
  template <class Sink>
  static void row(const uint8_t* w, int64_t n, Sink& sink) {
    constexpr size_t kBytes = kFive ? 176 : 144;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / 256; ++b, w += kBytes) {
      float d = f16f(w), dmin = f16f(w + 2);
      uint8_t sc[8], mn[8];
      ggml::k_scale_min(w + 4, sc, mn);
      const uint8_t* qs = w + (kFive ? 48 : 16);
      __m256i qh = kFive ? load256(w + 16) : _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
#if defined(__AVX512F__)
        if constexpr (!kFive) {
          const int s = 2 * c;
          sink.add_nibble_groups(qs + 32 * c, d * float(sc[s]), -dmin * float(mn[s]), d * float(sc[s + 1]),
                                 -dmin * float(mn[s + 1]), 256 * b + 32 * s, 256 * b + 32 * (s + 1));
          continue;
        }
#endif
        __m256i raw = load256(qs + 32 * c);
        __m256i u[2] = {_mm256_and_si256(raw, low4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4)};
        for (int k = 0; k < 2; ++k) {
          int s = 2 * c + k;
          if constexpr (kFive) {
            __m256i bit = _mm256_set1_epi8(char(1 << s));
            __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
            u[k] = _mm256_or_si256(u[k], _mm256_and_si256(high, _mm256_set1_epi8(0x10)));
          }
          float a = d * float(sc[s]), off = -dmin * float(mn[s]);
          sink.add(u[k], a, off, a, off, 256 * b + 32 * s);
        }
      }
    }
  }
};

// Q6_K: value = d * scale16 * (u - 32), u 6 bits (low nibble and two high bits).
struct DecodeQ6K {
  template <class Sink>
  static void row(const uint8_t* w, int64_t n, Sink& sink) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
    for (int64_t b = 0; b < n / 256; ++b, w += 210) {
      float d = f16f(w + 208);
      const auto* scales = reinterpret_cast<const int8_t*>(w + 192);
      for (int h = 0; h < 2; ++h) {
        __m256i ql0 = load256(w + 64 * h), ql1 = load256(w + 64 * h + 32), qh = load256(w + 128 + 32 * h);
        __m256i lows[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                           _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                           _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
        for (int r = 0; r < 4; ++r) {
          __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), two);
          __m256i u = _mm256_or_si256(lows[r], _mm256_slli_epi16(high, 4));
          float a0 = d * float(scales[8 * h + 2 * r]), a1 = d * float(scales[8 * h + 2 * r + 1]);
          sink.add(u, a0, -32.0f * a0, a1, -32.0f * a1, 256 * b + 128 * h + 32 * r);
        }
      }
    }
  }
};

// Q2_K and Q3_K: the portable decoder's bytes (their 8-bit products have no AVX2 kernel either).
template <ggml::GgmlType kType>
struct DecodeSub {
  template <class Sink>
  static void row(const uint8_t* w, int64_t n, Sink& sink) {
    static const detail::SubDecodeFn decode = detail::sub_decoder(kType);
    const size_t bytes = ggml::ggml_nbytes(kType, 256);
    detail::Sub s;
    for (int64_t b = 0; b < n / 256; ++b, w += bytes)
      for (int k = 0; k < 8; ++k) {
        decode(w, k, s);
        sink.add(load256(s.u), s.a[0], s.b[0], s.a[1], s.b[1], 256 * b + 32 * k);
      }
  }
};

template <class Decoder, int M>
void dot_f32_rows(const uint8_t* w, const float* x, int64_t ldx, int64_t n, float* out) {
  F32Rows<M> rows(x, ldx);
  Decoder::row(w, n, rows);
  rows.store(out);
}

template <class Decoder>
void dot_f32(const uint8_t* w, const float* x, int64_t ldx, int m, int64_t n, float* out) {
  switch (m) {
    case 1: return dot_f32_rows<Decoder, 1>(w, x, ldx, n, out);
    case 2: return dot_f32_rows<Decoder, 2>(w, x, ldx, n, out);
    case 3: return dot_f32_rows<Decoder, 3>(w, x, ldx, n, out);
    default: return dot_f32_rows<Decoder, 4>(w, x, ldx, n, out);
  }
}

}  // namespace

namespace detail {

RowDotFn row_dot_avx2(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_0: return dot_q_0<false>;
    case GgmlType::Q5_0: return dot_q_0<true>;
    case GgmlType::Q4_1: return dot_q_1<false>;
    case GgmlType::Q5_1: return dot_q_1<true>;
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::Q4_K: return dot_qk_4_5<false>;
    case GgmlType::Q5_K: return dot_qk_4_5<true>;
    case GgmlType::Q6_K: return dot_q6_k;
    default: return nullptr;
  }
}

RowDotF32Fn row_dot_f32_avx2(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_0: return dot_f32<Decode32<false, false>>;
    case GgmlType::Q5_0: return dot_f32<Decode32<true, false>>;
    case GgmlType::Q4_1: return dot_f32<Decode32<false, true>>;
    case GgmlType::Q5_1: return dot_f32<Decode32<true, true>>;
    case GgmlType::Q8_0: return dot_f32<DecodeQ8_0>;
    case GgmlType::Q2_K: return dot_f32<DecodeSub<GgmlType::Q2_K>>;
    case GgmlType::Q3_K: return dot_f32<DecodeSub<GgmlType::Q3_K>>;
    case GgmlType::Q4_K: return dot_f32<DecodeQk45<false>>;
    case GgmlType::Q5_K: return dot_f32<DecodeQk45<true>>;
    case GgmlType::Q6_K: return dot_f32<DecodeQ6K>;
    default: return nullptr;
  }
}

}  // namespace detail

}  // namespace wick::cpu

#else

#include "wick/backend/cpu/quant_dot.h"

namespace wick::cpu::detail {
RowDotFn row_dot_avx2(ggml::GgmlType) { return nullptr; }
RowDotF32Fn row_dot_f32_avx2(ggml::GgmlType) { return nullptr; }
}  // namespace wick::cpu::detail

#endif
