// What the core needs from the CUDA backend: memory, copies and synchronisation. Defined in
// backend/cuda; without CUDA, backend/no_cuda defines them to report that CUDA is absent.
#pragma once

#include <cstddef>
#include <memory>
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
// Device memory the driver has free (cudaMemGetInfo), not counting the allocator's cached blocks.
size_t free_memory(int device);
// Returns cached free blocks to the driver.
void empty_cache(int device);

// Graph capture (core/capture.h). capture_begin starts recording the device's stream and routes
// the device's allocations to a pool owned by the graph; capture_end stops, instantiates the graph
// and returns it with that pool; capture_abort stops a failed capture and discards it.
struct Graph;
void capture_begin(int device);
std::shared_ptr<Graph> capture_end(int device);
void capture_abort(int device);
void graph_launch(const Graph& graph, int device);

// Per-op GPU time, on when WICK_PROFILE=1 is set: run_node brackets each op on a CUDA device with
// profile_begin/profile_end; profile_report prints GPU time by op and by op + output shape.
bool profiling();
void profile_begin(int device, void** token);
void profile_end(int device, void* token, const char* name, const std::string& shape);
void profile_reset();
void profile_report();

}  // namespace wick::cuda
