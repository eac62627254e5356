// CPU gather/scatter, slice writes and concatenation.
#include <cstring>

#include "wick/backend/cpu/strided.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

namespace {

// x viewed as [outer, size, inner] around `axis` (x contiguous).
struct AxisSplit {
  int64_t outer = 1, size = 1, inner = 1;
};
AxisSplit split_at(const Shape& shape, int axis) {
  AxisSplit s;
  for (int d = 0; d < axis; ++d) s.outer *= shape[d];
  s.size = shape[axis];
  for (size_t d = axis + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

std::vector<int64_t> read_indices(const Tensor& index, int64_t limit, const char* op) {
  Tensor idx = cpu::contiguous_copy(index);
  std::vector<int64_t> out(idx.numel());
  dispatch_index(idx.dtype(), op, [&]<typename I>() {
    const I* p = cdata<I>(idx);
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t v = p[i];
      if (v < 0) v += limit;
      WICK_CHECK(v >= 0 && v < limit, op, ": index ", int64_t(p[i]), " is out of range for a dim of size ", limit);
      out[i] = v;
    }
  });
  return out;
}

// Copies src (any strides) into the block of dst (contiguous) at start with steps.
void write_block(const Tensor& dst, const Tensor& src, const Shape& start, const Shape& step) {
  const Strides& ds = dst.strides();
  int64_t base = 0;
  Strides block_strides(ds.size());
  for (size_t d = 0; d < ds.size(); ++d) {
    base += start[d] * ds[d];
    block_strides[d] = ds[d] * step[d];
  }
  size_t item = dst.itemsize();
  char* pd = static_cast<char*>(dst.data_ptr());
  const char* ps = static_cast<const char*>(src.data_ptr());
  const Strides& ss = src.strides();
  if (src.ndim() > 0 && ss.back() == 1 && block_strides.back() == 1) {
    // Rows contiguous on both sides (a concat of weight matrices, a cache write): one copy per row.
    Shape outer(src.shape().begin(), src.shape().end() - 1);
    size_t row = size_t(src.shape(-1)) * item;
    cpu::for_each_strided<2>(outer, {Strides(block_strides.begin(), block_strides.end() - 1),
                                     Strides(ss.begin(), ss.end() - 1)},
                             [&](int64_t o, int64_t i) { std::memcpy(pd + (base + o) * item, ps + i * item, row); });
    return;
  }
  cpu::for_each_strided<2>(src.shape(), {block_strides, ss},
                           [&](int64_t o, int64_t i) { std::memcpy(pd + (base + o) * item, ps + i * item, item); });
}

}  // namespace

void Gather::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  out.allocate();
  AxisSplit s = split_at(x.shape(), axis_);
  std::vector<int64_t> idx = read_indices(in[1], s.size, "gather");
  size_t row = size_t(s.inner) * x.itemsize();
  const char* px = static_cast<const char*>(x.data_ptr());
  char* po = static_cast<char*>(out.data_ptr());
  int64_t n = int64_t(idx.size());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(po + (o * n + i) * row, px + (o * s.size + idx[i]) * row, row);
}

void ScatterAdd::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor base = cpu::contiguous_copy(in[0]);
  Tensor src = cpu::contiguous_copy(in[2]);
  out.allocate();
  std::memcpy(out.data_ptr(), base.data_ptr(), size_t(out.numel()) * out.itemsize());
  AxisSplit s = split_at(out.shape(), axis_);
  std::vector<int64_t> idx = read_indices(in[1], s.size, "scatter_add");
  int64_t n = int64_t(idx.size());
  dispatch_all(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail("scatter_add: not defined for bool tensors");
    } else {
      using C = compute_t<T>;
      T* po = mdata<T>(out);
      const T* ps = cdata<T>(src);
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < s.inner; ++j) {
            T& d = po[(o * s.size + idx[i]) * s.inner + j];
            d = T(C(C(d) + C(ps[(o * n + i) * s.inner + j])));
          }
    }
  });
}

void SliceUpdate::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& dst = in[0];
  // Into dst's own memory when nothing else can see it, else into a copy of dst.
  if (!take_over_input(in, out)) {
    out.allocate();
    Tensor whole = cpu::contiguous_copy(dst);
    std::memcpy(out.data_ptr(), whole.data_ptr(), size_t(out.numel()) * out.itemsize());
  }
  write_block(out, in[1], start_, step_);
}

void PlaceBlocks::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  std::memset(out.data_ptr(), 0, size_t(out.numel()) * out.itemsize());
  for (size_t i = 0; i < in.size(); ++i) write_block(out, in[i], starts_[i], Shape(starts_[i].size(), 1));
}

void Concat::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  if (view_of_inputs(in, out)) return;
  out.allocate();
  Shape start(out.ndim(), 0), step(out.ndim(), 1);
  for (const Tensor& x : in) {
    write_block(out, x, start, step);
    start[axis_] += x.shape(axis_);
  }
}

}  // namespace wick
