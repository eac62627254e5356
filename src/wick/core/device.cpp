// Device names, the best device and the per-device stream locks.
#include "wick/core/device.h"

#include "wick/base/error.h"
#include "wick/core/backend_hooks.h"

namespace wick {

Device Device::parse(const std::string& name) {
  if (name == "cpu") return cpu();
  if (name == "cuda") return cuda(0);
  if (name.rfind("cuda:", 0) == 0) {
    std::string idx = name.substr(5);
    if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos && idx.size() < 4)
      return cuda(std::stoi(idx));
  }
  fail("unknown device '", name, "' (expected cpu, cuda or cuda:N)");
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device best_device() { return cuda::available() ? Device::cuda(0) : Device::cpu(); }

std::unique_lock<std::recursive_mutex> lock_device(Device device) {
  static std::recursive_mutex mutexes[16];
  if (!device.is_cuda()) return {};
  WICK_CHECK(device.index >= 0 && device.index < 16, "lock_device: no CUDA device ", device.index);
  return std::unique_lock<std::recursive_mutex>(mutexes[device.index]);
}

}  // namespace wick
