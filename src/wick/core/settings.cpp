// This thread's execution settings and the process's default generator.
#include "wick/core/settings.h"

#include "wick/core/random.h"

namespace wick {

namespace {
thread_local ExecutionSettings t_settings;
}  // namespace

ExecutionSettings& detail::mutable_execution_settings() { return t_settings; }
const ExecutionSettings& execution_settings() { return t_settings; }

ExecMode exec_mode() { return t_settings.exec_mode; }
bool grad_enabled() { return t_settings.grad_enabled; }
bool fusion_enabled() { return t_settings.fusion_enabled; }
Device default_device() { return t_settings.default_device; }

Generator& default_generator() {
  static Generator generator;
  return generator;
}

Generator& current_generator() { return t_settings.generator ? *t_settings.generator : default_generator(); }

}  // namespace wick
