// Fusion of elementwise chains in the lazy graph (used by eval()).
#pragma once

#include <vector>

#include "wick/core/tensor.h"

namespace wick {

// Rewrites nodes of `order` (a topological order of unevaluated nodes) so that chains of
// elementwise primitives whose intermediates have no other consumer and no outside handle
// become one Fused node each; removed nodes are left undefined in `order`.
void fuse_elementwise(std::vector<Tensor>& order, const std::vector<Tensor>& outputs);

}  // namespace wick
