// linear_add: argument checks, and the choice between the fused node (CUDA, few rows) and the
// composition of linear and adds. The fused node's evaluation lives in backend/cuda/linear.cu.
#include "wick/core/ops/linear.h"

#include "wick/core/ops.h"

namespace wick {

namespace {

constexpr int64_t kFusedMaxRows = 64;      // the skinny product's limit (cuda::kSkinnyMaxRows)
constexpr int64_t kFusedMaxRowsF32 = 8;    // f32 activations: one pass of its CUDA-core path

void check_adds(const Tensor& x, int64_t out, const std::optional<Tensor>& bias, const std::optional<Tensor>& residual) {
  WICK_CHECK(!bias || (bias->ndim() == 1 && bias->shape(0) == out && bias->device() == x.device()),
             "linear_add: bias ", bias ? shape_str(bias->shape()) : "", " must be [", out, "] on ", x.device().str());
  WICK_CHECK(!residual || (residual->shape() == Shape{x.shape(0), out} && residual->dtype() == x.dtype() &&
                           residual->device() == x.device()),
             "linear_add: residual ", residual ? shape_str(residual->shape()) : "", " must be ", dtype_name(x.dtype()),
             " [", x.shape(0), ", ", out, "] on ", x.device().str());
}

// The fused node takes 2-D x of few rows on CUDA, k in whole units of the weight's format and a
// bias of x's dtype.
bool fusable(const Tensor& x, int64_t k, int64_t unit, const std::optional<Tensor>& bias) {
  if (!x.device().is_cuda() || x.ndim() != 2 || (bias && bias->dtype() != x.dtype())) return false;
  if (x.dtype() != Dtype::BF16 && x.dtype() != Dtype::F16 && x.dtype() != Dtype::F32) return false;
  return x.shape(0) >= 1 && x.shape(0) <= (x.dtype() == Dtype::F32 ? kFusedMaxRowsF32 : kFusedMaxRows) &&
         k % unit == 0;
}

Tensor compose(Tensor y, const std::optional<Tensor>& bias, const std::optional<Tensor>& residual) {
  if (bias) y = y + *bias;
  if (residual) y = y + *residual;
  return y;
}

Tensor fused(const Tensor& x, const Tensor& data, ggml::GgmlType type, int64_t rows, int64_t cols,
             const std::optional<Tensor>& bias, std::optional<Tensor> residual) {
  std::vector<Tensor> inputs{contiguous(x), contiguous(data)};
  if (bias) inputs.push_back(contiguous(*bias));
  const bool has_residual = residual.has_value();
  if (residual) {
    // Moved into the node (not copied) so that the node can take its memory over.
    Tensor r = std::move(*residual);
    residual.reset();
    inputs.push_back(r.is_contiguous() ? std::move(r) : contiguous(r));
  }
  return Tensor::make({x.shape(0), rows}, x.dtype(), x.device(),
                      std::make_shared<LinearAdd>(type, rows, cols, bias.has_value(), has_residual),
                      std::move(inputs));
}

}  // namespace

Tensor linear_add(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                  std::optional<Tensor> residual) {
  WICK_CHECK(weight.ndim() == 2 && x.ndim() >= 1 && x.shape(-1) == weight.shape(1), "linear_add: input ",
             shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()));
  if (residual || x.ndim() == 2) check_adds(x, weight.shape(0), bias, residual);
  if (fusable(x, weight.shape(1), 32, bias) && weight.dtype() == x.dtype() && weight.device() == x.device()) {
    const ggml::GgmlType type = x.dtype() == Dtype::BF16  ? ggml::GgmlType::BF16
                              : x.dtype() == Dtype::F16 ? ggml::GgmlType::F16
                                                        : ggml::GgmlType::F32;
    return fused(x, weight, type, weight.shape(0), weight.shape(1), bias, std::move(residual));
  }
  return compose(linear(x, weight), bias, residual);
}

Tensor linear_add(const Tensor& x, const QuantizedMatrix& weight, const std::optional<Tensor>& bias,
                  std::optional<Tensor> residual) {
  WICK_CHECK(x.ndim() >= 1 && x.shape(-1) == weight.cols, "linear_add: input ", shape_str(x.shape()),
             " does not match the quantized weight ", shape_str(weight.shape()));
  if (residual || x.ndim() == 2) check_adds(x, weight.rows, bias, residual);
  if (fusable(x, weight.cols, ggml::ggml_type_info(weight.type).block_size, bias) && weight.device() == x.device())
    return fused(x, weight.blocks, weight.type, weight.rows, weight.cols, bias, std::move(residual));
  return compose(linear(x, weight), bias, residual);
}

void LinearAdd::eval_cpu(const std::vector<Tensor>&, const Tensor&) {
  fail("linear_add: the fused node runs on CUDA only (linear_add composes linear and adds on the CPU)");
}

}  // namespace wick
