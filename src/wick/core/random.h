// Seeded random streams. Random ops draw counter-based numbers (random_bits.h): element i of a draw
// is a pure function of (seed, counter + i), the same on every device and however the work is
// split. A RandomKey names one draw; a Generator hands out the keys of successive draws, so two
// generators seeded alike give the same values in the same order.
#pragma once

#include <atomic>
#include <cstdint>

namespace wick {

// An explicit random stream, for draws that must be replayed (JAX-style keys): a draw from a key
// does not depend on any generator's state.
struct RandomKey {
  uint64_t seed = 0;
  uint64_t counter = 0;
};

class Generator {
 public:
  static constexpr uint64_t kDefaultSeed = 0x5eed;
  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed), counter_(0) {}
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Restarts the stream at `seed`.
  void seed(uint64_t seed) {
    seed_ = seed;
    counter_ = 0;
  }
  // The key of the next draw of `n` values; the generator moves past them (rounded up, so the
  // pairs of a normal draw's Box-Muller transform never straddle two draws). Threads may share a
  // generator: each call gets a range of its own.
  RandomKey next(uint64_t n) {
    uint64_t counter = counter_.fetch_add((n + 1) / 2 * 2 + 2);
    return {seed_.load(), counter};
  }

 private:
  std::atomic<uint64_t> seed_, counter_;
};

// The process's default generator, shared by every thread (seeded with kDefaultSeed at start;
// manual_seed reseeds it). Random ops use it unless a GeneratorScope (settings.h) installs another.
Generator& default_generator();

}  // namespace wick
