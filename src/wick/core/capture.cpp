// CapturedGraph: the CPU re-runs the function; CUDA records it through the backend's graph hooks.
#include "wick/core/capture.h"

#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

namespace wick {

struct CapturedGraph::State {
  Device device;
  std::function<std::vector<Tensor>()> fn;  // kept for the CPU's replays
  std::shared_ptr<cuda::Graph> graph;       // CUDA only
  std::vector<Tensor> outputs;
};

CapturedGraph CapturedGraph::capture(Device device, std::function<std::vector<Tensor>()> fn) {
  WICK_CHECK(fn != nullptr, "CapturedGraph::capture: no function");
  auto state = std::make_shared<State>();
  state->device = device;
  ExecModeScope eager(ExecMode::Eager);
  if (device.is_cpu()) {
    state->outputs = fn();
    eval(state->outputs);
    state->fn = std::move(fn);
  } else {
    cuda::capture_begin(device.index);
    try {
      state->outputs = fn();
      eval(state->outputs);
    } catch (...) {
      cuda::capture_abort(device.index);
      throw;
    }
    state->graph = cuda::capture_end(device.index);
    for (const Tensor& t : state->outputs)
      WICK_CHECK(t.device() == device, "CapturedGraph::capture: an output is on ", t.device().str(), ", not ",
                 device.str());
    // The capture recorded the work without running it.
    cuda::graph_launch(*state->graph, device.index);
  }
  CapturedGraph g;
  g.state_ = std::move(state);
  return g;
}

void CapturedGraph::replay() {
  WICK_CHECK(state_ != nullptr, "CapturedGraph::replay: nothing was captured");
  if (state_->device.is_cpu()) {
    ExecModeScope eager(ExecMode::Eager);
    state_->outputs = state_->fn();
    eval(state_->outputs);
  } else {
    cuda::graph_launch(*state_->graph, state_->device.index);
  }
}

const std::vector<Tensor>& CapturedGraph::outputs() const {
  WICK_CHECK(state_ != nullptr, "CapturedGraph::outputs: nothing was captured");
  return state_->outputs;
}

void copy_into(const Tensor& dst, const Tensor& src) {
  WICK_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), "copy_into: destination ", dst.str(),
             " and source ", src.str(), " differ in shape or dtype");
  WICK_CHECK(dst.is_evaluated() && dst.is_contiguous(), "copy_into: the destination must be an evaluated contiguous tensor");
  Tensor s = contiguous(src).eval();
  copy_bytes(dst.data_ptr(), dst.device(), s.data_ptr(), s.device(), size_t(dst.numel()) * dst.itemsize());
}

void copy_into(const Tensor& dst, const void* host_data, size_t nbytes) {
  WICK_CHECK(dst.is_evaluated() && dst.is_contiguous(), "copy_into: the destination must be an evaluated contiguous tensor");
  WICK_CHECK(nbytes <= size_t(dst.numel()) * dst.itemsize(), "copy_into: ", nbytes, " bytes do not fit in ", dst.str());
  copy_bytes(dst.data_ptr(), dst.device(), host_data, Device::cpu(), nbytes);
}

}  // namespace wick
