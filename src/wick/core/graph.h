// Execution: eager (each op runs as it is created; on CUDA it is queued on the device's stream,
// never waited for) or lazy (ops record a graph that eval() materialises, freeing intermediates
// after their last consumer and fusing chains of elementwise ops into one pass).
#pragma once

#include <vector>

#include "wick/core/tensor.h"

namespace wick {

enum class ExecMode { Eager, Lazy };

ExecMode exec_mode();
void set_exec_mode(ExecMode mode);

// Sets the mode for a scope (per thread).
class ExecModeScope {
 public:
  explicit ExecModeScope(ExecMode mode) : saved_(exec_mode()) { set_exec_mode(mode); }
  ~ExecModeScope() { set_exec_mode(saved_); }
  ExecModeScope(const ExecModeScope&) = delete;
  ExecModeScope& operator=(const ExecModeScope&) = delete;

 private:
  ExecMode saved_;
};

// Materialises the tensors and everything they depend on.
void eval(const std::vector<Tensor>& tensors);

// Whether eval() fuses elementwise chains (on by default; tests turn it off to compare).
bool fusion_enabled();
void set_fusion_enabled(bool enabled);

// Runs one node's primitive on the backend of its device (inputs must be evaluated).
void run_node(const Tensor& node);

}  // namespace wick
