// Evaluation of the primitives that need no kernel on any device: views (new shape and strides
// over the input's storage) and transfers between devices.
#include <optional>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

// Strides that let `new_shape` view memory laid out as (shape, strides), if any exist. Old dims
// form chunks that are contiguous with each other; each chunk can be re-split freely.
std::optional<Strides> view_strides(const Shape& shape, const Strides& strides, const Shape& new_shape) {
  if (shape.empty() || numel(shape) == 0) return contiguous_strides(new_shape);
  Strides out(new_shape.size());
  int view_d = int(new_shape.size()) - 1;
  int64_t chunk_stride = strides.back(), chunk_numel = 1, view_numel = 1;
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    chunk_numel *= shape[d];
    bool chunk_ends = d == 0 || (shape[d - 1] != 1 && strides[d - 1] != chunk_numel * chunk_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < chunk_numel || new_shape[view_d] == 1)) {
      out[view_d] = view_numel * chunk_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != chunk_numel) return std::nullopt;
    if (d > 0) {
      chunk_stride = strides[d - 1];
      chunk_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

// Reshape: a view when possible, else a contiguous copy.
void reshape_eval(const std::vector<Tensor>& in, const Tensor& out, bool cuda) {
  const Tensor& x = in[0];
  if (auto s = view_strides(x.shape(), x.strides(), out.shape())) {
    out.set_data(x.storage(), *s, x.offset());
    return;
  }
  // Gather x into contiguous memory of its own shape, then view that.
  Tensor dense = Tensor::empty(x.shape(), x.dtype(), x.device());
  AsType copy;
  if (cuda) copy.eval_cuda(in, dense);
  else copy.eval_cpu(in, dense);
  out.set_data(dense.storage(), contiguous_strides(out.shape()), 0);
}
void Reshape::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) { reshape_eval(in, out, false); }
void Reshape::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) { reshape_eval(in, out, true); }

void permute_eval(const std::vector<int>& perm, const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  Strides s(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) s[i] = x.strides()[perm[i]];
  out.set_data(x.storage(), s, x.offset());
}
void Permute::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) { permute_eval(perm_, in, out); }
void Permute::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) { permute_eval(perm_, in, out); }

void slice_eval(const Shape& start, const Shape& step, const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  Strides s = x.strides();
  int64_t offset = x.offset();
  for (size_t i = 0; i < s.size(); ++i) {
    offset += start[i] * s[i];
    s[i] *= step[i];
  }
  out.set_data(x.storage(), s, offset);
}
void Slice::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) { slice_eval(start_, step_, in, out); }
void Slice::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) { slice_eval(start_, step_, in, out); }

void split_eval(int axis, const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  const Tensor& x = in[0];
  int64_t offset = x.offset();
  for (const Tensor& out : outs) {
    out.set_data(x.storage(), x.strides(), offset);
    offset += out.shape(axis) * x.strides()[axis];
  }
}
void Split::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) { split_eval(axis_, in, outs); }
void Split::eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) { split_eval(axis_, in, outs); }

void broadcast_eval(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& x = in[0];
  out.set_data(x.storage(), broadcast_strides(x.shape(), x.strides(), out.shape()), x.offset());
}
void BroadcastTo::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) { broadcast_eval(in, out); }
void BroadcastTo::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) { broadcast_eval(in, out); }

void to_device_eval(const std::vector<Tensor>& in, const Tensor& out) {
  // Strided data is gathered on its source device, then copied in one transfer.
  Tensor src = in[0];
  if (!src.is_contiguous()) {
    ExecModeScope eager(ExecMode::Eager);
    NoGradGuard no_grad;
    src = contiguous(src);
  }
  out.allocate();
  copy_bytes(out.data_ptr(), out.device(), src.data_ptr(), src.device(), size_t(out.numel()) * out.itemsize());
}
void ToDevice::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) { to_device_eval(in, out); }
void ToDevice::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) { to_device_eval(in, out); }

}  // namespace wick
