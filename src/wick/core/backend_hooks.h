// What the core needs from the CUDA backend: memory, copies and synchronisation. Defined in
// backend/cuda; without CUDA, backend/no_cuda defines them to report that CUDA is absent.
#pragma once

#include <cstddef>
#include <string>

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

// Per-op GPU time, on when WICK_PROFILE=1 is set: run_node brackets each op on a CUDA device with
// profile_begin/profile_end; profile_report prints GPU time by op and by op + output shape.
bool profiling();
void profile_begin(int device, void** token);
void profile_end(int device, void* token, const char* name, const std::string& shape);
void profile_reset();
void profile_report();

}  // namespace wick::cuda
