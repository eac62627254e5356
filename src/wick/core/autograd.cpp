// Reverse-mode differentiation over the recorded graph.
#include "wick/core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/core/primitive.h"
#include "wick/core/shape.h"

namespace wick {

namespace {

// A node of the traced graph: its outputs (all the siblings still held, so none is freed, nor its
// address reused, while the walk may look up its cotangent), and what computes them (null for a
// traced input).
struct TracedNode {
  std::vector<Tensor> outputs;
  std::shared_ptr<Node> node;
};

// Nodes reachable from `outputs` through traced tensors, inputs before consumers.
std::vector<TracedNode> traced_topological_order(const std::vector<Tensor>& outputs) {
  std::vector<TracedNode> order;
  std::unordered_set<const void*> seen;  // a node, or a traced input (which has none)
  auto key = [](const Tensor& t) -> const void* {
    return t.impl().node ? static_cast<const void*>(t.impl().node.get()) : t.impl_ptr().get();
  };
  std::vector<std::pair<Tensor, size_t>> stack;
  static const std::vector<Tensor> no_inputs;
  for (const Tensor& out : outputs) {
    if (!out.tracks_grad() || !seen.insert(key(out)).second) continue;
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      const auto& inputs = t.impl().node ? t.impl().node->inputs : no_inputs;
      if (next < inputs.size()) {
        const Tensor& in = inputs[next++];
        if (in.tracks_grad() && seen.insert(key(in)).second) stack.emplace_back(in, 0);
        continue;
      }
      const std::shared_ptr<Node>& node = t.impl().node;
      order.push_back({node ? t.siblings() : std::vector<Tensor>{t}, node});
      stack.pop_back();
    }
  }
  return order;
}

void accumulate(std::unordered_map<const TensorImpl*, Tensor>& cotangents, const Tensor& target, Tensor g,
                const char* op) {
  WICK_CHECK(g.shape() == target.shape(), "vjp of ", op, " returned a gradient of shape ", shape_str(g.shape()),
             " for an input of shape ", shape_str(target.shape()));
  if (g.dtype() != target.dtype()) g = astype(g, target.dtype());
  auto [it, inserted] = cotangents.try_emplace(target.impl_ptr().get(), g);
  if (!inserted) it->second = add(it->second, g);
}

std::vector<Tensor> trace(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> traced;
  traced.reserve(inputs.size());
  for (const Tensor& x : inputs) {
    Tensor t = x.shallow_copy();
    t.impl().tracks_grad = true;
    traced.push_back(t);
  }
  return traced;
}

// The traced function records its graph even when called inside a NoGradGuard.
template <typename F>
auto with_grad_enabled(F&& f) {
  GradModeScope grad(true);
  return f();
}

// Walks the graph from `outputs` back to `traced`, returning one gradient per traced input.
std::vector<Tensor> backpropagate(const std::vector<Tensor>& traced, const std::vector<Tensor>& inputs,
                                  const std::vector<Tensor>& outputs, const std::vector<Tensor>& cotangents) {
  NoGradGuard no_grad;
  std::unordered_map<const TensorImpl*, Tensor> ct;
  for (size_t i = 0; i < outputs.size(); ++i) {
    WICK_CHECK(cotangents[i].shape() == outputs[i].shape(), "vjp: cotangent ", i, " has shape ",
               shape_str(cotangents[i].shape()), " but the output has shape ", shape_str(outputs[i].shape()));
    if (outputs[i].tracks_grad()) accumulate(ct, outputs[i], cotangents[i], "output");
  }
  std::vector<TracedNode> order = traced_topological_order(outputs);
  // A node is done once its vjp has run (its consumers' vjps ran before it): it then lets go of its
  // inputs and of this walk's references, so the forward's tensors are freed as the backward passes
  // them, as PyTorch frees saved tensors, instead of all living until the end.
  auto release = [](TracedNode& entry) {
    for (Tensor& out : entry.outputs) {
      if (!out.defined()) continue;
      out.impl().tracks_grad = false;
      if (out.is_evaluated()) out.impl().node.reset();
      out = Tensor();
    }
    entry.node.reset();
  };
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TracedNode& entry = *it;
    if (!entry.node) continue;  // a traced input: its gradient is read below
    // The cotangent of each output; a node none of whose outputs has one adds nothing.
    std::vector<Tensor> gs(entry.outputs.size());
    bool any = false;
    for (size_t i = 0; i < gs.size(); ++i) {
      if (!entry.outputs[i].defined()) continue;
      auto found = ct.find(entry.outputs[i].impl_ptr().get());
      if (found == ct.end()) continue;
      gs[i] = found->second;
      any = true;
      ct.erase(found);
    }
    if (!any) {
      release(entry);
      continue;
    }
    const Node& node = *entry.node;
    std::vector<int> argnums;
    for (size_t j = 0; j < node.inputs.size(); ++j)
      if (node.inputs[j].tracks_grad()) argnums.push_back(int(j));
    std::vector<Tensor> grads = node.primitive->vjp_outputs(node.inputs, gs, argnums, entry.outputs);
    WICK_CHECK(grads.size() == argnums.size(), "vjp of ", node.primitive->name(), " returned ", grads.size(),
               " gradients for ", argnums.size(), " inputs");
    for (size_t j = 0; j < argnums.size(); ++j)
      if (grads[j].defined()) accumulate(ct, node.inputs[argnums[j]], grads[j], node.primitive->name());
    gs.clear();
    release(entry);
  }
  std::vector<Tensor> result;
  for (size_t i = 0; i < traced.size(); ++i) {
    auto found = ct.find(traced[i].impl_ptr().get());
    result.push_back(found != ct.end() ? found->second : zeros_like(inputs[i]));
  }
  for (TracedNode& entry : order) release(entry);  // the traced inputs: hand back untraced tensors
  return result;
}

}  // namespace

std::pair<std::vector<Tensor>, std::vector<Tensor>> vjp(
    const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
    const std::vector<Tensor>& cotangents) {
  std::vector<Tensor> traced = trace(inputs);
  std::vector<Tensor> outputs = with_grad_enabled([&] { return fn(traced); });
  WICK_CHECK(outputs.size() == cotangents.size(), "vjp: the function returned ", outputs.size(), " outputs but ",
             cotangents.size(), " cotangents were given");
  std::vector<Tensor> grads = backpropagate(traced, inputs, outputs, cotangents);
  return {outputs, grads};
}

std::pair<Tensor, std::vector<Tensor>> value_and_grad(const ScalarFn& fn, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> traced = trace(inputs);
  Tensor y = with_grad_enabled([&] { return fn(traced); });
  WICK_CHECK(y.numel() == 1, "value_and_grad: the function must return one element, got shape ", shape_str(y.shape()));
  std::vector<Tensor> grads = backpropagate(traced, inputs, {y}, {ones_like(y)});
  return {y, grads};
}

std::vector<Tensor> grad(const ScalarFn& fn, const std::vector<Tensor>& inputs) {
  return value_and_grad(fn, inputs).second;
}

namespace {

// The node of a checkpointed segment: its output was computed without a graph; its vjp runs the
// segment again under vjp() to differentiate it.
class Checkpoint : public Primitive {
 public:
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  Checkpoint(Fn fn, Tensor value) : fn_(std::move(fn)), value_(std::move(value)) {}
  const char* name() const override { return "checkpoint"; }
  void eval_cpu(const std::vector<Tensor>&, const Tensor& out) override { take(out); }
  void eval_cuda(const std::vector<Tensor>&, const Tensor& out) override { take(out); }
  std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& g, const std::vector<int>& argnums,
                          const Tensor&) override {
    auto [outs, grads] = wick::vjp([this](const std::vector<Tensor>& xs) { return std::vector<Tensor>{fn_(xs)}; },
                                   inputs, {g});
    std::vector<Tensor> picked;
    for (int i : argnums) picked.push_back(grads[size_t(i)]);
    return picked;
  }
  bool vjp_reads_output() const override { return false; }  // it runs the segment again

 private:
  // The value computed in checkpoint() becomes the node's data (no copy).
  void take(const Tensor& out) {
    WICK_CHECK(value_.defined(), "checkpoint: the segment's value was already taken");
    out.set_data(value_.storage(), value_.strides(), value_.offset());
    value_ = Tensor();
  }
  Fn fn_;
  Tensor value_;
};

}  // namespace

Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs) {
  bool traced = false;
  for (const Tensor& x : inputs) traced = traced || x.tracks_grad();
  if (!grad_enabled() || !traced) return fn(inputs);
  WICK_CHECK(exec_mode() == ExecMode::Eager, "checkpoint: activation checkpointing needs eager execution");
  Tensor value;
  {
    NoGradGuard no_grad;
    value = fn(inputs);
  }
  return Tensor::make(value.shape(), value.dtype(), value.device(), std::make_shared<Checkpoint>(fn, value), inputs);
}

}  // namespace wick
