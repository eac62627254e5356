// Model-file tensors to engine tensors.
#include "wick/models/weights.h"

#include "wick/core/ops.h"
#include "wick/core/ops/linear.h"

namespace wick::models {

Dtype engine_dtype(io::FileDtype dtype, const std::string& tensor) {
  switch (dtype) {
    case io::FileDtype::F32: return Dtype::F32;
    case io::FileDtype::F16: return Dtype::F16;
    case io::FileDtype::BF16: return Dtype::BF16;
    case io::FileDtype::F64: return Dtype::F64;
    case io::FileDtype::I32: return Dtype::I32;
    case io::FileDtype::I64: return Dtype::I64;
    case io::FileDtype::U8: return Dtype::U8;
    case io::FileDtype::BOOL: return Dtype::Bool;
    default: break;
  }
  fail("tensor '", tensor, "' has dtype ", io::file_dtype_name(dtype), ", which wick cannot load");
}

Tensor to_tensor(const io::TensorView& view, Dtype dtype, Device device) {
  Dtype stored = engine_dtype(view.dtype, view.name);
  Tensor t;
  bool aligned = reinterpret_cast<uintptr_t>(view.data) % dtype_size(stored) == 0;
  if (aligned) {
    // A view of the mapping: the storage's release keeps the mapping alive and frees nothing.
    auto owner = view.owner;
    auto storage = std::make_shared<Storage>(const_cast<uint8_t*>(view.data), view.nbytes, Device::cpu(),
                                             [owner](void*) {});
    t = Tensor::from_storage(storage, view.shape, contiguous_strides(view.shape), 0, stored);
  } else {
    t = Tensor::from_data(view.data, view.shape, stored, Device::cpu());
  }
  return to_device(astype(t, dtype), device);
}

Tensor load_weight(const io::SafeTensors& file, const std::string& name, const Shape& shape, Dtype dtype, Device device) {
  const io::TensorView* view = file.find(name);
  WICK_CHECK(view != nullptr, "missing weight '", name, "' in ", file.source());
  WICK_CHECK(view->shape == shape, "weight '", name, "' in ", file.source(), " has shape ", shape_str(view->shape),
             " but the config implies ", shape_str(shape));
  return to_tensor(*view, dtype, device);
}

const Tensor& LinearWeight::dense() const {
  WICK_CHECK(!blocks_, "this weight is kept quantized (", io::ggml_type_name(blocks_->type), "); ask for to_dense()");
  return dense_;
}

const QuantizedMatrix& LinearWeight::blocks() const {
  WICK_CHECK(blocks_.has_value(), "this weight is dense, not quantized");
  return *blocks_;
}

Tensor LinearWeight::to_dense(Dtype dtype) const { return blocks_ ? dequantize(*blocks_, dtype) : astype(dense_, dtype); }

Tensor linear(const Tensor& x, const LinearWeight& w, const std::optional<Tensor>& bias) {
  return w.is_quantized() ? wick::linear(x, w.blocks(), bias) : wick::linear(x, w.dense(), bias);
}

Tensor linear_add(const Tensor& x, const LinearWeight& w, const std::optional<Tensor>& bias,
                  const std::optional<Tensor>& residual) {
  return w.is_quantized() ? wick::linear_add(x, w.blocks(), bias, residual)
                          : wick::linear_add(x, w.dense(), bias, residual);
}

}  // namespace wick::models
