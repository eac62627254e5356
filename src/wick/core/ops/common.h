// Helpers shared by the op families (core/ops/<family>.cpp): argument checks that name the op,
// and the bookkeeping of vjps (which inputs' cotangents were asked for).
#pragma once

#include <algorithm>
#include <vector>

#include "wick/core/tensor.h"

namespace wick::detail {

inline void check_device(const char* op, const Tensor& a, const Tensor& b) {
  WICK_CHECK(a.device() == b.device(), op, ": tensors are on different devices (", a.device().str(), " and ",
             b.device().str(), ")");
}

inline void check_floating(const char* op, const Tensor& x) {
  WICK_CHECK(is_floating(x.dtype()), op, ": expected a floating tensor, got ", dtype_name(x.dtype()));
}

inline void check_index(const char* op, const Tensor& index) {
  WICK_CHECK(index.dtype() == Dtype::I32 || index.dtype() == Dtype::I64, op, ": index must be i32 or i64, got ",
             dtype_name(index.dtype()));
}

inline bool requested(const std::vector<int>& argnums, int i) {
  return std::find(argnums.begin(), argnums.end(), i) != argnums.end();
}

inline std::vector<Tensor> pick(const std::vector<int>& argnums, const std::vector<Tensor>& all) {
  std::vector<Tensor> out;
  for (int i : argnums) out.push_back(all[i]);
  return out;
}

}  // namespace wick::detail
