// What the core needs from the CUDA backend: memory, copies and synchronisation. Defined in
// backend/cuda; without CUDA, backend/no_cuda defines them to report that CUDA is absent.
#pragma once

#include <cstddef>

#include "wick/core/device.h"

namespace wick::cuda {

bool available();  // built with CUDA and a GPU is present
int device_count();
// From the caching allocator; throws OutOfMemory naming the request and the free memory.
void* allocate(size_t nbytes, int device);
void release(void* ptr, int device);
// Queued on the device's stream; a copy to the host waits for it.
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
void synchronize(int device);

struct MemoryStats {
  size_t active = 0;    // bytes held by live tensors
  size_t reserved = 0;  // bytes held by the caching allocator (incl. cached free blocks)
  size_t peak = 0;      // the largest `active` since the last reset
};
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
// Returns cached free blocks to the driver.
void empty_cache(int device);

}  // namespace wick::cuda
