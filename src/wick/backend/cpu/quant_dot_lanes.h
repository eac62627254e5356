// The K-quant kernels over the lane layout (quant_dot.h: k_lanes_pack), written once and compiled
// twice: for AVX2 (quant_dot_k_avx2.cpp) and for AVX2 with AVX512-VNNI on 256-bit registers
// (quant_dot_k_vnni.cpp). In that layout 32-bit lane k of every 32-byte vector of a super-block holds
// quants of sub-block k only (of 32 values; Q6_K's two 16-value halves of it in separate vectors),
// and the activations (Q8KLanesBlock) are ordered to match, so one unsigned-by-signed multiply-add
// of 4 bytes per lane (_mm256_dpbusd_epi32; with AVX2 _mm256_maddubs_epi16 and _mm256_madd_epi16 by
// ones, the same int32 sums) serves 32 values, and the 8 lanes end the super-block holding the 8
// sub-blocks' integer sums: each is scaled once per super-block, in float, by its sub-block's scale
// (times d), instead of every 32 values in integers. The sums stay far from overflow: at most
// 32 * 63 * 127 per lane.
//
// Per super-block and activation row i (d_i its scale, lanes k):
//   Q4_K / Q5_K: acc_i += (float(P_k) * d_i) * (d * sc_k);  acc_min_i += (d_i * S_k) * (dmin * mn_k)
//   Q6_K:        acc_i += (float(P_k - 32 S_2k) * (d sc_2k) + float(P'_k - 32 S_2k+1) * (d sc_2k+1)) * d_i
// with P the lane sums of u * q and S the activation sums of the sub-block, and a row's result the
// sum of its 8 lanes (minus those of acc_min). Every activation row takes the same operations
// whichever rows share its pass, so a row's result does not depend on the batch.
//
// Included only by those two files, whose `#pragma GCC target` lines set the instructions; the
// anonymous namespace gives each its own copies. The small helpers are quant_dot_k.h's.
#pragma once

#if !defined(__x86_64__)
#error "quant_dot_lanes.h is for x86-64"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "wick/backend/cpu/quant_dot.h"
#include "wick/backend/cpu/quant_dot_k.h"  // k_load256, k_f16, k_hsum

namespace wick::cpu {
namespace {

// The float lanes of R activation rows' sums against one weight row, carried from one span of
// super-blocks to the next; a row's result is the sum of acc's lanes minus the sum of acc_min's.
template <int R>
struct LaneSums {
  __m256 acc[R], acc_min[R];
  LaneSums() {
    for (int i = 0; i < R; ++i) acc[i] = acc_min[i] = _mm256_setzero_ps();
  }
  void store(float* out, int64_t out_stride) const {
    for (int i = 0; i < R; ++i) out[i * out_stride] = k_hsum(acc[i]) - k_hsum(acc_min[i]);
  }
};

// acc + per 32-bit lane the sum of the 4 products of unsigned bytes u and signed bytes q.
template <bool kVnni>
inline __m256i lanes_dot(__m256i acc, __m256i u, __m256i q) {
  if constexpr (kVnni)
    return _mm256_dpbusd_epi32(acc, u, q);
  else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1)));
}

// The 8 float lanes d * b[k] for 8 unsigned bytes b.
inline __m256 lanes_scaled(uint64_t bytes, float d) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(bytes)))), _mm256_set1_ps(d));
}

// Q4_K / Q5_K in lanes: d, dmin and the 12 bytes of 6-bit scales and mins as in the file; Q5_K's
// 32 bytes of fifth bits (byte 4k + j: bit t for value 32k + 8t + j, bit 4 + t for 32k + 8t + 4 + j);
// then 4 vectors of 32 bytes, vector t's byte 4k + j holding value 32k + 8t + j in its low nibble
// and 32k + 8t + 4 + j in its high one.
template <bool kFive, bool kVnni>
struct LanesQk45 {
  static constexpr size_t kBytes = kFive ? 176 : 144;
  static constexpr size_t kQs = kFive ? 48 : 16;
  static constexpr int kPassRows = kVnni ? 8 : 4;  // activation rows per pass (lanes_rows)

  // Super-blocks [0, nb) of w against R rows of activations (x + i * stride), added to `sums`.
  template <int R>
  static void rows(const uint8_t* w, const Q8KLanesBlock* x, int64_t stride, int64_t nb, LaneSums<R>& sums) {
    __m256 acc[R], acc_min[R];
    for (int i = 0; i < R; ++i) acc[i] = sums.acc[i], acc_min[i] = sums.acc_min[i];
    for (int64_t b = 0; b < nb; ++b, w += kBytes) {
      const Q8KLanesBlock* xb[R];
      for (int i = 0; i < R; ++i) xb[i] = x + i * stride + b;
      uint32_t p[3];
      std::memcpy(p, w + 4, 12);
      const uint64_t sc = uint64_t(p[0] & 0x3F3F3F3F) |
                          uint64_t((p[2] & 0x0F0F0F0F) | ((p[0] >> 2) & 0x30303030)) << 32;
      const uint64_t mn = uint64_t(p[1] & 0x3F3F3F3F) |
                          uint64_t(((p[2] >> 4) & 0x0F0F0F0F) | ((p[1] >> 2) & 0x30303030)) << 32;
      const __m256 w_sc = lanes_scaled(sc, k_f16(w)), w_mn = lanes_scaled(mn, k_f16(w + 2));
      const __m256i qh = kFive ? k_load256(w + 16) : _mm256_setzero_si256();
      __m256i lo[R], hi[R];  // the low and high nibbles' sums, two chains per row
      for (int i = 0; i < R; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
      step<0, R>(w, xb, qh, lo, hi);
      step<1, R>(w, xb, qh, lo, hi);
      step<2, R>(w, xb, qh, lo, hi);
      step<3, R>(w, xb, qh, lo, hi);
      for (int i = 0; i < R; ++i) {
        const __m256 sums = _mm256_cvtepi32_ps(_mm256_add_epi32(lo[i], hi[i]));
        acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(sums, _mm256_set1_ps(xb[i]->d)), w_sc, acc[i]);
        acc_min[i] = _mm256_fmadd_ps(_mm256_loadu_ps(xb[i]->ds32), w_mn, acc_min[i]);
      }
    }
    for (int i = 0; i < R; ++i) sums.acc[i] = acc[i], sums.acc_min[i] = acc_min[i];
  }

  template <int t, int R>
  static inline void step(const uint8_t* w, const Q8KLanesBlock* const* xb, __m256i qh, __m256i* lo, __m256i* hi) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i raw = k_load256(w + kQs + 32 * t);
    __m256i u0 = _mm256_and_si256(raw, low4), u1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    if constexpr (kFive) {
      const __m256i bit4 = _mm256_set1_epi8(0x10);
      u0 = _mm256_or_si256(u0, _mm256_and_si256(_mm256_slli_epi16(qh, 4 - t), bit4));
      u1 = _mm256_or_si256(u1, _mm256_and_si256(_mm256_srli_epi16(qh, t), bit4));
    }
    for (int i = 0; i < R; ++i) {
      lo[i] = lanes_dot<kVnni>(lo[i], u0, k_load256(xb[i]->q + 64 * t));
      hi[i] = lanes_dot<kVnni>(hi[i], u1, k_load256(xb[i]->q + 64 * t + 32));
    }
  }
};

// Q6_K in lanes: 4 vectors of 32 bytes of low nibbles (as LanesQk45's), then 2 of high bits (vector
// g's byte 4k + j: bits 2 (2 (t - 2g) + h) and up for value 32k + 8t + 4h + j, t = 2g, 2g + 1), then
// the 16 int8 scales and d as in the file. Vectors t = 0, 1 hold the first 16 values of each
// 32-value group (scale 2k), t = 2, 3 the last 16 (scale 2k + 1).
template <bool kVnni>
struct LanesQ6K {
  static constexpr size_t kBytes = 210;
  static constexpr int kPassRows = kVnni ? 8 : 4;

  // As LanesQk45::rows (no mins: acc_min stays zero).
  template <int R>
  static void rows(const uint8_t* w, const Q8KLanesBlock* x, int64_t stride, int64_t nb, LaneSums<R>& sums) {
    // The 16 scales as the even ones (bytes 0-7), then the odd ones (8-15).
    const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256 acc[R];
    for (int i = 0; i < R; ++i) acc[i] = sums.acc[i];
    for (int64_t b = 0; b < nb; ++b, w += kBytes) {
      const Q8KLanesBlock* xb[R];
      for (int i = 0; i < R; ++i) xb[i] = x + i * stride + b;
      const __m128i sc = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)), split);
      const __m256 d = _mm256_set1_ps(k_f16(w + 208));
      const __m256 w_even = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), d);
      const __m256 w_odd = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(sc, sc))), d);
      const __m256i qh0 = k_load256(w + 128), qh1 = k_load256(w + 160);
      __m256i first[R], second[R];  // the first and last 16 values of each group
      for (int i = 0; i < R; ++i) first[i] = second[i] = _mm256_setzero_si256();
      step<0, R>(w, xb, qh0, first);
      step<1, R>(w, xb, qh0, first);
      step<2, R>(w, xb, qh1, second);
      step<3, R>(w, xb, qh1, second);
      for (int i = 0; i < R; ++i) {
        const __m256i p0 = _mm256_sub_epi32(first[i], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[i]->s16)));
        const __m256i p1 =
            _mm256_sub_epi32(second[i], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[i]->s16 + 8)));
        const __m256 scaled =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), w_odd, _mm256_mul_ps(_mm256_cvtepi32_ps(p0), w_even));
        acc[i] = _mm256_fmadd_ps(scaled, _mm256_set1_ps(xb[i]->d), acc[i]);
      }
    }
    for (int i = 0; i < R; ++i) sums.acc[i] = acc[i];
  }

  template <int t, int R>
  static inline void step(const uint8_t* w, const Q8KLanesBlock* const* xb, __m256i qh, __m256i* sums) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
    const __m256i raw = k_load256(w + 32 * t);
    // Bits 2 (2 (t % 2) + h) and up of qh moved to bits 4 and 5.
    const __m256i high0 = t % 2 == 0 ? _mm256_slli_epi16(qh, 4) : qh;
    const __m256i high1 = t % 2 == 0 ? _mm256_slli_epi16(qh, 2) : _mm256_srli_epi16(qh, 2);
    const __m256i u0 = _mm256_or_si256(_mm256_and_si256(raw, low4), _mm256_and_si256(high0, bits45));
    const __m256i u1 =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), _mm256_and_si256(high1, bits45));
    for (int i = 0; i < R; ++i) {
      sums[i] = lanes_dot<kVnni>(sums[i], u0, k_load256(xb[i]->q + 64 * t));
      sums[i] = lanes_dot<kVnni>(sums[i], u1, k_load256(xb[i]->q + 64 * t + 32));
    }
  }
};

// Weight rows [r0, r1) (at most kLaneTile) against R activation rows (x + i * nb). With `spans`
// (a prompt: many passes over the same weight rows) and rows whose blocks would take more than
// kLaneL1Bytes (4 rows of a down projection's 35 super-blocks: 53 KB), spans of kLaneSpan
// super-blocks, each span of every weight row in turn, so that the span's activation blocks and the
// tile's weights stay in L1; the sums carried between spans are exact. Otherwise (a decode step,
// whose time is the weights' stream from memory) each weight row whole, in order.
constexpr int64_t kLaneTile = 16, kLaneSpan = 8, kLaneL1Bytes = 16384, kLaneSpanRows = 16;

template <class Kernel, int R>
void lanes_pass(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const Q8KLanesBlock* x, int64_t nb,
                bool spans, float* out, int64_t out_stride) {
  LaneSums<R> sums[kLaneTile];
  const int64_t step = spans && R * nb * int64_t(sizeof(Q8KLanesBlock)) > kLaneL1Bytes ? kLaneSpan : nb;
  for (int64_t b0 = 0; b0 < nb; b0 += step) {
    const int64_t span = std::min(step, nb - b0);
    for (int64_t r = r0; r < r1; ++r)
      Kernel::template rows<R>(w + size_t(r) * row_bytes + size_t(b0) * Kernel::kBytes, x + b0, nb, span,
                               sums[r - r0]);
  }
  for (int64_t r = r0; r < r1; ++r) sums[r - r0].store(out + r, out_stride);
}

// Kernel::rows for `rows` weight rows against m activation rows (x + i * n / 256; out[i * out_stride
// + r]): Kernel::kPassRows activation rows per pass over a tile of kLaneTile weight rows (8 with
// AVX-512VL's 32 registers: each weight vector unpacked once for 8 rows; 4 with AVX2's 16), then the
// rows left; in spans when m is at least kLaneSpanRows.
template <class Kernel>
void lanes_rows(const uint8_t* w, size_t row_bytes, int64_t rows, const Q8KLanesBlock* x, int64_t m, int64_t n,
                float* out, int64_t out_stride) {
  const int64_t nb = n / 256;
  const bool spans = m >= kLaneSpanRows;
  for (int64_t r0 = 0; r0 < rows; r0 += kLaneTile) {
    const int64_t r1 = std::min(rows, r0 + kLaneTile);
    int64_t i = 0;
    const auto pass = [&]<int R>() {
      lanes_pass<Kernel, R>(w, row_bytes, r0, r1, x + i * nb, nb, spans, out + i * out_stride, out_stride);
    };
    constexpr int kRows = Kernel::kPassRows;
    for (; i + kRows <= m; i += kRows) pass.template operator()<kRows>();
    switch (m - i) {
      case 7: pass.template operator()<7>(); break;
      case 6: pass.template operator()<6>(); break;
      case 5: pass.template operator()<5>(); break;
      case 4: pass.template operator()<4>(); break;
      case 3: pass.template operator()<3>(); break;
      case 2: pass.template operator()<2>(); break;
      case 1: pass.template operator()<1>(); break;
      default: break;
    }
  }
}

template <bool kVnni>
RowsDotLanesFn lanes_kernels(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_K: return lanes_rows<LanesQk45<false, kVnni>>;
    case GgmlType::Q5_K: return lanes_rows<LanesQk45<true, kVnni>>;
    case GgmlType::Q6_K: return lanes_rows<LanesQ6K<kVnni>>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace wick::cpu
