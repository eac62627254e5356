// The caching allocator of device memory. Blocks are rounded to size classes (512 B below 1 MiB,
// 2 MiB above) and kept in per-device free lists when released; since all work of a device runs
// in order on one stream, a released block may be handed out again at once. cudaMalloc is called
// only when no cached block fits; on failure the cache is emptied and the call retried once.
// While a CUDA graph is being captured, the device allocates from a private pool owned by the
// graph: blocks the captured work uses stay reserved for its replays, and go back to the shared
// free list only when the graph is destroyed.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include "wick/backend/cuda/runtime.h"
#include "wick/core/backend_hooks.h"

namespace wick::cuda {

namespace {

constexpr size_t kSmall = size_t(1) << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;

size_t size_class(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  size_t r = nbytes <= kSmall ? kSmallRound : kLargeRound;
  return (nbytes + r - 1) / r * r;
}

}  // namespace

struct PrivatePool {
  std::multimap<size_t, void*> free_blocks;  // size -> block
  bool closed = false;                       // its graph is gone: releases go to the shared list
};

namespace {

struct LiveBlock {
  size_t size;
  std::shared_ptr<PrivatePool> owner;  // null for the shared free list
};

struct DevicePool {
  std::multimap<size_t, void*> free_blocks;          // size -> block
  std::unordered_map<void*, LiveBlock> live_blocks;  // block -> size and owner
  std::shared_ptr<PrivatePool> capturing;            // set while a graph is captured on the device
  size_t active = 0, reserved = 0, peak = 0;
};

struct Allocator {
  std::mutex mutex;
  std::unordered_map<int, DevicePool> pools;

  // Frees every cached block of the pool (lock held).
  void release_cached(int device, DevicePool& pool) {
    if (pool.free_blocks.empty()) return;
    // Blocks may still be used by queued work: cudaFree waits for the device.
    stream(device);
    for (auto& [size, ptr] : pool.free_blocks) {
      WICK_CUDA_CHECK(cudaFree(ptr));
      pool.reserved -= size;
    }
    pool.free_blocks.clear();
  }
};

// Never destroyed: tensors released during static destruction still find it.
Allocator& allocator() {
  static Allocator* a = new Allocator();
  return *a;
}

}  // namespace

void* allocate(size_t nbytes, int device) {
  size_t size = size_class(nbytes);
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& pool = a.pools[device];
  std::multimap<size_t, void*>& free_blocks = pool.capturing ? pool.capturing->free_blocks : pool.free_blocks;
  void* ptr = nullptr;
  // Best fit among cached blocks, at most twice the request; a large request may also take a block
  // one class above it. (A block handed out counts whole as in use.)
  auto it = free_blocks.lower_bound(size);
  size_t fits = size <= kSmall ? 2 * size : std::max(2 * size, size + kLargeRound);
  if (it != free_blocks.end() && it->first <= fits) {
    ptr = it->second;
    size = it->first;
    free_blocks.erase(it);
  } else {
    stream(device);  // makes the device current
    cudaError_t e = cudaMalloc(&ptr, size);
    if (e == cudaErrorMemoryAllocation && !pool.capturing) {  // (freeing would synchronise a capture)
      cudaGetLastError();
      a.release_cached(device, pool);
      e = cudaMalloc(&ptr, size);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      WICK_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      throw OutOfMemory(str_cat("cuda:", device, ": out of memory allocating ", nbytes, " bytes (", free_bytes,
                                " bytes free of ", total_bytes, "; ", pool.active, " bytes in use by tensors)"));
    }
    WICK_CUDA_CHECK(e);
    pool.reserved += size;
  }
  pool.live_blocks[ptr] = LiveBlock{size, pool.capturing};
  pool.active += size;
  pool.peak = std::max(pool.peak, pool.active);
  return ptr;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& pool = a.pools[device];
  auto it = pool.live_blocks.find(ptr);
  if (it == pool.live_blocks.end()) return;  // not ours; never happens for Storage made by allocate()
  size_t size = it->second.size;
  std::shared_ptr<PrivatePool> owner = std::move(it->second.owner);
  pool.live_blocks.erase(it);
  pool.active -= size;
  if (owner && !owner->closed) owner->free_blocks.emplace(size, ptr);
  else pool.free_blocks.emplace(size, ptr);
}

void allocator_capture_begin(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& pool = a.pools[device];
  WICK_CHECK(!pool.capturing, "cuda:", device, ": a graph is already being captured on this device");
  pool.capturing = std::make_shared<PrivatePool>();
}

std::shared_ptr<PrivatePool> allocator_capture_end(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return std::move(a.pools[device].capturing);
}

void allocator_close_pool(int device, PrivatePool& owned) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& pool = a.pools[device];
  owned.closed = true;
  pool.free_blocks.merge(owned.free_blocks);
}

MemoryStats memory_stats(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& pool = a.pools[device];
  return MemoryStats{pool.active, pool.reserved, pool.peak};
}

void reset_peak_memory(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& pool = a.pools[device];
  pool.peak = pool.active;
}

size_t free_memory(int device) {
  stream(device);  // makes the device current
  size_t free_bytes = 0, total_bytes = 0;
  WICK_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

void empty_cache(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.release_cached(device, a.pools[device]);
}

}  // namespace wick::cuda
