// Allocation and copies, dispatched to the CPU or the CUDA backend by device.
#include "wick/core/storage.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
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

// Blocks above 32 MiB (glibc's largest mmap threshold) glibc maps afresh at every allocation and
// unmaps when freed, so each op making one faults all its pages in again (the MLP output of a
// 512-token prompt chunk of a 1.5B model is 37 MB: 5% of the prompt's time here). Freed ones are
// kept for the next allocation of at most their size and no less than four fifths of it, up to
// 256 MiB in all; a block that would pass that goes back at once.
constexpr size_t kLargeBlock = size_t(32) << 20, kKeptBytes = size_t(256) << 20;

struct KeptBlocks {
  std::mutex mutex;
  std::multimap<size_t, void*> blocks;  // capacity -> block
  size_t bytes = 0;
};

KeptBlocks& kept_blocks() {
  static auto* kept = new KeptBlocks;  // never destroyed: storages freed after static destruction use it
  return *kept;
}

void* take_kept(size_t rounded, size_t& capacity) {
  KeptBlocks& k = kept_blocks();
  std::lock_guard<std::mutex> lock(k.mutex);
  auto it = k.blocks.lower_bound(rounded);
  if (it == k.blocks.end() || it->first - rounded > it->first / 5) return nullptr;
  capacity = it->first;
  void* p = it->second;
  k.bytes -= it->first;
  k.blocks.erase(it);
  return p;
}

void keep_or_free(void* p, size_t capacity) {
  KeptBlocks& k = kept_blocks();
  {
    std::lock_guard<std::mutex> lock(k.mutex);
    if (k.bytes + capacity <= kKeptBytes) {
      k.blocks.emplace(capacity, p);
      k.bytes += capacity;
      return;
    }
  }
  std::free(p);
}

}  // namespace

void release_kept_host_blocks() {
  KeptBlocks& k = kept_blocks();
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(k.mutex);
    blocks.swap(k.blocks);
    k.bytes = 0;
  }
  for (auto& [capacity, p] : blocks) std::free(p);
}

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  if (device.is_cuda()) {
    void* p = cuda::allocate(nbytes, device.index);
    int index = device.index;
    return std::make_shared<Storage>(p, nbytes, device, [index](void* q) { cuda::release(q, index); });
  }
  tune_host_heap();
  size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  if (rounded > kLargeBlock) {
    size_t capacity = rounded;
    void* p = take_kept(rounded, capacity);
    if (!p) p = std::aligned_alloc(64, rounded);
    if (!p) {  // the kept blocks first
      release_kept_host_blocks();
      p = std::aligned_alloc(64, rounded);
    }
    if (!p) throw OutOfMemory(str_cat("out of host memory allocating ", nbytes, " bytes"));
    return std::make_shared<Storage>(p, nbytes, device, [capacity](void* q) { keep_or_free(q, capacity); });
  }
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
