// Counter-based random numbers shared by the CPU and CUDA backends: the value for (seed, counter)
// is the same on every device and independent of how work is split.
#pragma once

#include <cstdint>

#include "wick/core/elementwise_fns.h"

namespace wick::rng {

WICK_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in f32).
WICK_HD float uniform(uint64_t seed, uint64_t counter) {
  uint64_t bits = mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL));
  return float(bits >> 40) * (1.0f / 16777216.0f);
}

// Standard normal for element `i` of a draw starting at `counter` (Box-Muller over the pair of
// uniforms at counter + 2*(i/2) and +1; even elements take the cosine, odd the sine).
WICK_HD float normal(uint64_t seed, uint64_t counter, uint64_t i) {
  uint64_t pair = counter + (i & ~uint64_t(1));
  float u1 = 1.0f - uniform(seed, pair);  // in (0, 1]
  float u2 = uniform(seed, pair + 1);
  float r = sqrtf(-2.0f * logf(u1));
  float angle = 6.283185307179586f * u2;
  return (i & 1) ? r * sinf(angle) : r * cosf(angle);
}

}  // namespace wick::rng
