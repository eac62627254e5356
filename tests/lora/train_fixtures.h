// Training data for the tiny test decoder (tests/data/models/qwen2_tied): rows of a 5-token unit
// repeated 3 times, so a LoRA adapter can learn them in a few steps.
#pragma once

#include <random>
#include <vector>

#include "wick/train/data.h"

namespace wick::test {

inline std::vector<train::Example> repeated_patterns(int n, uint64_t seed) {
  std::mt19937 rng(seed);
  std::vector<train::Example> out;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> unit;
    for (int k = 0; k < 5; ++k) unit.push_back(int32_t(rng() % 256));
    train::Example e;
    for (int r = 0; r < 3; ++r) e.ids.insert(e.ids.end(), unit.begin(), unit.end());
    e.labels = e.ids;
    e.line = i + 1;
    out.push_back(e);
  }
  return out;
}

}  // namespace wick::test
