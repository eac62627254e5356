// Weight matrices kept as GGML quantized blocks: a QLoRA-style frozen base. The blocks stay in
// memory (on the CPU or the GPU); each product dequantizes them into a scratch matrix of the
// compute dtype that is released when the product is done, in the forward and again in the
// backward. The blocks are constants: gradients flow to the other operand only.
#pragma once

#include <optional>

#include "wick/base/ggml_quants.h"
#include "wick/core/tensor.h"

namespace wick {

// A matrix [rows, cols] as GGML blocks of one type: `blocks` is U8 [rows, row_bytes], row r
// holding cols / block_size blocks (the layout of a GGUF tensor of shape [rows, cols]).
struct QuantizedMatrix {
  Tensor blocks;
  ggml::GgmlType type = ggml::GgmlType::Q8_0;
  int64_t rows = 0, cols = 0;
  // Products on the CPU with a few activation rows (decode) may quantize the activations to 8-bit
  // blocks of 32 and take integer dot products, as llama.cpp does: the result then differs from
  // the dequantize-then-multiply product by about 1e-3 of sum_j |w_j x_j| (8-bit rounding of x).
  // Off: the product is the dequantized matrix's, to float rounding. Gradients are always exact.
  bool int8_activations = false;
  // On the CPU only: Q4_K, Q5_K or Q6_K blocks whose quants were reordered at load into the lane
  // layout of the CPU's 8-bit kernels (backend/cpu/quant_dot.h: k_lanes_pack), which take prompts
  // at about 1.5x the file layout's speed. Every product and dequantization reads them as the
  // file's blocks; they cannot move to another device.
  bool lanes = false;

  Shape shape() const { return {rows, cols}; }
  Device device() const { return blocks.device(); }
  size_t nbytes() const { return size_t(blocks.numel()); }
};

// Whether `type` can be kept as blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
bool keeps_blocks(ggml::GgmlType type);

// Wraps raw blocks, checking the type, that cols is a multiple of its block size, and that
// `blocks` is U8 [rows, row_bytes]; errors name what is wrong.
QuantizedMatrix quantized_matrix(Tensor blocks, ggml::GgmlType type, int64_t rows, int64_t cols);

// Quantizes a dense matrix [rows, cols] (any float dtype, any device) into `type` (Q4_0, Q4_1,
// Q5_0, Q5_1 or Q8_0, the types ggml::quantize_from_f32 produces); the result is on w's device.
QuantizedMatrix quantize(const Tensor& w, ggml::GgmlType type);

QuantizedMatrix to_device(const QuantizedMatrix& w, Device device);

// The dense matrix [rows, cols] in `dtype` (f32, bf16 or f16).
Tensor dequantize(const QuantizedMatrix& w, Dtype dtype);

// x[..., cols] @ W^T (+ bias [rows]) -> [..., rows] in x's dtype: torch.nn.Linear with a
// quantized weight [out, in].
Tensor linear(const Tensor& x, const QuantizedMatrix& w, const std::optional<Tensor>& bias = std::nullopt);

}  // namespace wick
