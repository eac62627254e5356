// Shapes and strides (in elements), broadcasting and dimension normalisation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wick {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

int64_t numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);
// "[2,3,4]"
std::string shape_str(const Shape& shape);
// Result shape of broadcasting a and b (NumPy rules); throws naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Maps a possibly negative dim into [0, ndim); throws naming the op when out of range.
int normalize_dim(int64_t dim, int ndim, const char* op);
// Strides of `shape` viewed as broadcast to `target` (0 where a dim is broadcast or prepended).
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);
bool is_row_contiguous(const Shape& shape, const Strides& strides);

}  // namespace wick
