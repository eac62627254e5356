// Capture and replay of a computation: the work a function queues on a CUDA device is recorded
// once as a CUDA graph and replayed with one launch, which removes the host's per-op cost (the
// decode step of a small model is a few hundred small kernels). On the CPU, replay simply runs the
// function again, so callers are written once for both.
//
// The contract of a captured function (the same as for any CUDA graph):
// - it runs eagerly and reads only tensors that outlive the graph (weights, caches, and "static
//   inputs": device tensors the caller overwrites in place before each replay, e.g. with copy_into);
// - it copies nothing from the host and reads nothing back (no to_vector/item inside);
// - its shapes and every host-side decision are the same on each replay.
// Memory the function allocates during capture comes from a pool owned by the graph, so it stays
// reserved for the replays; the outputs live in that pool and are overwritten by each replay.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "wick/core/tensor.h"

namespace wick {

class CapturedGraph {
 public:
  CapturedGraph() = default;
  // Runs `fn` once on `device` while recording it; outputs() hold its results.
  static CapturedGraph capture(Device device, std::function<std::vector<Tensor>()> fn);

  bool defined() const { return state_ != nullptr; }
  // Runs the recorded work again (queued on the device's stream; no synchronisation).
  void replay();
  // The results of the last run.
  const std::vector<Tensor>& outputs() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Writes src's values into dst's own buffer (same shape and dtype; dst contiguous), queued in order
// with the device's other work: how static inputs of a captured graph are updated.
void copy_into(const Tensor& dst, const Tensor& src);
// Writes `nbytes` of host data into dst's buffer (dst contiguous, nbytes <= its size).
void copy_into(const Tensor& dst, const void* host_data, size_t nbytes);

}  // namespace wick
