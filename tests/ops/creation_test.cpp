// Creation ops on every device: full, zeros, ones, scalar and the *_like forms in every dtype,
// and arange (integer and fractional steps, both directions, empty ranges), against exact values.
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

const Dtype kAllDtypes[] = {Dtype::Bool, Dtype::U8,   Dtype::I32, Dtype::I64,
                            Dtype::F16,  Dtype::BF16, Dtype::F32, Dtype::F64};

WICK_DEVICE_SUITE(Creation);

WICK_DEVICE_TEST(Creation, FullZerosOnesScalar) {
  for (Dtype dt : kAllDtypes) {
    std::string what = dtype_name(dt);
    Tensor f = full({2, 3}, 3.0, dt, device());
    EXPECT_EQ(f.dtype(), dt);
    expect_close(f, Values(6, dt == Dtype::Bool ? 1.0 : 3.0), {2, 3}, Tol{0, 0}, what);
    // An odd size, past one block of the fill kernel; 1.5 is exact in every floating dtype.
    double v = is_floating(dt) ? 1.5 : 1.0;
    expect_close(full({3, 129}, v, dt, device()), Values(3 * 129, v), {3, 129}, Tol{0, 0}, what + " [3,129]");
    expect_close(zeros({4}, dt, device()), Values(4, 0.0), {4}, Tol{0, 0}, what);
    expect_close(ones({1, 2}, dt, device()), Values(2, 1.0), {1, 2}, Tol{0, 0}, what);
  }
  Tensor s = scalar(2.5, Dtype::F32, device());
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.item<double>(), 2.5);
  EXPECT_EQ(full({0, 3}, 1.0, Dtype::F32, device()).numel(), 0);
  Tensor x = full({3, 2}, -1.5, Dtype::BF16, device());
  expect_close(full_like(x, 7), Values(6, 7.0), {3, 2}, Tol{0, 0});
  EXPECT_EQ(zeros_like(x).dtype(), Dtype::BF16);
  expect_close(zeros_like(x), Values(6, 0.0), {3, 2}, Tol{0, 0});
  expect_close(ones_like(x), Values(6, 1.0), {3, 2}, Tol{0, 0});
}

WICK_DEVICE_TEST(Creation, Arange) {
  auto ref = [](double start, double stop, double step) {
    Values v;
    for (double x = start; step > 0 ? x < stop : x > stop; x += step) v.push_back(x);
    return v;
  };
  expect_close(arange(0, 5, 1, Dtype::I64, device()), ref(0, 5, 1), {5}, Tol{0, 0});
  EXPECT_EQ(arange(0, 5).dtype(), Dtype::I64);  // the default dtype
  expect_close(arange(2, -3, -1.5, Dtype::F64, device()), ref(2, -3, -1.5), {4}, Tol{0, 0});
  expect_close(arange(0.5, 2.0, 0.25, Dtype::F32, device()), ref(0.5, 2.0, 0.25), {6}, Tol{0, 0});
  expect_close(arange(0.5, 7, 0.25, Dtype::F32, device()), ref(0.5, 7, 0.25), {26}, Tol{0, 0});
  EXPECT_EQ(arange(5, 1, 1, Dtype::I64, device()).numel(), 0);
  // Every dtype: the exact values rounded once to it (bf16 holds integers up to 256 only). Values
  // outside an integer dtype's range are undefined behaviour in C++: stay inside it.
  for (Dtype dt : kAllDtypes) {
    if (dt == Dtype::Bool) continue;
    double lo = dt == Dtype::U8 ? 0 : -3, hi = dt == Dtype::U8 ? 250 : 1000;
    Values r = ref(lo, hi, 1);
    Shape shape{int64_t(r.size())};
    expect_close(arange(lo, hi, 1, dt, device()), values(testing::make(r, shape, dt)), shape, Tol{0, 0},
                 dtype_name(dt));
  }
}

}  // namespace
}  // namespace wick
