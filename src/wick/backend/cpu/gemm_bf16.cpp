// f32 matrix products with bf16 operands and f32 sums on CPUs with AVX512-BF16 (vdpbf16ps: each
// f32 lane adds the products of two bf16 pairs, twice the multiply-adds of an f32 FMA per
// instruction). See gemm.h.
//
// op(A) is packed once per call into blocks of kMr rows, [k / 2][kMr] pairs (the two bf16 of
// consecutive k in one 32-bit word, the lower k in the lower half), which the micro-kernel
// broadcasts; op(B) into panels of kNr columns, [k / 2][kNr] pairs, which it loads two vectors at a
// time. The pool's threads take panels of B: each packs its panel and runs the micro-kernel down
// all row blocks of A, the kMr x kNr tile of C held in 24 registers over the whole of k.
#include "wick/backend/cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "wick/backend/cpu/thread_pool.h"
#include "wick/base/error.h"

#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
// GCC 12 takes the undefined vectors inside the AVX-512 intrinsics for uninitialised variables.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "wick/backend/cpu/transpose16.h"
#endif

namespace wick::cpu {

uint16_t round_to_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays a (quiet) NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                          // to nearest, ties to even
  return uint16_t(u >> 16);
}

float bf16_rounded(float v) {
  uint32_t u = uint32_t(round_to_bf16(v)) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

#if defined(__x86_64__)

bool bf16_dot_supported() {
  static const bool supported = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl");
  return supported;
}

namespace {

constexpr int kMr = 12;  // rows of A per block (24 accumulators, 2 vectors of B, 1 broadcast)
constexpr int kNr = 32;  // columns of B per panel (two vectors of 16 f32)

inline uint32_t pair(float lo, float hi) { return uint32_t(round_to_bf16(lo)) | uint32_t(round_to_bf16(hi)) << 16; }

// 16 pairs from 16 values of the lower k and 16 of the upper (vcvtne2ps2bf16 rounds as
// round_to_bf16 and puts `lo` in the lower half; the permutation interleaves the halves).
inline __m512i pairs16(__m512 lo, __m512 hi) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                              21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, __m512i(_mm512_cvtne2ps_pbh(hi, lo)));
}

// Rows r0 .. r0 + width of op(X), an operand stored [rows, k] (trans false) or [k, rows] (trans
// true), as pairs [kp][width] (rows past `rows` and the k past `k` are zeros). With trans, a
// pair's two rows of X are contiguous in r: 16 at a time by vector.
void pack(const float* x, int64_t ld, bool trans, int64_t r0, int64_t rows, int64_t k, int width, uint32_t* out) {
  const int64_t kp2 = (k + 1) / 2, valid = std::min<int64_t>(width, rows - r0);
  if (trans) {
    for (int64_t p = 0; p < kp2; ++p) {
      const float* lo = x + 2 * p * ld + r0;
      const float* hi = 2 * p + 1 < k ? lo + ld : nullptr;
      uint32_t* o = out + p * width;
      int64_t c = 0;
      for (; c + 16 <= valid; c += 16)
        _mm512_storeu_si512(o + c, pairs16(_mm512_loadu_ps(lo + c), hi ? _mm512_loadu_ps(hi + c) : _mm512_setzero_ps()));
      for (; c < valid; ++c) o[c] = pair(lo[c], hi ? hi[c] : 0.f);
      for (; c < width; ++c) o[c] = 0;
    }
    return;
  }
  // Rows of X hold k contiguously. 16 rows at a time: 16 pairs of each by vector, the 16 x 16
  // block transposed into 16 runs of out. Other rows (and the k past the last 32) one at a time.
  alignas(64) uint32_t row[16];
  int c0 = 0;
  for (; c0 + 16 <= valid; c0 += 16) {
    int64_t p = 0;
    for (; 2 * p + 32 <= k; p += 16) {
      __m512i v[16];
      for (int q = 0; q < 16; ++q) {
        const float* xr = x + (r0 + c0 + q) * ld + 2 * p;
        v[q] = __m512i(_mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + 16), _mm512_loadu_ps(xr)));
      }
      transpose16(v);
      for (int q = 0; q < 16; ++q) _mm512_storeu_si512(out + (p + q) * width + c0, v[q]);
    }
    for (int q = 0; q < 16; ++q) {
      const float* xr = x + (r0 + c0 + q) * ld;
      for (int64_t pp = p; pp < kp2; ++pp) out[pp * width + c0 + q] = pair(xr[2 * pp], 2 * pp + 1 < k ? xr[2 * pp + 1] : 0.f);
    }
  }
  for (int c = c0; c < width; ++c) {
    if (c >= valid) {
      for (int64_t p = 0; p < kp2; ++p) out[p * width + c] = 0;
      continue;
    }
    const float* xr = x + (r0 + c) * ld;
    int64_t p = 0;
    for (; 2 * p + 32 <= k; p += 16) {
      // 32 consecutive values as 32 bf16 in order: the lower half of the result comes from the second operand.
      _mm512_store_si512(row, __m512i(_mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + 2 * p + 16), _mm512_loadu_ps(xr + 2 * p))));
      for (int q = 0; q < 16; ++q) out[(p + q) * width + c] = row[q];
    }
    for (; p < kp2; ++p) out[p * width + c] = pair(xr[2 * p], 2 * p + 1 < k ? xr[2 * p + 1] : 0.f);
  }
}

// C[0..mr, 0..nr] = the kMr x kNr tile of pairs a ([kp2][kMr]) times pairs b ([kp2][kNr]).
void micro_kernel(const uint32_t* a, const uint32_t* b, int64_t kp2, float* c, int64_t ldc, int mr, int nr) {
  __m512 acc[kMr][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp2; ++p) {
    const __m512bh b0 = __m512bh(_mm512_loadu_si512(b + p * kNr));
    const __m512bh b1 = __m512bh(_mm512_loadu_si512(b + p * kNr + 16));
    const uint32_t* ap = a + p * kMr;
#pragma GCC unroll 12
    for (int r = 0; r < kMr; ++r) {
      const __m512bh av = __m512bh(_mm512_set1_epi32(int(ap[r])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xffff) : __mmask16((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? __mmask16(0xffff) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
  }
}

// The product for rows of op(A) whose packed pairs fit in L2 (gemm_bf16 splits m so).
void gemm_rows(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc) {
  const int64_t kp2 = (k + 1) / 2, row_blocks = (m + kMr - 1) / kMr, panels = (n + kNr - 1) / kNr;
  // op(A) as A is stored [m, k] when not transposed; pack reads it as rows of k (trans false).
  std::vector<uint32_t> ap(size_t(row_blocks * kp2 * kMr));
  parallel_for(row_blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t rb = b0; rb < b1; ++rb) pack(a, lda, ta, rb * kMr, m, k, kMr, ap.data() + rb * kp2 * kMr);
  });
  // op(B)'s columns are B's rows when transposed: pack them as rows of k (trans false), else as
  // columns of the stored [k, n] (trans true).
  parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    thread_local std::vector<uint32_t> bp;
    bp.resize(size_t(kp2 * kNr));
    for (int64_t pn = p0; pn < p1; ++pn) {
      const int64_t j0 = pn * kNr;
      const int nr = int(std::min<int64_t>(kNr, n - j0));
      pack(b, ldb, !tb, j0, n, k, kNr, bp.data());
      for (int64_t rb = 0; rb < row_blocks; ++rb) {
        const int64_t i0 = rb * kMr;
        micro_kernel(ap.data() + rb * kp2 * kMr, bp.data(), kp2, c + i0 * ldc + j0, ldc,
                     int(std::min<int64_t>(kMr, m - i0)), nr);
      }
    }
  });
}

// Packed rows of op(A) per pass: about 384 KB, so they stay in a core's L2 while every panel of B
// runs down them (each pass packs B's panels again).
constexpr int64_t kRowsBytes = 384 << 10;

}  // namespace

void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.f);
    return;
  }
  const int64_t pass = std::max<int64_t>(1, kRowsBytes / (((k + 1) / 2) * 4 * kMr)) * kMr;
  for (int64_t i0 = 0; i0 < m; i0 += pass)
    gemm_rows(ta, tb, std::min(pass, m - i0), n, k, ta ? a + i0 : a + i0 * lda, lda, b, ldb, c + i0 * ldc, ldc);
}

#else

bool bf16_dot_supported() { return false; }

void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t) {
  fail("gemm_bf16: this build has no AVX512-BF16 kernel");
}

#endif

}  // namespace wick::cpu
