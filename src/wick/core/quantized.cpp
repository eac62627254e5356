// Ops on quantized weight matrices (see quantized.h); the kernels live in the backends.
#include "wick/core/quantized.h"

#include <vector>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

bool keeps_blocks(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

QuantizedMatrix quantized_matrix(Tensor blocks, ggml::GgmlType type, int64_t rows, int64_t cols) {
  const ggml::GgmlTypeInfo* info = ggml::find_ggml_type(uint32_t(type));
  WICK_CHECK(info != nullptr, "quantized matrix: unknown GGML type id ", uint32_t(type));
  WICK_CHECK(keeps_blocks(type), "quantized matrix: GGML type ", info->name,
             " cannot be kept as blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K)");
  WICK_CHECK(rows > 0 && cols > 0 && cols % info->block_size == 0, "quantized matrix: ", info->name, " ",
             shape_str({rows, cols}), ": the row length must be a positive multiple of the block size ", info->block_size);
  int64_t row_bytes = cols / info->block_size * int64_t(info->type_size);
  WICK_CHECK(blocks.dtype() == Dtype::U8 && blocks.shape() == Shape({rows, row_bytes}), "quantized matrix: ",
             info->name, " ", shape_str({rows, cols}), " needs u8 blocks ", shape_str({rows, row_bytes}), ", got ",
             dtype_name(blocks.dtype()), " ", shape_str(blocks.shape()));
  if (!blocks.is_contiguous()) blocks = contiguous(blocks);
  return QuantizedMatrix{std::move(blocks), type, rows, cols};
}

QuantizedMatrix quantize(const Tensor& w, ggml::GgmlType type) {
  WICK_CHECK(w.ndim() == 2 && is_floating(w.dtype()), "quantize: expected a floating matrix [rows, cols], got ",
             dtype_name(w.dtype()), " ", shape_str(w.shape()));
  const ggml::GgmlTypeInfo* info = ggml::find_ggml_type(uint32_t(type));
  WICK_CHECK(info != nullptr && ggml::ggml_quantizable(type) && keeps_blocks(type),
             "quantize: wick cannot quantize to ", info ? info->name : "an unknown type", " (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)");
  int64_t rows = w.shape(0), cols = w.shape(1);
  WICK_CHECK(cols % info->block_size == 0, "quantize: ", info->name, " needs rows of a multiple of ",
             info->block_size, " values, got ", shape_str(w.shape()));
  std::vector<float> values = w.to_vector<float>();
  int64_t row_bytes = cols / info->block_size * int64_t(info->type_size);
  Tensor blocks = Tensor::empty({rows, row_bytes}, Dtype::U8, Device::cpu());
  ggml::quantize_from_f32(type, values.data(), rows * cols, blocks.data<uint8_t>());
  return QuantizedMatrix{to_device(blocks, w.device()), type, rows, cols};
}

QuantizedMatrix to_device(const QuantizedMatrix& w, Device device) {
  WICK_CHECK(!w.lanes || device.is_cpu(), "to_device: this ", ggml::ggml_type_name(w.type),
             " matrix is in the CPU's lane layout (reordered at load for the CPU's kernels) and cannot move to ",
             device.str(), "; load the model on that device instead");
  return QuantizedMatrix{to_device(w.blocks, device), w.type, w.rows, w.cols, w.int8_activations, w.lanes};
}

Tensor dequantize(const QuantizedMatrix& w, Dtype dtype) {
  WICK_CHECK(dtype == Dtype::F32 || dtype == Dtype::BF16 || dtype == Dtype::F16,
             "dequantize: the output must be f32, bf16 or f16, got ", dtype_name(dtype));
  return Tensor::make(w.shape(), dtype, w.device(), std::make_shared<Dequantize>(w.type, w.lanes), {w.blocks});
}

Tensor linear(const Tensor& x, const QuantizedMatrix& w, const std::optional<Tensor>& bias) {
  WICK_CHECK(x.device() == w.device(), "linear: input is on ", x.device().str(), " but the quantized weight is on ",
             w.device().str());
  WICK_CHECK(x.dtype() == Dtype::F32 || x.dtype() == Dtype::BF16 || x.dtype() == Dtype::F16,
             "linear: a quantized weight needs an f32, bf16 or f16 input, got ", dtype_name(x.dtype()));
  WICK_CHECK(x.ndim() >= 1 && x.shape(-1) == w.cols, "linear: input ", shape_str(x.shape()),
             " does not match the quantized weight ", shape_str(w.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = w.rows;
  Tensor y = Tensor::make(out_shape, x.dtype(), x.device(),
                          std::make_shared<QuantizedMatmul>(w.type, w.rows, w.cols, /*transposed=*/true, w.int8_activations,
                                                            w.lanes),
                          {x, w.blocks});
  if (bias) {
    WICK_CHECK(bias->ndim() == 1 && bias->shape(0) == w.rows, "linear: bias ", shape_str(bias->shape()),
               " does not match the quantized weight ", shape_str(w.shape()));
    y = y + *bias;
  }
  return y;
}

std::vector<Tensor> QuantizedMatmul::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                                         const Tensor&) {
  std::vector<Tensor> out;
  for (int i : argnums) {
    WICK_CHECK(i == 0, "quantized_matmul: the quantized matrix is frozen and has no gradient");
    out.push_back(Tensor::make(in[0].shape(), g.dtype(), g.device(),
                               std::make_shared<QuantizedMatmul>(type_, rows_, cols_, !transposed_,
                                                                 /*int8_activations=*/false, lanes_),
                               {g, in[1]}));
  }
  return out;
}

}  // namespace wick
