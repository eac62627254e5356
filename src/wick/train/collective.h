// Data-parallel training: the ranks of a group each train on their share of every batch and sum
// their gradients, losses and counts through a Collective, so every rank applies the same update.
//
// ThreadGroup makes the ranks of one process (one thread per rank, any device): a sum goes through
// the host in float64, adding the ranks in rank order, so it is exact to the last bit between runs.
// A rank that leaves the group (an exception, an early return) or does not reach a sum within the
// group's timeout stops every other rank with an error naming it, never a hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wick/core/tensor.h"

namespace wick::train {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Replaces each tensor by its sum over the ranks (same dtype and device). Every rank passes the
  // same number of tensors with the same shapes, in the same order.
  virtual void all_reduce_sum(std::vector<Tensor>& tensors) = 0;
  // Replaces each value by its sum over the ranks.
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  // Tells the other ranks that this one stops (they fail at their next sum, naming `why`).
  virtual void abandon(const std::string& why) = 0;
};

// The ranks of one process: make(n) returns n members, one per worker thread.
class ThreadGroup {
 public:
  static std::vector<std::unique_ptr<Collective>> make(int size,
                                                       std::chrono::milliseconds timeout = std::chrono::minutes(5));
};

// Rows of a global batch that `rank` of `size` trains on: [rank * per_rank, (rank + 1) * per_rank).
// The global batch is drawn identically on every rank, so `size` ranks with batch B see exactly the
// rows one rank sees with batch size * B.
struct Shard {
  int64_t begin, end;
};
Shard shard_of(int64_t global_rows, int rank, int size);

}  // namespace wick::train
