// Where a tensor lives: the CPU or one CUDA device.
#pragma once

#include <mutex>
#include <string>

namespace wick {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  // "cpu", "cuda", "cuda:1"
  static Device parse(const std::string& name);
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;
  bool operator==(const Device&) const = default;
};

// The device new tensors go to when none is named is an execution setting: default_device() and
// DeviceScope in settings.h.
// cuda:0 when the CUDA backend is built and a GPU is present, else cpu.
Device best_device();

// Exclusive use of a CUDA device's stream, for work that must not interleave with another
// thread's: a CUDA graph capture takes in whatever the stream receives meanwhile, and a read-back
// from another thread invalidates it. The engines that share a device (decoders, embedders) hold
// it for each step. Recursive; a CPU device gives an empty lock.
std::unique_lock<std::recursive_mutex> lock_device(Device device);

}  // namespace wick
