// Elementwise fusion of the lazy graph: a chain of elementwise nodes whose intermediates are seen
// by nothing else (one consumer, no outside handle, no gradient tracing) becomes one Fused node,
// computed in one pass without writing the intermediates to memory.
#include "wick/core/fusion.h"

#include <unordered_map>
#include <unordered_set>

#include "wick/core/primitives.h"

namespace wick {

namespace {

bool fusable(const Tensor& node) {
  const TensorImpl& impl = node.impl();
  // A fused op has one output (a node of several has siblings, so it never fuses).
  return impl.node && !node.is_evaluated() && !impl.tracks_grad && is_floating(impl.dtype) &&
         int(impl.shape.size()) <= Fused::kMaxDims && impl.node->outputs.empty() &&
         impl.node->primitive->fused_op().kind != Primitive::FusedOp::None;
}

struct ProgramBuilder {
  const Shape& shape;
  Dtype dtype;
  const std::unordered_map<const TensorImpl*, int>& consumers;
  std::vector<FusedInstr> program;
  std::vector<Tensor> inputs;
  std::unordered_map<const TensorImpl*, int> reg_of;  // register of a node already emitted
  std::vector<const TensorImpl*> absorbed;

  // Whether `in` (an input of a fused node) can be computed inside the fused kernel.
  bool absorbable(const Tensor& in) const {
    if (!fusable(in) || in.shape() != shape || in.dtype() != dtype) return false;
    auto it = consumers.find(in.impl_ptr().get());
    // One consumer in the graph, and no handle beyond that consumer's and the evaluation order's
    // (node_handles, tensor.h): nobody else will read it, so it need never reach memory.
    return it != consumers.end() && it->second == 1 && node_handles(in) == 2;
  }

  // Emits the instructions computing `node`; returns its register, or -1 when the program is full.
  int emit(const Tensor& node, bool root) {
    const TensorImpl* key = node.impl_ptr().get();
    if (auto it = reg_of.find(key); it != reg_of.end()) return it->second;
    if (int(program.size()) >= Fused::kMaxInstructions) return -1;
    if (!root && !absorbable(node)) {
      if (int(inputs.size()) >= Fused::kMaxInputs) return -1;
      inputs.push_back(node);
      program.push_back({FusedInstr::Load, uint8_t(inputs.size() - 1), 0, 0});
      return reg_of[key] = int(program.size()) - 1;
    }
    Primitive::FusedOp op = node.impl().node->primitive->fused_op();
    const auto& ins = node.impl().node->inputs;
    int a = emit(ins[0], false);
    int b = ins.size() > 1 ? emit(ins[1], false) : 0;
    if (a < 0 || b < 0 || int(program.size()) >= Fused::kMaxInstructions) return -1;
    auto kind = op.kind == Primitive::FusedOp::Unary ? FusedInstr::Unary
                : op.kind == Primitive::FusedOp::Arith ? FusedInstr::Arith
                                                       : FusedInstr::SwiGLU;
    program.push_back({kind, op.id, uint8_t(a), uint8_t(b)});
    if (!root) absorbed.push_back(key);
    return reg_of[key] = int(program.size()) - 1;
  }
};

}  // namespace

void fuse_elementwise(std::vector<Tensor>& order, const std::vector<Tensor>& outputs) {
  std::unordered_map<const TensorImpl*, int> consumers;
  for (const Tensor& node : order)
    for (const Tensor& in : node.impl().node->inputs) ++consumers[in.impl_ptr().get()];
  std::unordered_set<const TensorImpl*> removed;
  // Roots are visited from the end so each chain is taken whole by its last node.
  for (int i = int(order.size()) - 1; i >= 0; --i) {
    Tensor& root = order[i];
    if (!root.defined() || removed.count(root.impl_ptr().get()) || !fusable(root)) continue;
    ProgramBuilder builder{root.shape(), root.dtype(), consumers, {}, {}, {}, {}};
    if (builder.emit(root, true) < 0 || builder.absorbed.empty()) continue;
    for (const TensorImpl* key : builder.absorbed) removed.insert(key);
    auto fused = std::make_shared<Node>();
    fused->primitive = std::make_shared<Fused>(std::move(builder.program));
    fused->inputs = std::move(builder.inputs);
    root.impl().node = std::move(fused);
  }
  if (removed.empty()) return;
  for (Tensor& node : order)
    if (node.defined() && removed.count(node.impl_ptr().get())) node = Tensor();
}

}  // namespace wick
