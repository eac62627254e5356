// Iteration over strided tensors on the CPU: dims that are contiguous for every operand are merged
// so the innermost loop runs over as many elements as possible.
#pragma once

#include <array>
#include <cstdint>

#include "wick/core/primitive.h"
#include "wick/core/shape.h"

namespace wick::cpu {

// Calls f(offset_0, ..., offset_{N-1}) for every element of `shape`, with offsets in elements
// computed from each operand's strides.
template <size_t N, class F>
void for_each_strided(const Shape& shape, const std::array<Strides, N>& strides, F&& f) {
  // Drop size-1 dims and merge dims that are contiguous for all operands.
  std::vector<int64_t> dims;
  std::array<std::vector<int64_t>, N> st;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (shape[i] == 0) return;
    bool merge = !dims.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = st[k].back() == strides[k][i] * shape[i];
    if (merge) {
      dims.back() *= shape[i];
      for (size_t k = 0; k < N; ++k) st[k].back() = strides[k][i];
    } else {
      dims.push_back(shape[i]);
      for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][i]);
    }
  }
  if (dims.empty()) {
    dims.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  int nd = int(dims.size());
  int64_t inner = dims[nd - 1];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = st[k][nd - 1];
  std::vector<int64_t> idx(nd, 0);
  std::array<int64_t, N> base{};
  while (true) {
    [&]<size_t... K>(std::index_sequence<K...>) {
      for (int64_t j = 0; j < inner; ++j) f((base[K] + j * inner_stride[K])...);
    }(std::make_index_sequence<N>{});
    // Advance the outer multi-index.
    int d = nd - 2;
    for (; d >= 0; --d) {
      ++idx[d];
      for (size_t k = 0; k < N; ++k) base[k] += st[k][d];
      if (idx[d] < dims[d]) break;
      for (size_t k = 0; k < N; ++k) base[k] -= st[k][d] * dims[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

// The tensor's data, contiguous: itself if already so, else a fresh copy.
Tensor contiguous_copy(const Tensor& x);

template <typename T>
const T* cdata(const Tensor& x) {
  return static_cast<const T*>(x.data_ptr());
}
template <typename T>
T* mdata(const Tensor& x) {
  return static_cast<T*>(x.data_ptr());
}

}  // namespace wick::cpu
