// Evaluation of the graph: topological order, running nodes on their backend, releasing
// intermediates as soon as their last consumer has run.
#include "wick/core/graph.h"

#include <unordered_set>

#include "wick/core/backend_hooks.h"
#include "wick/core/fusion.h"
#include "wick/core/primitive.h"

namespace wick {

namespace {
// Forgets how a node was computed once nothing needs that for a gradient.
void detach(const Tensor& node) {
  if (node.tracks_grad()) return;
  node.impl().primitive.reset();
  node.impl().inputs.clear();
}
}  // namespace

void run_node(const Tensor& node) {
  TensorImpl& impl = node.impl();
  if (impl.device.is_cpu()) {
    impl.primitive->eval_cpu(impl.inputs, node);
  } else if (cuda::profiling()) {
    void* token = nullptr;
    cuda::profile_begin(impl.device.index, &token);
    impl.primitive->eval_cuda(impl.inputs, node);
    std::string shape = shape_str(node.shape()) + " " + dtype_name(node.dtype());
    cuda::profile_end(impl.device.index, token, impl.primitive->name(), shape);
  } else {
    impl.primitive->eval_cuda(impl.inputs, node);
  }
}

void eval(const std::vector<Tensor>& outputs) {
  // Iterative depth-first search: a node is appended after all its unevaluated inputs.
  std::vector<Tensor> order;
  std::unordered_set<const TensorImpl*> seen;
  std::vector<std::pair<Tensor, size_t>> stack;
  for (const Tensor& out : outputs) {
    if (!out.defined() || out.is_evaluated() || seen.count(out.impl_ptr().get())) continue;
    seen.insert(out.impl_ptr().get());
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const auto& inputs = node.impl().inputs;
      if (next < inputs.size()) {
        const Tensor& in = inputs[next++];
        if (!in.is_evaluated() && seen.insert(in.impl_ptr().get()).second) stack.emplace_back(in, 0);
        continue;
      }
      WICK_CHECK(node.impl().primitive != nullptr, "eval: tensor ", node.str(), " has neither data nor a primitive");
      order.push_back(node);
      stack.pop_back();
    }
  }
  if (order.size() > 1 && fusion_enabled()) fuse_elementwise(order, outputs);
  for (size_t i = 0; i < order.size(); ++i) {
    Tensor node = std::move(order[i]);  // the order list must not keep intermediates alive
    if (!node.defined() || node.is_evaluated()) continue;  // fused away, or done
    run_node(node);
    detach(node);
  }
}

}  // namespace wick
