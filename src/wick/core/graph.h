// Execution: eager (each op runs as it is created; on CUDA it is queued on the device's stream,
// never waited for) or lazy (ops record a graph that eval() materialises, freeing intermediates
// after their last consumer and fusing chains of elementwise ops into one pass). The mode and the
// fusion switch are execution settings (settings.h: ExecModeScope, FusionScope).
#pragma once

#include <vector>

#include "wick/core/settings.h"
#include "wick/core/tensor.h"

namespace wick {

// Materialises the tensors and everything they depend on.
void eval(const std::vector<Tensor>& tensors);

// Runs one node's primitive on the backend of its device (inputs must be evaluated).
void run_node(const Tensor& node);

}  // namespace wick
