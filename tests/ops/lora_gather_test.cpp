// lora_gather_add on every device: a batch mixing tokens of several adapter slots and tokens with
// none, against a float64 loop and the reference composition; its two halves (shrink, expand)
// apart; the shrink joined to rms_norm and to swiglu; base donation; a slot past the stack.
#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(LoraGather);

WICK_DEVICE_TEST(LoraGather, MixedSlotsMatchFloat64) {
  struct Case {
    Dtype dtype;
    int64_t n, in, out, slots, rank;
    int64_t run = 1;  // consecutive tokens of one slot (a prompt's tokens share theirs)
  };
  // Runs of one slot and of many, up to 12 slots, ranks up to 256.
  for (const Case& c : {Case{Dtype::F32, 6, 12, 10, 3, 5}, Case{Dtype::F32, 37, 96, 200, 5, 48},
                        Case{Dtype::BF16, 9, 64, 130, 2, 16}, Case{Dtype::F16, 4, 33, 7, 4, 3},
                        Case{Dtype::BF16, 600, 256, 1000, 4, 16}, Case{Dtype::BF16, 64, 520, 2100, 1, 16},
                        Case{Dtype::F32, 50, 300, 5000, 6, 8}, Case{Dtype::F16, 64, 100, 4096, 2, 12},
                        Case{Dtype::F32, 130, 64, 1157, 3, 16}, Case{Dtype::F32, 9, 40, 15, 2, 32},
                        Case{Dtype::BF16, 300, 96, 200, 3, 48, 37}, Case{Dtype::BF16, 150, 64, 77, 12, 32},
                        Case{Dtype::BF16, 40, 32, 50, 5, 256, 3}, Case{Dtype::BF16, 130, 48, 64, 2, 64, 70}}) {
    Rand base = rand({c.n, c.out}, c.dtype), x = rand({c.n, c.in}, c.dtype);
    Rand a = rand({c.slots, c.rank, c.in}, c.dtype, -0.5, 0.5), b = rand({c.slots, c.out, c.rank}, c.dtype, -0.5, 0.5);
    Values scale_v = random_values(c.slots, -2, 2);
    std::vector<float> scales(scale_v.begin(), scale_v.end());
    std::vector<int32_t> slot_ids(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.n; ++i) slot_ids[i] = int32_t((i / c.run) % (c.slots + 1)) - 1;  // none, then 0..S-1
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
    std::string what = str_cat(dtype_name(c.dtype), " n ", c.n, " slots ", c.slots, " rank ", c.rank);
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

// An expand with output parts (a stacked projection's compact B: part p of the outputs takes t's
// rank columns p r .. (p + 1) r - 1) against a float64 loop of the same update with B stacked
// block-diagonally as one part; each token alone gets the bits it gets in the batch.
WICK_DEVICE_TEST(LoraGather, OutputPartsMatchFloat64) {
  struct Case {
    Dtype dtype;
    int64_t n, in, slots, rank;
    std::vector<int64_t> parts;
    int64_t run = 1;
  };
  for (const Case& c : {Case{Dtype::F32, 13, 40, 3, 16, {40, 8, 8}}, Case{Dtype::F32, 30, 64, 2, 32, {35, 70}, 11},
                        Case{Dtype::F32, 9, 24, 3, 5, {7, 3, 3}}, Case{Dtype::BF16, 10, 32, 2, 16, {48, 16, 16}, 3},
                        Case{Dtype::F64, 6, 12, 2, 3, {4, 5}}, Case{Dtype::BF16, 100, 32, 3, 16, {48, 16, 16}, 7},
                        Case{Dtype::F32, 90, 24, 2, 8, {20, 9, 9}, 1}}) {
    const int64_t p = int64_t(c.parts.size()), rp = p * c.rank;
    int64_t out = 0;
    for (int64_t w : c.parts) out += w;
    Rand base = rand({c.n, out}, c.dtype), x = rand({c.n, c.in}, c.dtype);
    Rand a = rand({c.slots, rp, c.in}, c.dtype, -0.5, 0.5), b = rand({c.slots, out, c.rank}, c.dtype, -0.5, 0.5);
    std::vector<float> scales{0.5f, -1.5f, 2.f};
    scales.resize(size_t(c.slots));
    std::vector<int32_t> slot_ids(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.n; ++i) slot_ids[i] = int32_t((i / c.run) % (c.slots + 1)) - 1;
    // The block-diagonal B of one part, and the float64 update.
    Values diag(size_t(c.slots * out * rp), 0.0), want = base.v;
    for (int64_t s = 0; s < c.slots; ++s)
      for (int64_t o = 0, part = 0, end = c.parts[0]; o < out; ++o) {
        if (o == end) end += c.parts[size_t(++part)];
        for (int64_t j = 0; j < c.rank; ++j)
          diag[size_t((s * out + o) * rp + part * c.rank + j)] = b.v[size_t((s * out + o) * c.rank + j)];
      }
    for (int64_t i = 0; i < c.n; ++i) {
      int32_t s = slot_ids[i];
      if (s < 0) continue;
      std::vector<double> t(static_cast<size_t>(rp), 0.0);
      for (int64_t j = 0; j < rp; ++j)
        for (int64_t k = 0; k < c.in; ++k) t[j] += a.v[size_t((s * rp + j) * c.in + k)] * x.v[size_t(i * c.in + k)];
      for (int64_t o = 0; o < out; ++o) {
        double acc = 0;
        for (int64_t j = 0; j < rp; ++j) acc += diag[size_t((s * out + o) * rp + j)] * t[j];
        want[size_t(i * out + o)] += double(scales[s]) * acc;
      }
    }
    Tensor ts = here(Tensor::from_vector(slot_ids, {c.n}, Device::cpu()));
    Tensor tsc = here(Tensor::from_vector(scales, {c.slots}, Device::cpu()));
    std::string what = str_cat(dtype_name(c.dtype), " n ", c.n, " parts ", shape_str(c.parts), " rank ", c.rank);
    Tensor t = lora_gather_shrink(x.t, ts, a.t);
    Tensor result = lora_gather_expand(base.t, t, ts, b.t, tsc, c.parts);
    double magnitude = 2.0 * double(c.in) * double(c.rank) * 0.25;
    Tol tol = c.dtype == Dtype::BF16 ? scaled(tol_for(c.dtype), 4) : sum_tol(c.dtype, magnitude);
    expect_close(result, want, {c.n, out}, tol, what);
    Values got = values(result);
    for (int64_t i = 0; i < c.n; ++i) {
      Tensor one = here(Tensor::from_vector(std::vector<int32_t>{slot_ids[size_t(i)]}, {1}, Device::cpu()));
      Values alone = values(lora_gather_expand(contiguous(narrow(base.t, 0, i, 1)), contiguous(narrow(t, 0, i, 1)), one,
                                               b.t, tsc, c.parts));
      ASSERT_EQ(alone, Values(got.begin() + i * out, got.begin() + (i + 1) * out)) << what << ", token " << i;
    }
  }
  // Parts that do not cover base's columns, or t's ranks that do not split into them, are named.
  Tensor slots = here(Tensor::from_vector(std::vector<int32_t>{0}, {1}, Device::cpu()));
  auto expand_error = [&](int64_t t_cols, int64_t b_rank, std::vector<int64_t> parts) {
    try {
      lora_gather_expand(zeros({1, 6}, Dtype::F32, device()), zeros({1, t_cols}, Dtype::F32, device()), slots,
                         zeros({1, 6, b_rank}, Dtype::F32, device()), ones({1}, Dtype::F32, device()), parts);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(expand_error(4, 2, {2, 3}).find("sum to 5, not base's 6 columns"), std::string::npos);
  EXPECT_NE(expand_error(5, 2, {3, 3}).find("do not split into 2 parts"), std::string::npos);
  EXPECT_NE(expand_error(4, 4, {3, 3}).find("expected b_stack[S, 6, 2]"), std::string::npos);
  EXPECT_NE(expand_error(4, 2, {6, 0}).find("part widths must be positive"), std::string::npos);
}

// The two halves apart: the shrink's t against a float64 loop (zeros for tokens without a slot;
// f32 kept, f64 for f64 operands), and the expand of that t giving lora_gather_add's values bit for
// bit.
WICK_DEVICE_TEST(LoraGather, ShrinkAndExpandApart) {
  for (Dtype dtype : {Dtype::BF16, Dtype::F32, Dtype::F64}) {
    const int64_t n = 11, in = 72, out = 40, slots = 3, rank = 6;
    Rand x = rand({n, in}, dtype), a = rand({slots, rank, in}, dtype, -0.5, 0.5);
    Tensor b = rand({slots, out, rank}, dtype, -0.5, 0.5).t, base = rand({n, out}, dtype).t;
    std::vector<int32_t> slot_ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) slot_ids[i] = int32_t(i % (slots + 1)) - 1;
    Tensor ts = here(Tensor::from_vector(slot_ids, {n}, Device::cpu()));
    Tensor scales = here(Tensor::from_vector(std::vector<float>{0.5f, -1.f, 2.f}, {slots}, Device::cpu()));
    Values want(static_cast<size_t>(n * rank), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < rank && slot_ids[i] >= 0; ++j)
        for (int64_t k = 0; k < in; ++k)
          want[size_t(i * rank + j)] += a.v[size_t((slot_ids[i] * rank + j) * in + k)] * x.v[size_t(i * in + k)];
    std::string what = dtype_name(dtype);
    Tensor t = lora_gather_shrink(x.t, ts, a.t);
    EXPECT_EQ(t.dtype(), dtype == Dtype::F64 ? Dtype::F64 : Dtype::F32) << what;
    expect_close(t, want, {n, rank}, sum_tol(t.dtype(), double(in) * 0.5 * 2), what + " shrink");
    std::vector<float> apart = astype(lora_gather_expand(base, t, ts, b, scales), Dtype::F32).to_vector<float>();
    std::vector<float> whole = astype(lora_gather_add(base, x.t, ts, a.t, b, scales), Dtype::F32).to_vector<float>();
    EXPECT_EQ(apart, whole) << what;
  }
  // A t of the wrong dtype is refused, naming what it must be.
  Tensor slots = here(Tensor::from_vector(std::vector<int32_t>{0}, {1}, Device::cpu()));
  try {
    lora_gather_expand(zeros({1, 2}, Dtype::BF16, device()), zeros({1, 1}, Dtype::BF16, device()), slots,
                       zeros({1, 2, 1}, Dtype::BF16, device()), ones({1}, Dtype::F32, device()));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t must be f32"), std::string::npos) << e.what();
  }
}

// rms_norm_lora_shrink: its rows equal rms_norm's bit for bit (the one-launch kernel on CUDA for
// rows of whole 16-byte vectors, the two ops in turn otherwise), and its t equals lora_gather_shrink
// of those rows within f32 summation (zeros for tokens without a slot).
WICK_DEVICE_TEST(LoraGather, RmsNormShrinkMatchesTheTwoOps) {
  struct Case {
    Dtype dtype;
    int64_t n, h, slots, rank;
  };
  for (const Case& c : {Case{Dtype::BF16, 37, 896, 3, 48}, Case{Dtype::BF16, 5, 64, 2, 5}, Case{Dtype::F16, 9, 2048, 2, 16},
                        Case{Dtype::F32, 7, 100, 2, 9}, Case{Dtype::BF16, 3, 4864, 1, 16}, Case{Dtype::F64, 4, 24, 2, 3},
                        Case{Dtype::F32, 33, 512, 4, 32}, Case{Dtype::BF16, 150, 896, 3, 48}}) {
    Tensor x = rand({c.n, c.h}, c.dtype).t, w = rand({c.h}, c.dtype, 0.5, 1.5).t;
    Tensor a = rand({c.slots, c.rank, c.h}, c.dtype, -0.5, 0.5).t;
    std::vector<int32_t> slot_ids(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.n; ++i) slot_ids[i] = int32_t(i % (c.slots + 1)) - 1;
    Tensor ts = here(Tensor::from_vector(slot_ids, {c.n}, Device::cpu()));
    std::string what = str_cat(dtype_name(c.dtype), " n ", c.n, " h ", c.h, " rank ", c.rank);
    std::vector<Tensor> ht = rms_norm_lora_shrink(x, w, 1e-6, ts, a);
    Tensor want_h = rms_norm(x, w, 1e-6);
    EXPECT_EQ(ht[0].dtype(), c.dtype) << what;
    EXPECT_EQ(values(ht[0]), values(want_h)) << what << ": the rows differ from rms_norm's";
    Tensor want_t = lora_gather_shrink(want_h, ts, a);
    EXPECT_EQ(ht[1].dtype(), want_t.dtype()) << what;
    // Sums of h products of terms up to 0.5 x ~3 (normalised rows), in f32 in either order.
    Tol tol = c.dtype == Dtype::F64 ? tol_for(Dtype::F64) : sum_tol(Dtype::F32, double(c.h) * 1.5);
    expect_close(ht[1], values(want_t), {c.n, c.rank}, tol, what + " t");
    Values t = values(ht[1]);
    for (int64_t i = 0; i < c.n; ++i)
      for (int64_t j = 0; j < c.rank && slot_ids[i] < 0; ++j) EXPECT_EQ(t[size_t(i * c.rank + j)], 0.0) << what;
  }
}

// swiglu_lora_shrink on gate and up as the decode step has them (the halves of one [N, 2F]
// product) and as separate tensors: the activations equal swiglu's bit for bit, t equals
// lora_gather_shrink of them within f32 summation.
WICK_DEVICE_TEST(LoraGather, SwigluShrinkMatchesTheTwoOps) {
  struct Case {
    Dtype dtype;
    int64_t n, f, slots, rank;
    bool halves;
  };
  for (const Case& c : {Case{Dtype::BF16, 37, 4864, 3, 16, true}, Case{Dtype::BF16, 5, 64, 2, 5, false},
                        Case{Dtype::F32, 9, 100, 2, 12, true}, Case{Dtype::F16, 4, 30, 1, 3, true},
                        Case{Dtype::F64, 3, 16, 2, 4, false}, Case{Dtype::BF16, 90, 4864, 3, 16, true}}) {
    Tensor gate, up;
    if (c.halves) {
      Tensor both = rand({c.n, 2 * c.f}, c.dtype).t;
      gate = narrow(both, 1, 0, c.f);
      up = narrow(both, 1, c.f, c.f);
    } else {
      gate = rand({c.n, c.f}, c.dtype).t;
      up = rand({c.n, c.f}, c.dtype).t;
    }
    Tensor a = rand({c.slots, c.rank, c.f}, c.dtype, -0.5, 0.5).t;
    std::vector<int32_t> slot_ids(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.n; ++i) slot_ids[i] = int32_t(i % (c.slots + 1)) - 1;
    Tensor ts = here(Tensor::from_vector(slot_ids, {c.n}, Device::cpu()));
    std::string what = str_cat(dtype_name(c.dtype), " n ", c.n, " f ", c.f, c.halves ? " halves" : "");
    std::vector<Tensor> at = swiglu_lora_shrink(gate, up, ts, a);
    Tensor want_act = swiglu(gate, up);
    EXPECT_EQ(values(at[0]), values(want_act)) << what << ": the activations differ from swiglu's";
    Tensor want_t = lora_gather_shrink(want_act, ts, a);
    Tol tol = c.dtype == Dtype::F64 ? tol_for(Dtype::F64) : sum_tol(Dtype::F32, double(c.f) * 2.0);
    expect_close(at[1], values(want_t), {c.n, c.rank}, tol, what + " t");
  }
}

// The three shrinks (lora_gather_shrink, rms_norm_lora_shrink, swiglu_lora_shrink) give a token
// the t bits it gets alone, in a prompt-sized call with neighbours in other slots and with runs of
// one slot (a prompt's tokens, which the CPU's kernels serve together), and the rows (h, act) those
// of the token alone too.
WICK_DEVICE_TEST(LoraGather, ShrinksGiveEachTokenTheBitsItGetsAlone) {
  for (Dtype dtype : {Dtype::BF16, Dtype::F32})
    for (int64_t run : {1, 11}) {
      const int64_t n = 83, in = 896, f = 4864, slots = 3, rank = 16;
      Tensor x = rand({n, in}, dtype).t, w = rand({in}, dtype, 0.5, 1.5).t;
      Tensor a_in = rand({slots, rank, in}, dtype, -0.5, 0.5).t, a_f = rand({slots, rank, f}, dtype, -0.5, 0.5).t;
      Tensor both = rand({n, 2 * f}, dtype).t;
      Tensor gate = narrow(both, 1, 0, f), up = narrow(both, 1, f, f);
      std::vector<int32_t> slot_ids(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) slot_ids[i] = int32_t((i / run * 5) % (slots + 1)) - 1;
      Tensor ts = here(Tensor::from_vector(slot_ids, {n}, Device::cpu()));
      Values t_plain = values(lora_gather_shrink(x, ts, a_in));
      std::vector<Tensor> ht = rms_norm_lora_shrink(x, w, 1e-6, ts, a_in);
      std::vector<Tensor> at = swiglu_lora_shrink(gate, up, ts, a_f);
      Values h = values(ht[0]), t_norm = values(ht[1]), act = values(at[0]), t_swiglu = values(at[1]);
      auto row = [](const Values& v, int64_t i, int64_t width) {
        return Values(v.begin() + i * width, v.begin() + (i + 1) * width);
      };
      for (int64_t i = 0; i < n; ++i) {
        std::string what = str_cat(dtype_name(dtype), " runs of ", run, ", token ", i);
        Tensor one = here(Tensor::from_vector(std::vector<int32_t>{slot_ids[size_t(i)]}, {1}, Device::cpu()));
        Tensor xi = contiguous(narrow(x, 0, i, 1));
        ASSERT_EQ(values(lora_gather_shrink(xi, one, a_in)), row(t_plain, i, rank)) << what << ": lora_gather_shrink";
        std::vector<Tensor> ht1 = rms_norm_lora_shrink(xi, w, 1e-6, one, a_in);
        ASSERT_EQ(values(ht1[0]), row(h, i, in)) << what << ": rms_norm_lora_shrink's row";
        ASSERT_EQ(values(ht1[1]), row(t_norm, i, rank)) << what << ": rms_norm_lora_shrink's t";
        Tensor both_i = contiguous(narrow(both, 0, i, 1));
        std::vector<Tensor> at1 = swiglu_lora_shrink(narrow(both_i, 1, 0, f), narrow(both_i, 1, f, f), one, a_f);
        ASSERT_EQ(values(at1[0]), row(act, i, f)) << what << ": swiglu_lora_shrink's row";
        ASSERT_EQ(values(at1[1]), row(t_swiglu, i, rank)) << what << ": swiglu_lora_shrink's t";
      }
    }
}

// lora_gather_delta: the update alone, equal bit for bit to the expand of a zero base (zeros for
// tokens without a slot), for the vectorised ranks and others, in one part and in three, for a
// decode step's few tokens and a prompt chunk's many (which CUDA serves in tiles of tokens).
WICK_DEVICE_TEST(LoraGather, TheUpdateAloneIsTheExpandOfZeros) {
  for (Dtype dtype : {Dtype::F32, Dtype::BF16})
    for (int64_t rank : {16, 12})
      for (const std::vector<int64_t>& parts : {std::vector<int64_t>{}, std::vector<int64_t>{100, 25, 25}})
        for (int64_t n : {19, 150}) {
          const int64_t out = 150, slots = 3, t_cols = rank * std::max<int64_t>(1, int64_t(parts.size()));
          Tensor t = rand({n, t_cols}, Dtype::F32).t, b = rand({slots, out, rank}, dtype, -0.5, 0.5).t;
          std::vector<int32_t> slot_ids(static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i) slot_ids[i] = int32_t((i / 3) % (slots + 1)) - 1;
          Tensor ts = here(Tensor::from_vector(slot_ids, {n}, Device::cpu()));
          Tensor scales = here(Tensor::from_vector(std::vector<float>{0.5f, -1.f, 2.f}, {slots}, Device::cpu()));
          Values delta = values(lora_gather_delta(t, ts, b, scales, parts));
          Values want = values(lora_gather_expand(zeros({n, out}, dtype, device()), t, ts, b, scales, parts));
          std::string what = str_cat(dtype_name(dtype), " n ", n, " rank ", rank, " parts ", shape_str(parts));
          EXPECT_EQ(delta, want) << what;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t o = 0; o < out && slot_ids[size_t(i)] < 0; ++o)
              EXPECT_EQ(delta[size_t(i * out + o)], 0.0) << what;
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


// What a token gets does not depend on the rest of the batch: each row of a mixed batch equals, bit
// for bit, the same row sent alone (the serving engine's batches must be invisible), at ranks the
// vectorised kernels take (multiples of 16) and others, with every token's neighbour in another slot
// and with runs of one slot (a prompt's tokens, which the CPU's vector kernels serve together).
WICK_DEVICE_TEST(LoraGather, ATokenGetsTheSameBitsInAnyBatch) {
  for (Dtype dtype : {Dtype::F32, Dtype::BF16})
    for (int64_t rank : {16, 48, 12})
      for (int64_t run : {1, 11}) {
        const int64_t n = 70, in = 93, out = 150, slots = 3;
        Tensor x = rand({n, in}, dtype).t, a = rand({slots, rank, in}, dtype, -0.5, 0.5).t;
        Tensor b = rand({slots, out, rank}, dtype, -0.5, 0.5).t, base = rand({n, out}, dtype).t;
        std::vector<int32_t> slot_ids(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) slot_ids[i] = int32_t((i / run * 5) % (slots + 1)) - 1;
        Tensor ts = here(Tensor::from_vector(slot_ids, {n}, Device::cpu()));
        Tensor scales = here(Tensor::from_vector(std::vector<float>{0.5f, -1.f, 2.f}, {slots}, Device::cpu()));
        Values whole = values(lora_gather_add(base, x, ts, a, b, scales));
        for (int64_t i = 0; i < n; ++i) {
          Tensor one = here(Tensor::from_vector(std::vector<int32_t>{slot_ids[size_t(i)]}, {1}, Device::cpu()));
          Values alone = values(lora_gather_add(contiguous(narrow(base, 0, i, 1)), contiguous(narrow(x, 0, i, 1)), one,
                                                a, b, scales));
          Values row(whole.begin() + i * out, whole.begin() + (i + 1) * out);
          ASSERT_EQ(alone, row) << dtype_name(dtype) << " rank " << rank << " runs of " << run << ", token " << i;
        }
      }
}

}  // namespace
}  // namespace wick
