// Evaluation of the graph: topological order, running nodes on their backend, releasing
// intermediates as soon as their last consumer has run.
#include "wick/core/graph.h"

#include <unordered_set>

#include "wick/core/backend_hooks.h"
#include "wick/core/fusion.h"
#include "wick/core/primitive.h"

namespace wick {

namespace {
// Forgets how a node was computed once nothing needs that for a gradient: each output that is not
// traced lets go of the node, whose inputs are released with the last.
void detach(const std::vector<Tensor>& outputs) {
  for (const Tensor& out : outputs)
    if (out.defined() && !out.tracks_grad()) out.impl().node.reset();
}
}  // namespace

// The defaults of primitive.h: a node of one output runs the single-output evaluation.
void Primitive::eval_cpu(const std::vector<Tensor>&, const Tensor&) {
  fail(name(), " has ", num_outputs(), " outputs: it defines eval_outputs_cpu");
}
void Primitive::eval_cuda(const std::vector<Tensor>&, const Tensor&) {
  fail(name(), " has ", num_outputs(), " outputs: it defines eval_outputs_cuda");
}
void Primitive::eval_outputs_cpu(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) {
  WICK_CHECK(outputs.size() == 1, name(), ": eval_outputs_cpu of ", outputs.size(), " outputs is not defined");
  eval_cpu(inputs, outputs[0]);
}
void Primitive::eval_outputs_cuda(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) {
  WICK_CHECK(outputs.size() == 1, name(), ": eval_outputs_cuda of ", outputs.size(), " outputs is not defined");
  eval_cuda(inputs, outputs[0]);
}

namespace {
void run_outputs(const Tensor& node, const std::vector<Tensor>& outputs) {
  const Node& n = *node.impl().node;
  Primitive& primitive = *n.primitive;
  Device device = node.device();
  if (device.is_cpu()) {
    primitive.eval_outputs_cpu(n.inputs, outputs);
  } else if (cuda::profiling()) {
    void* token = nullptr;
    cuda::profile_begin(device.index, &token);
    primitive.eval_outputs_cuda(n.inputs, outputs);
    std::string shape = shape_str(node.shape()) + " " + dtype_name(node.dtype());
    cuda::profile_end(device.index, token, primitive.name(), shape);
  } else {
    primitive.eval_outputs_cuda(n.inputs, outputs);
  }
}
}  // namespace

void run_node(const Tensor& node) {
  // A node of several outputs fills them all (temporaries standing for those nobody holds).
  run_outputs(node, node.node_outputs());
}

void eval(const std::vector<Tensor>& outputs) {
  // Iterative depth-first search: a node is appended after all its unevaluated inputs. Siblings
  // are one node: it is visited (and appended) once, through whichever output is met first.
  std::vector<Tensor> order;
  std::unordered_set<const Node*> seen;
  std::vector<std::pair<Tensor, size_t>> stack;
  for (const Tensor& out : outputs) {
    if (!out.defined() || out.is_evaluated()) continue;
    WICK_CHECK(out.impl().node != nullptr, "eval: tensor ", out.str(), " has neither data nor a primitive");
    if (!seen.insert(out.impl().node.get()).second) continue;
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const auto& inputs = node.impl().node->inputs;
      if (next < inputs.size()) {
        const Tensor& in = inputs[next++];
        if (!in.is_evaluated()) {
          WICK_CHECK(in.impl().node != nullptr, "eval: tensor ", in.str(), " has neither data nor a primitive");
          if (seen.insert(in.impl().node.get()).second) stack.emplace_back(in, 0);
        }
        continue;
      }
      order.push_back(node);
      stack.pop_back();
    }
  }
  if (order.size() > 1 && fusion_enabled()) fuse_elementwise(order, outputs);
  for (size_t i = 0; i < order.size(); ++i) {
    Tensor node = std::move(order[i]);  // the order list must not keep intermediates alive
    if (!node.defined() || node.is_evaluated()) continue;  // fused away, or done
    std::vector<Tensor> outs = node.node_outputs();
    run_outputs(node, outs);
    detach(outs);
  }
}

}  // namespace wick
