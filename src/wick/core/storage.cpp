// Allocation and copies, dispatched to the CPU or the CUDA backend by device.
#include "wick/core/storage.h"

#include <cstdlib>
#include <cstring>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "wick/base/error.h"
#include "wick/core/backend_hooks.h"

namespace wick {

namespace {

// Tensors of megabytes are made and dropped at every op. glibc maps each allocation above its mmap
// threshold afresh and unmaps it when it is freed, so every op faults its output's pages in again,
// and each unmap interrupts the pool's other threads (on all-MiniLM-L6-v2, 100 x 16 tokens, 2 cores:
// a fifth of the time). With blocks up to 32 MiB (glibc's largest threshold) kept in the heap, and
// up to 256 MiB of freed heap kept before trimming, the next op reuses them. `wick serve` trims the
// heap when it goes idle. Settings the user gives glibc (GLIBC_TUNABLES) are left as they are.
void tune_host_heap() {
#if defined(__GLIBC__)
  static const bool tuned = [] {
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables != nullptr && std::string(tunables).find("malloc.") != std::string::npos) return false;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return true;
  }();
  (void)tuned;
#endif
}

}  // namespace

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  if (device.is_cuda()) {
    void* p = cuda::allocate(nbytes, device.index);
    int index = device.index;
    return std::make_shared<Storage>(p, nbytes, device, [index](void* q) { cuda::release(q, index); });
  }
  tune_host_heap();
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
