// A 16 x 16 transpose of 32-bit values held in AVX-512 registers, for the CPU kernels that need one
// (the bf16 GEMM's packing, the mixed-adapter expand). Include it where AVX-512F is enabled, by the
// compiler's -march or by a `#pragma GCC target` before the include.
#pragma once

#include <immintrin.h>

namespace wick::cpu {

// v[r] holding row r becomes v[c] holding column c.
inline void transpose16(__m512i (&v)[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {  // lane L of t[2i], t[2i + 1]: columns 4L .. 4L + 3 of rows 2i, 2i + 1, interleaved
    t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // lane L of u[4i + c]: column 4L + c of rows 4i .. 4i + 3
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {  // column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c]
    __m512i x0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), x1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
    __m512i y0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), y1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
    v[c] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    v[8 + c] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
    v[4 + c] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    v[12 + c] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
  }
}

}  // namespace wick::cpu
