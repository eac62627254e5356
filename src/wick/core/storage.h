// Reference-counted memory blocks on a device, and the backend hooks that allocate and copy them.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "wick/core/device.h"

namespace wick {

class Storage {
 public:
  // `release` frees `data`; it may be empty for memory owned elsewhere (a mapping kept alive by it).
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
      : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}
  ~Storage() {
    if (release_) release_(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  std::function<void(void*)> release_;
};

// A fresh, uninitialised block. CPU memory is 64-byte aligned; CUDA memory comes from the caching
// allocator and may still be in use by queued work of the device's stream, in stream order.
// CPU blocks above 32 MiB are kept for reuse when freed (up to 256 MiB in all).
std::shared_ptr<Storage> allocate(size_t nbytes, Device device);

// Hands the CPU blocks kept for reuse back to the system (a server going idle).
void release_kept_host_blocks();

// Copies bytes between any two devices. Copies that touch the GPU are queued on its stream;
// a device-to-host copy waits for the stream so the host may read the result.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Waits for all queued work on the device (no-op for the CPU).
void synchronize(Device device);

}  // namespace wick
