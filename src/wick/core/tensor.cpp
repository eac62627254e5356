// Tensor handles: leaves, nodes, and access to their data.
#include "wick/core/tensor.h"

#include <cstring>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/core/primitive.h"

namespace wick {

Tensor Tensor::from_data(const void* data, const Shape& shape, Dtype dtype, Device device) {
  for (int64_t d : shape) WICK_CHECK(d >= 0, "from_data: negative size in shape ", shape_str(shape));
  Tensor t = empty(shape, dtype, device);
  copy_bytes(t.data_ptr(), device, data, Device::cpu(), size_t(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
                            int64_t offset, Dtype dtype) {
  WICK_CHECK(storage != nullptr, "from_storage: null storage");
  WICK_CHECK(shape.size() == strides.size(), "from_storage: shape ", shape_str(shape), " and strides ",
             shape_str(strides), " differ in rank");
  int64_t last = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    WICK_CHECK(shape[i] >= 0 && strides[i] >= 0, "from_storage: bad shape/strides ", shape_str(shape), " ", shape_str(strides));
    if (shape[i] > 0) last += (shape[i] - 1) * strides[i];
  }
  WICK_CHECK(wick::numel(shape) == 0 || size_t(last + 1) * dtype_size(dtype) <= storage->nbytes(),
             "from_storage: a ", dtype_name(dtype), " view of shape ", shape_str(shape), " at offset ", offset,
             " reaches past the end of its ", storage->nbytes(), "-byte storage");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = storage->device();
  impl->storage = std::move(storage);
  impl->strides = strides;
  impl->offset = offset;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape, Dtype dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  Tensor t(std::move(impl));
  t.allocate();
  return t;
}

namespace {
bool traces_gradient(Dtype dtype, const std::vector<Tensor>& inputs) {
  // Integer and bool results are piecewise constant: no gradient flows through them (as in torch).
  if (!grad_enabled() || !is_floating(dtype)) return false;
  for (const Tensor& in : inputs)
    if (in.tracks_grad()) return true;
  return false;
}
}  // namespace

Tensor Tensor::make(const Shape& shape, Dtype dtype, Device device, std::shared_ptr<Primitive> primitive,
                    std::vector<Tensor> inputs) {
  WICK_CHECK(primitive->num_outputs() == 1, primitive->name(), " has ", primitive->num_outputs(),
             " outputs: make its node with Tensor::make_siblings");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->tracks_grad = traces_gradient(dtype, inputs);
  impl->node = std::make_shared<Node>();
  impl->node->primitive = std::move(primitive);
  impl->node->inputs = std::move(inputs);
  Tensor t(std::move(impl));
  if (exec_mode() == ExecMode::Eager) t.eval();
  return t;
}

std::vector<Tensor> Tensor::make_siblings(const std::vector<Shape>& shapes, const std::vector<Dtype>& dtypes,
                                          Device device, std::shared_ptr<Primitive> primitive,
                                          std::vector<Tensor> inputs) {
  size_t n = shapes.size();
  WICK_CHECK(n == dtypes.size() && int(n) == primitive->num_outputs(), primitive->name(), " has ",
             primitive->num_outputs(), " outputs, given ", n, " shapes and ", dtypes.size(), " dtypes");
  if (n == 1) return {make(shapes[0], dtypes[0], device, std::move(primitive), std::move(inputs))};
  auto node = std::make_shared<Node>();
  std::vector<Tensor> outs;
  for (size_t i = 0; i < n; ++i) {
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = shapes[i];
    impl->dtype = dtypes[i];
    impl->device = device;
    impl->tracks_grad = traces_gradient(dtypes[i], inputs);
    impl->node = node;
    node->outputs.push_back(impl);
    outs.push_back(Tensor(std::move(impl)));
  }
  node->primitive = std::move(primitive);
  node->inputs = std::move(inputs);
  node->shapes = shapes;
  node->dtypes = dtypes;
  node->device = device;
  if (exec_mode() == ExecMode::Eager) outs[0].eval();
  return outs;
}

std::vector<Tensor> Tensor::siblings() const {
  const std::shared_ptr<Node>& node = impl().node;
  if (!node) return {};
  if (node->outputs.empty()) return {*this};
  std::vector<Tensor> outs;
  for (const auto& weak : node->outputs) outs.push_back(Tensor(weak.lock()));
  return outs;
}

std::vector<Tensor> Tensor::node_outputs() const {
  std::vector<Tensor> outs = siblings();
  const Node& node = *impl().node;
  for (size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].defined()) continue;
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = node.shapes[i];
    impl->dtype = node.dtypes[i];
    impl->device = node.device;
    outs[i] = Tensor(std::move(impl));
  }
  return outs;
}

int64_t Tensor::shape(int64_t dim) const {
  WICK_CHECK(ndim() > 0, "shape(", dim, "): a 0-dim tensor has no dims");
  return impl().shape[normalize_dim(dim, ndim(), "shape")];
}

const Tensor& Tensor::eval() const {
  if (!is_evaluated()) wick::eval({*this});
  return *this;
}

const Strides& Tensor::strides() const { return eval().impl().strides; }
int64_t Tensor::offset() const { return eval().impl().offset; }
const std::shared_ptr<Storage>& Tensor::storage() const { return eval().impl().storage; }

bool Tensor::is_contiguous() const {
  eval();
  return is_row_contiguous(impl().shape, impl().strides);
}

void* Tensor::data_ptr() const {
  eval();
  return static_cast<char*>(impl().storage->data()) + impl().offset * int64_t(itemsize());
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return str_cat("Tensor(shape=", shape_str(shape()), ", dtype=", dtype_name(dtype()), ", device=", device().str(), ")");
}

void Tensor::set_data(std::shared_ptr<Storage> storage, const Strides& strides, int64_t offset) const {
  impl().storage = std::move(storage);
  impl().strides = strides;
  impl().offset = offset;
}

void Tensor::allocate() const {
  size_t nbytes = size_t(numel()) * itemsize();
  set_data(wick::allocate(nbytes, device()), contiguous_strides(shape()), 0);
}

void Tensor::allocate_side_by_side(const std::vector<Tensor>& outs) {
  const Tensor& first = outs[0];
  for (const Tensor& t : outs)
    WICK_CHECK(t.shape() == first.shape() && t.dtype() == first.dtype() && t.device() == first.device(),
               "allocate_side_by_side: ", t.str(), " differs from ", first.str());
  if (first.ndim() == 0) {
    for (const Tensor& t : outs) t.allocate();
    return;
  }
  Shape joined = first.shape();
  joined.back() *= int64_t(outs.size());
  std::shared_ptr<Storage> storage = wick::allocate(size_t(wick::numel(joined)) * first.itemsize(), first.device());
  Strides strides = contiguous_strides(joined);
  for (size_t i = 0; i < outs.size(); ++i) outs[i].set_data(storage, strides, int64_t(i) * first.shape().back());
}

Tensor Tensor::shallow_copy() const {
  eval();
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  impl->device = impl_->device;
  impl->storage = impl_->storage;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  return Tensor(std::move(impl));
}

bool can_overwrite(const Tensor& t) {
  if (node_handles(t) != 1 || t.storage().use_count() != 1 || !t.is_contiguous() || t.offset() != 0) return false;
  const Primitive* producer = t.primitive();
  return !t.tracks_grad() || (producer != nullptr && !producer->vjp_reads_output());
}

bool Primitive::take_over_input(const std::vector<Tensor>& inputs, const Tensor& out) const {
  int i = in_place_input();
  WICK_CHECK(i >= 0 && i < int(inputs.size()), name(), ": take_over_input needs a declared in-place input");
  const Tensor& in = inputs[size_t(i)];
  // The node's inputs hold the only handle: that is the handle can_overwrite asks about.
  if (!can_overwrite(in)) return false;
  out.set_data(in.storage(), in.strides(), 0);
  return true;
}

void copy_to_host(const Tensor& t, void* dst) {
  // Strided data is gathered into contiguous memory on its own device first.
  NoGradGuard no_grad;
  Tensor src = contiguous(t);
  copy_bytes(dst, Device::cpu(), src.data_ptr(), src.device(), size_t(src.numel()) * src.itemsize());
}

}  // namespace wick
