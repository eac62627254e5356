// Strided copies on the device, shared by the copy-like kernels (astype within a dtype, concat,
// slice_update).
#pragma once

#include <cstddef>

#include "wick/core/shape.h"

namespace wick::cuda {

// Copies the elements (of `itemsize` bytes) of `shape` from src to dst, each laid out by its own
// strides (in elements). Where the last dim is dense in both and every other stride and both
// addresses are multiples of 16 bytes, each thread moves 16 bytes (indexing.cu).
void copy_strided(void* dst, const Strides& dst_strides, const void* src, const Strides& src_strides,
                  const Shape& shape, size_t itemsize, int device, const char* name);

}  // namespace wick::cuda
