// Turning tensors of model files into engine tensors: zero-copy views of the memory mapping on the
// CPU when the dtype already matches, else one conversion; then moved to the model's device.
#pragma once

#include <string>

#include "wick/core/tensor.h"
#include "wick/io/safetensors.h"

namespace wick::models {

// The engine dtype of a file dtype; throws naming the tensor for types the engine lacks.
Dtype engine_dtype(io::FileDtype dtype, const std::string& tensor);

// The tensor `view` as `dtype` on `device`.
Tensor to_tensor(const io::TensorView& view, Dtype dtype, Device device);

// Loads `name` from `file`, checking its shape; errors name the tensor, the file and both shapes.
Tensor load_weight(const io::SafeTensors& file, const std::string& name, const Shape& shape, Dtype dtype, Device device);

}  // namespace wick::models
