// Allocation and copies, dispatched to the CPU or the CUDA backend by device.
#include "wick/core/storage.h"

#include <cstdlib>
#include <cstring>

#include "wick/base/error.h"
#include "wick/core/backend_hooks.h"

namespace wick {

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  if (device.is_cuda()) {
    void* p = cuda::allocate(nbytes, device.index);
    int index = device.index;
    return std::make_shared<Storage>(p, nbytes, device, [index](void* q) { cuda::release(q, index); });
  }
  size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw OutOfMemory(str_cat("out of host memory allocating ", nbytes, " bytes"));
  return std::make_shared<Storage>(p, nbytes, device, [](void* q) { std::free(q); });
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  cuda::copy(dst, dst_device, src, src_device, nbytes);
}

void synchronize(Device device) {
  if (device.is_cuda()) cuda::synchronize(device.index);
}

}  // namespace wick
