// How a strided 2-D matrix is handed to a BLAS (OpenBLAS or cuBLAS): as stored (row-major) or
// transposed (column-major storage), with its leading dimension; shared by both backends.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace wick {

struct BlasView {
  bool transposed;
  int64_t ld;
};

// A rows x cols matrix with row stride rs and column stride cs; none when neither layout fits
// (the caller copies it into contiguous memory first).
inline std::optional<BlasView> blas_view(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) return BlasView{false, std::max<int64_t>(rs, 1)};
  if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) return BlasView{true, std::max<int64_t>(cs, 1)};
  return std::nullopt;
}

}  // namespace wick
