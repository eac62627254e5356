// Execution settings, in one place: how ops run (eager or lazy), whether they record the graph that
// gradients need, whether eval() fuses elementwise chains, where new tensors go when no device is
// named, and which generator random ops draw from when given none.
//
// Each thread has its own current settings and starts from the defaults below (a new thread
// inherits nothing from the one that started it). They change only through the scopes at the end
// of this file, each of which sets one field and restores the previous value when it ends, so a
// library call never leaves a setting changed behind it.
#pragma once

#include <type_traits>
#include <utility>

#include "wick/core/device.h"

namespace wick {

class Generator;

enum class ExecMode { Eager, Lazy };

struct ExecutionSettings {
  // Eager: each op runs as it is created (on CUDA: is queued on the device's stream). Lazy: ops
  // record a graph that eval() materialises (graph.h).
  ExecMode exec_mode = ExecMode::Eager;
  // Whether ops on traced tensors keep the graph that gradients need (autograd.h).
  bool grad_enabled = true;
  // Whether eval() fuses chains of elementwise ops into one pass (fusion.h); tests turn it off to
  // compare.
  bool fusion_enabled = true;
  // The device of new tensors when none is named.
  Device default_device = Device::cpu();
  // What random ops given no key or generator draw from; null means default_generator().
  Generator* generator = nullptr;
};

// This thread's current settings.
const ExecutionSettings& execution_settings();

ExecMode exec_mode();
bool grad_enabled();
bool fusion_enabled();
Device default_device();
// The generator that random ops given none draw from: the one a GeneratorScope installed on this
// thread, else the process's default generator (random.h).
Generator& current_generator();

namespace detail {
// Only the scopes below write the settings.
ExecutionSettings& mutable_execution_settings();
}  // namespace detail

// Sets one field of this thread's settings while alive.
template <auto Field>
class SettingScope {
 public:
  using Value = std::remove_cvref_t<decltype(std::declval<ExecutionSettings&>().*Field)>;
  explicit SettingScope(Value value) : saved_(detail::mutable_execution_settings().*Field) {
    detail::mutable_execution_settings().*Field = std::move(value);
  }
  ~SettingScope() { detail::mutable_execution_settings().*Field = saved_; }
  SettingScope(const SettingScope&) = delete;
  SettingScope& operator=(const SettingScope&) = delete;

 private:
  Value saved_;
};

// ExecModeScope lazy(ExecMode::Lazy);
using ExecModeScope = SettingScope<&ExecutionSettings::exec_mode>;
// GradModeScope grad(true): graphs are recorded again inside a NoGradGuard (value_and_grad does this).
using GradModeScope = SettingScope<&ExecutionSettings::grad_enabled>;
// FusionScope unfused(false);
using FusionScope = SettingScope<&ExecutionSettings::fusion_enabled>;
// DeviceScope on_gpu(Device::cuda(0)): new tensors go to the GPU unless told otherwise.
using DeviceScope = SettingScope<&ExecutionSettings::default_device>;

// While alive, no graph is kept for gradients on this thread (inference).
class NoGradGuard : public GradModeScope {
 public:
  NoGradGuard() : GradModeScope(false) {}
};

// While alive, random ops given no key or generator draw from `generator` (which must outlive the
// scope) instead of the process's default generator.
class GeneratorScope : public SettingScope<&ExecutionSettings::generator> {
 public:
  explicit GeneratorScope(Generator& generator) : SettingScope(&generator) {}
};

}  // namespace wick
