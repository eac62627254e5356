// Test adapters with non-zero B, so that every LoRA parameter matters (a new adapter's B is zero).
#pragma once

#include <vector>

#include "wick/core/ops.h"
#include "wick/lora/adapter.h"

namespace wick::testing {

// The parameters of an adapter made by lora::Adapter::init(base, config, seed) with each B drawn
// N(0, std) in `dtype` on the default device, from a generator seeded with `seed` that first
// passes over the adapter's A draws: B continues A's stream, as it did when init seeded the default
// generator, so these tests keep the adapters they were written with. A's are returned as they are.
inline std::vector<Tensor> parameters_with_random_b(const lora::Adapter& adapter, uint64_t seed, double std,
                                                    Dtype dtype = Dtype::F32) {
  Generator generator(seed);
  std::vector<Tensor> p = adapter.parameters();
  for (size_t i = 0; i < p.size(); i += 2) generator.next(uint64_t(p[i].numel()));
  for (size_t i = 1; i < p.size(); i += 2) p[i] = normal(p[i].shape(), 0, std, dtype, default_device(), generator);
  return p;
}

}  // namespace wick::testing
