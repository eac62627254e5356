// Float math for the CPU kernels' loops over contiguous values, written without calls or branches
// the compiler cannot turn into vector selects, so a loop that uses it vectorises (libm's expf is a
// call per value).
#pragma once

#include <bit>
#include <cstdint>

namespace wick::cpu {

// e^x for x in [-87, 88] (the caller clamps): 2^k times Cephes' expf polynomial on
// [-ln 2 / 2, ln 2 / 2], relative error about 2e-7.
inline float exp_f32(float x) {
  float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  float r = x - k * 0.693359375f - k * -2.12194440e-4f;
  float q = 1.9875691500e-4f;
  q = 1.3981999507e-3f + r * q;
  q = 8.3334519073e-3f + r * q;
  q = 4.1665795894e-2f + r * q;
  q = 1.6666665459e-1f + r * q;
  q = 5.0000001201e-1f + r * q;
  q = 1.0f + r + r * r * q;
  return q * std::bit_cast<float>((int32_t(k) + 127) << 23);
}

// 1 / (1 + e^-x) for any finite x: e^-x is clamped to e^-87 ... e^88, where the result is already
// 1 or below 1e-38.
inline float sigmoid_f32(float x) {
  float e = -x;
  e = e < -87.0f ? -87.0f : e;
  e = e > 88.0f ? 88.0f : e;
  return 1.0f / (1.0f + exp_f32(e));
}

// sum_j a[j] * b[j] in 16 interleaved partial sums: without reassociation allowed, one running sum
// is a chain of dependent adds the compiler cannot vectorise (a 128-value head then costs ~500
// cycles per score); independent lanes it can.
template <typename A, typename T>
A dot_product(const A* a, const T* b, int64_t n) {
  constexpr int kLanes = 16;
  A part[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += a[j + l] * A(b[j + l]);
  A dot = 0;
  for (int l = 0; l < kLanes; ++l) dot += part[l];
  for (; j < n; ++j) dot += a[j] * A(b[j]);
  return dot;
}

}  // namespace wick::cpu
