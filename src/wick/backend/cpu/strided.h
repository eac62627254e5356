// Iteration over strided tensors on the CPU: dims that are contiguous for every operand are merged
// so the innermost loop runs over as many elements as possible; large loops split across the pool.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitive.h"
#include "wick/core/shape.h"

namespace wick::cpu {

// The loop nest over a strided shape: size-1 dims dropped, dims that are contiguous for every
// operand merged, so the innermost loop runs over as many elements as possible.
template <size_t N>
struct StridedLoop {
  std::vector<int64_t> dims;
  std::array<std::vector<int64_t>, N> strides;
  int64_t numel = 1;
  bool unit_inner = false;  // every operand's innermost stride is 1

  StridedLoop(const Shape& shape, const std::array<Strides, N>& operand_strides) {
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 1) continue;
      if (shape[i] == 0) {
        numel = 0;
        return;
      }
      numel *= shape[i];
      bool merge = !dims.empty();
      for (size_t k = 0; k < N && merge; ++k) merge = strides[k].back() == operand_strides[k][i] * shape[i];
      if (merge) {
        dims.back() *= shape[i];
        for (size_t k = 0; k < N; ++k) strides[k].back() = operand_strides[k][i];
      } else {
        dims.push_back(shape[i]);
        for (size_t k = 0; k < N; ++k) strides[k].push_back(operand_strides[k][i]);
      }
    }
    if (dims.empty()) {
      dims.push_back(1);
      for (size_t k = 0; k < N; ++k) strides[k].push_back(0);
    }
    unit_inner = true;
    for (size_t k = 0; k < N; ++k) unit_inner = unit_inner && strides[k].back() == 1;
  }

  // Calls f(offset_0, ..., offset_{N-1}) for the elements [begin, end) in row-major order.
  template <class F>
  void run(int64_t begin, int64_t end, F& f) const {
    int nd = int(dims.size());
    std::vector<int64_t> idx(size_t(nd), 0);
    std::array<int64_t, N> base{};
    for (int64_t d = nd - 1, rest = begin; d >= 0; --d) {
      idx[d] = rest % dims[d];
      rest /= dims[d];
      for (size_t k = 0; k < N; ++k) base[k] += idx[d] * strides[k][d];
    }
    int64_t left = end - begin;
    while (left > 0) {
      int64_t start = idx[nd - 1], count = std::min(dims[nd - 1] - start, left);
      [&]<size_t... K>(std::index_sequence<K...>) {
        // Rows every operand holds contiguously (a bias row broadcast over rows is one too): offsets
        // that step by one, which the compiler vectorises.
        if (unit_inner)
          for (int64_t j = 0; j < count; ++j) f((base[K] + j)...);
        else
          for (int64_t j = 0; j < count; ++j) f((base[K] + j * strides[K][nd - 1])...);
      }(std::make_index_sequence<N>{});
      left -= count;
      if (left == 0) return;
      // Back to the row's start, then one step of the outer multi-index.
      for (size_t k = 0; k < N; ++k) base[k] -= start * strides[k][nd - 1];
      idx[nd - 1] = 0;
      for (int d = nd - 2; d >= 0; --d) {
        ++idx[d];
        for (size_t k = 0; k < N; ++k) base[k] += strides[k][d];
        if (idx[d] < dims[d]) break;
        for (size_t k = 0; k < N; ++k) base[k] -= strides[k][d] * dims[d];
        idx[d] = 0;
      }
    }
  }
};

// Calls f(offset_0, ..., offset_{N-1}) for every element of `shape`, with offsets in elements
// computed from each operand's strides.
template <size_t N, class F>
void for_each_strided(const Shape& shape, const std::array<Strides, N>& strides, F&& f) {
  StridedLoop<N> loop(shape, strides);
  loop.run(0, loop.numel, f);
}

// As for_each_strided, the elements split across the thread pool when there are many (f is called
// concurrently for different elements: it must only write the element it is given).
template <size_t N, class F>
void parallel_for_each_strided(const Shape& shape, const std::array<Strides, N>& strides, F&& f) {
  StridedLoop<N> loop(shape, strides);
  parallel_for(loop.numel, int64_t(1) << 14, [&](int64_t begin, int64_t end) { loop.run(begin, end, f); });
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
