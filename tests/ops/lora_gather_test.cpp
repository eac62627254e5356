// lora_gather_add on every device: a batch mixing tokens of several adapter slots and tokens with
// none, against a float64 loop and the reference composition; base donation; a slot past the stack.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(LoraGather);

WICK_DEVICE_TEST(LoraGather, MixedSlotsMatchFloat64) {
  struct Case {
    Dtype dtype;
    int64_t n, in, out, slots, rank;
  };
  for (const Case& c : {Case{Dtype::F32, 6, 12, 10, 3, 5}, Case{Dtype::F32, 37, 96, 200, 5, 48},
                        Case{Dtype::BF16, 9, 64, 130, 2, 16}, Case{Dtype::F16, 4, 33, 7, 4, 3},
                        Case{Dtype::BF16, 600, 256, 1000, 4, 16}, Case{Dtype::BF16, 64, 520, 2100, 1, 16},
                        Case{Dtype::F32, 50, 300, 5000, 6, 8}, Case{Dtype::F16, 64, 100, 4096, 2, 12}}) {
    Rand base = rand({c.n, c.out}, c.dtype), x = rand({c.n, c.in}, c.dtype);
    Rand a = rand({c.slots, c.rank, c.in}, c.dtype, -0.5, 0.5), b = rand({c.slots, c.out, c.rank}, c.dtype, -0.5, 0.5);
    Values scale_v = random_values(c.slots, -2, 2);
    std::vector<float> scales(scale_v.begin(), scale_v.end());
    std::vector<int32_t> slot_ids(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.n; ++i) slot_ids[i] = int32_t(i % (c.slots + 1)) - 1;  // none, then 0..S-1
    Values want = base.v;
    for (int64_t i = 0; i < c.n; ++i) {
      int32_t s = slot_ids[i];
      if (s < 0) continue;
      std::vector<double> t(static_cast<size_t>(c.rank), 0.0);
      for (int64_t j = 0; j < c.rank; ++j)
        for (int64_t k = 0; k < c.in; ++k) t[j] += a.v[size_t((s * c.rank + j) * c.in + k)] * x.v[size_t(i * c.in + k)];
      for (int64_t o = 0; o < c.out; ++o) {
        double acc = 0;
        for (int64_t j = 0; j < c.rank; ++j) acc += b.v[size_t((s * c.out + o) * c.rank + j)] * t[j];
        want[size_t(i * c.out + o)] += double(scales[s]) * acc;
      }
    }
    Tensor ts = here(Tensor::from_vector(slot_ids, {c.n}, Device::cpu()));
    Tensor tsc = here(Tensor::from_vector(scales, {c.slots}, Device::cpu()));
    std::string what = str_cat(dtype_name(c.dtype), " n ", c.n, " rank ", c.rank);
    // Sums of rank x in products of terms up to 2 x 0.5, in f32; the result rounded once to the dtype.
    double magnitude = 2.0 * double(c.in) * double(c.rank) * 0.25;
    Tol tol = c.dtype == Dtype::F32 ? sum_tol(Dtype::F32, magnitude) : scaled(tol_for(c.dtype), 4);
    Tensor base_copy = astype(base.t, c.dtype);
    expect_close(lora_gather_add(std::move(base_copy), x.t, ts, a.t, b.t, tsc), want, {c.n, c.out}, tol, what);
    if (c.dtype == Dtype::F32)
      expect_close(reference::lora_gather_add(astype(base.t, Dtype::F64), astype(x.t, Dtype::F64), ts,
                                              astype(a.t, Dtype::F64), astype(b.t, Dtype::F64), tsc),
                   want, {c.n, c.out}, tol_for(Dtype::F64), what + " (reference composition)");
  }
}

WICK_DEVICE_TEST(LoraGather, AFreeBaseIsAddedInPlaceAndAHeldOneIsKept) {
  Tensor a = ones({1, 1, 2}, Dtype::F32, device()), b = ones({1, 3, 1}, Dtype::F32, device());
  Tensor x = ones({1, 2}, Dtype::F32, device()), slots = here(Tensor::from_vector(std::vector<int32_t>{0}, {1}, Device::cpu()));
  Tensor scales = ones({1}, Dtype::F32, device());
  Tensor base = zeros({1, 3}, Dtype::F32, device()).eval();
  const void* before = base.data_ptr();
  Tensor held = base;
  Tensor copy = lora_gather_add(base, x, slots, a, b, scales);
  EXPECT_NE(copy.data_ptr(), before);
  EXPECT_EQ(sum(held).item<double>(), 0.0);
  held = Tensor();
  Tensor inplace = lora_gather_add(std::move(base), x, slots, a, b, scales);
  EXPECT_EQ(inplace.data_ptr(), before);
  EXPECT_EQ(sum(inplace).item<double>(), 6.0);
}

WICK_DEVICE_TEST(LoraGather, ASlotPastTheStackIsAnError) {
  Tensor a = zeros({2, 1, 3}, Dtype::F32, device()), b = zeros({2, 4, 1}, Dtype::F32, device());
  Tensor slots = here(Tensor::from_vector(std::vector<int32_t>{2}, {1}, Device::cpu()));
  try {
    lora_gather_add(zeros({1, 4}, Dtype::F32, device()), zeros({1, 3}, Dtype::F32, device()), slots, a, b,
                    zeros({2}, Dtype::F32, device())).to_vector<float>();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(on_cuda() ? "lora_gather_add" : "slot 2"), std::string::npos) << e.what();
  }
  // The failed call leaves nothing behind: the next one adds its update.
  Tensor ones_a = ones({2, 1, 3}, Dtype::F32, device()), ones_b = ones({2, 4, 1}, Dtype::F32, device());
  Tensor slot1 = here(Tensor::from_vector(std::vector<int32_t>{1}, {1}, Device::cpu()));
  Tensor y = lora_gather_add(zeros({1, 4}, Dtype::F32, device()), ones({1, 3}, Dtype::F32, device()), slot1, ones_a,
                             ones_b, ones({2}, Dtype::F32, device()));
  EXPECT_EQ(y.to_vector<float>(), std::vector<float>(4, 3.f));
}

// Launch after launch, the same inputs give the same bits (at two step sizes).
WICK_DEVICE_TEST(LoraGather, RepeatedCallsGiveTheSameBits) {
  for (int64_t n : {40, 70}) {
    const int64_t in = 200, out = 300, slots = 3, rank = 8;
    Tensor x = rand({n, in}, Dtype::BF16).t, a = rand({slots, rank, in}, Dtype::BF16, -0.5, 0.5).t;
    Tensor b = rand({slots, out, rank}, Dtype::BF16, -0.5, 0.5).t, base = rand({n, out}, Dtype::BF16).t;
    std::vector<int32_t> slot_ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) slot_ids[i] = int32_t((i * 7) % (slots + 1)) - 1;
    Tensor ts = here(Tensor::from_vector(slot_ids, {n}, Device::cpu()));
    Tensor scales = here(Tensor::from_vector(std::vector<float>{0.5f, -1.f, 2.f}, {slots}, Device::cpu()));
    std::vector<float> first = astype(lora_gather_add(base, x, ts, a, b, scales), Dtype::F32).to_vector<float>();
    for (int k = 0; k < 5; ++k)
      ASSERT_EQ(astype(lora_gather_add(base, x, ts, a, b, scales), Dtype::F32).to_vector<float>(), first)
          << "n " << n << ", call " << k;
  }
}

}  // namespace
}  // namespace wick
