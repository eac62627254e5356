// Turning tensors of model files into engine tensors: zero-copy views of the memory mapping on the
// CPU when the dtype already matches, else one conversion; then moved to the model's device.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wick/core/quantized.h"
#include "wick/core/tensor.h"
#include "wick/io/safetensors.h"

namespace wick::models {

// The engine dtype of a file dtype; throws naming the tensor for types the engine lacks.
Dtype engine_dtype(io::FileDtype dtype, const std::string& tensor);

// The tensor `view` as `dtype` on `device`.
Tensor to_tensor(const io::TensorView& view, Dtype dtype, Device device);

// A CPU tensor over bytes of a file's memory mapping, without a copy: its storage (a MappedRegion
// of its own bytes) holds `owner` (which keeps the mapping alive) and frees nothing. Model weights are never written, so the
// read-only mapping is safe to view.
Tensor mapped_tensor(const uint8_t* data, size_t nbytes, std::shared_ptr<const void> owner, const Shape& shape,
                     Dtype dtype);

// One storage over a file's mapped bytes [begin, begin + nbytes): the tensors made from it are
// views of the same storage, so tensors lying back to back in the file stack into one weight
// without a copy (stacked_view), as a GGUF's ffn_gate and ffn_up do.
class MappedRegion {
 public:
  MappedRegion(const uint8_t* begin, size_t nbytes, std::shared_ptr<const void> owner);
  // Memory of its own standing for the file's bytes [begin, begin + nbytes), uninitialised: the
  // loader writes each tensor's bytes there (reordered for a kernel, or copied) through writable()
  // before it makes the tensor, by the file's addresses as from a mapping. Anonymous pages, huge
  // where the system allows.
  static MappedRegion owned(const uint8_t* begin, size_t nbytes);
  // The bytes at `data` (inside the region, aligned for `dtype`) as a tensor of `shape`.
  Tensor tensor(const uint8_t* data, const Shape& shape, Dtype dtype) const;
  // The owned memory's byte for the file's byte `data`; only for a region made by owned().
  uint8_t* writable(const uint8_t* data) const;

 private:
  MappedRegion(const uint8_t* begin, std::shared_ptr<Storage> storage, bool owned)
      : begin_(begin), storage_(std::move(storage)), owned_(owned) {}
  const uint8_t* begin_;
  std::shared_ptr<Storage> storage_;
  bool owned_ = false;
};

// Loads `name` from `file`, checking its shape; errors name the tensor, the file and both shapes.
Tensor load_weight(const io::SafeTensors& file, const std::string& name, const Shape& shape, Dtype dtype, Device device);

// The weight [out, in] of a linear module: a dense tensor, or GGML blocks kept quantized and
// dequantized on the fly by each product (a QLoRA-style frozen base; see core/quantized.h).
class LinearWeight {
 public:
  LinearWeight() = default;
  LinearWeight(Tensor dense) : dense_(std::move(dense)) {}              // NOLINT: a tensor is a weight
  LinearWeight(QuantizedMatrix blocks) : blocks_(std::move(blocks)) {}  // NOLINT

  bool is_quantized() const { return blocks_.has_value(); }
  Shape shape() const { return blocks_ ? blocks_->shape() : dense_.shape(); }
  Device device() const { return blocks_ ? blocks_->device() : dense_.device(); }
  // Bytes held in memory.
  size_t nbytes() const { return blocks_ ? blocks_->nbytes() : size_t(dense_.numel()) * dense_.itemsize(); }
  // The dense tensor; throws for a quantized weight.
  const Tensor& dense() const;
  // The blocks; throws for a dense weight.
  const QuantizedMatrix& blocks() const;
  // The matrix as a dense tensor of `dtype` (dequantized when quantized).
  Tensor to_dense(Dtype dtype) const;
  // The tensor holding the weight's memory: the dense matrix or the blocks.
  Tensor& memory() { return blocks_ ? blocks_->blocks : dense_; }
  const Tensor& memory() const { return blocks_ ? blocks_->blocks : dense_; }

 private:
  Tensor dense_;
  std::optional<QuantizedMatrix> blocks_;
};

// A weight of `like`'s form (dense, or blocks of its type and columns) over `memory`: rows of the
// same kind, e.g. a slice or a stack of such weights' memory.
LinearWeight with_memory(const LinearWeight& like, Tensor memory);

// Whether two weights can be stacked along their rows into one: same kind (dense or blocks),
// columns, and dtype or block type.
bool stackable(const LinearWeight& a, const LinearWeight& b);

// Moves tensors into one block of `device` memory, so a model's weights cost one allocation instead
// of one (rounded up) per tensor. The tensors of a group lie back to back: weights with rows of one
// width read as one matrix, which the runner's stacked projections take as views instead of copies.
// Each group starts 256-byte aligned. A tensor listed twice (tied embeddings) is moved once and
// both keep sharing it. Undefined tensors are skipped.
void pack_tensors(const std::vector<std::vector<Tensor*>>& groups, Device device);

// Whether `parts` lie back to back in one storage, in order (as pack_tensors places a group): then
// their rows stacked are a view of that memory.
bool adjacent(const std::vector<const Tensor*>& parts);

// The parts stacked along their first dimension as one tensor sharing their memory, when they are
// adjacent; nullopt otherwise.
std::optional<Tensor> stacked_view(const std::vector<const Tensor*>& parts);
// The same for weights: one weight whose rows are the parts' in order, when they are stackable and
// adjacent (as place_weights puts a layer's q, k, v and gate, up); nullopt otherwise.
std::optional<LinearWeight> stacked_view(const std::vector<const LinearWeight*>& parts);

// x @ W^T + bias, whichever form W is kept in.
Tensor linear(const Tensor& x, const LinearWeight& w, const std::optional<Tensor>& bias = std::nullopt);
// x @ W^T + bias + residual (core/ops/linear.h: one kernel for a decode step's rows on CUDA; a
// residual passed with std::move is summed in place there).
Tensor linear_add(const Tensor& x, const LinearWeight& w, const std::optional<Tensor>& bias,
                  std::optional<Tensor> residual);

}  // namespace wick::models
