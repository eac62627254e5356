// Where a tensor lives: the CPU or one CUDA device.
#pragma once

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

// The device new tensors go to when none is named (CPU unless changed).
Device default_device();
void set_default_device(Device device);
// cuda:0 when the CUDA backend is built and a GPU is present, else cpu.
Device best_device();

}  // namespace wick
