// LoRA dropout with PEFT's semantics, base(x) + B(A(dropout(x))) * scale in training only: p = 0
// changes nothing, the forward matches a float64 reference built from the same mask, gradients
// match finite differences, masks are replayable per (seed, step, micro-batch) and distinct per
// module, evaluation never drops, and a resumed run with dropout reproduces the uninterrupted one.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>

#include "support/adapters.h"
#include "support/testing.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/train/loss.h"
#include "wick/train/trainer.h"

using namespace wick;
using namespace wick::testing;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

models::DecoderModel tiny(Dtype dtype = Dtype::F32) {
  return models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), dtype);
}

// An adapter over every projection with non-zero B (so dropout changes the output).
lora::Adapter adapter_with_b(const models::DecoderModel& model, double dropout, uint64_t seed = 5) {
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  cfg.dropout = dropout;
  lora::Adapter a = lora::Adapter::init(model, cfg, seed);
  a.set_parameters(wick::testing::parameters_with_random_b(a, seed, 0.2));
  return a;
}

Tensor sample_ids() {
  return Tensor::from_vector(std::vector<int64_t>{3, 17, 101, 9, 42, 250, 7, 8, 99, 5, 64, 33, 1, 2}, {2, 7});
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

std::vector<train::Example> patterns(int n, uint64_t seed) {
  std::mt19937 rng(seed);
  std::vector<train::Example> out;
  for (int i = 0; i < n; ++i) {
    train::Example e;
    for (int k = 0; k < 12; ++k) e.ids.push_back(int32_t(rng() % 256));
    e.labels = e.ids;
    e.line = i + 1;
    out.push_back(e);
  }
  return out;
}

// (1) With p = 0 a training forward is the evaluation forward, bit for bit, gradients included.
TEST(LoraDropout, ZeroDropoutChangesNothing) {
  auto model = tiny();
  lora::Adapter a = adapter_with_b(model, 0.0);
  Tensor ids = sample_ids();
  models::LoraDeltas train_d = a.training_deltas(a.parameters(), train::dropout_key(1, 1, 0));
  for (const auto& [name, d] : train_d) EXPECT_EQ(d.dropout, 0.0) << name;
  models::LoraDeltas eval_d = a.deltas();
  EXPECT_TRUE(identical(model.forward(ids, nullptr, std::nullopt, std::nullopt, &train_d),
                        model.forward(ids, nullptr, std::nullopt, std::nullopt, &eval_d)));
  auto grads = [&](bool training) {
    return value_and_grad(
               [&](const std::vector<Tensor>& p) {
                 models::LoraDeltas d = training ? a.training_deltas(p, train::dropout_key(1, 1, 0)) : a.deltas(&p);
                 return train::causal_lm_loss(model.forward(ids, nullptr, std::nullopt, std::nullopt, &d), ids);
               },
               a.parameters())
        .second;
  };
  auto g0 = grads(false), g1 = grads(true);
  for (size_t i = 0; i < g0.size(); ++i) EXPECT_TRUE(identical(g0[i], g1[i])) << "parameter " << i;
  Tensor x = normal({3, 5});
  EXPECT_TRUE(dropout(x, 0.0, RandomKey{7}).same(x));
}

// (2) The fused update of one module with dropout against a float64 reference that applies the
// same mask by hand: x * mask / (1 - p) @ A^T @ B^T * scale + x @ W^T.
TEST(LoraDropout, ForwardMatchesAFloat64ReferenceWithTheSameMask) {
  const int64_t m = 37, in = 24, out = 20, r = 6;
  const double p = 0.3, scale = 1.75;
  RandomKey key = fold_in(RandomKey{11}, 3);
  for (Dtype dt : {Dtype::F32, Dtype::F64}) {
    Rand x = rand({m, in}, dt), w = rand({out, in}, dt), a = rand({r, in}, dt), b = rand({out, r}, dt);
    Tensor got = linear(x.t, w.t) + lora_delta(dropout(x.t, p, key), a.t, b.t, scale);
    std::vector<uint8_t> keep = bernoulli({m, in}, 1 - p, key).to_vector<uint8_t>();
    Values ref(size_t(m * out));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t o = 0; o < out; ++o) {
        double base = 0, delta = 0;
        for (int64_t k = 0; k < in; ++k) base += x.v[i * in + k] * w.v[o * in + k];
        for (int64_t j = 0; j < r; ++j) {
          double xa = 0;
          for (int64_t k = 0; k < in; ++k) xa += (keep[i * in + k] ? x.v[i * in + k] / (1 - p) : 0.0) * a.v[j * in + k];
          delta += xa * b.v[o * r + j];
        }
        ref[i * out + o] = base + delta * scale;
      }
    expect_close(got, ref, {m, out}, dt == Dtype::F32 ? Tol{1e-4, 1e-4} : tol_for(dt), dtype_name(dt));
    // The mask is a pure function of the key: drawing it again gives the same output.
    EXPECT_TRUE(identical(got, linear(x.t, w.t) + lora_delta(dropout(x.t, p, key), a.t, b.t, scale)));
  }
}

// With B = 0 the update is exactly 0 whatever the mask: the base path never sees dropout.
TEST(LoraDropout, TheBasePathIsNeverDropped) {
  auto model = tiny();
  lora::LoraConfig cfg;
  cfg.target_modules = {"all-linear"};
  cfg.dropout = 0.5;
  lora::Adapter a = lora::Adapter::init(model, cfg, 2);  // B = 0
  models::LoraDeltas d = a.training_deltas(a.parameters(), train::dropout_key(3, 1, 0));
  EXPECT_TRUE(identical(model.forward(sample_ids(), nullptr, std::nullopt, std::nullopt, &d), model.forward(sample_ids())));
}

// (3) Gradients of x, A and B through dropout + the fused update against finite differences, and
// of every LoRA parameter of the whole decoder (float64) with dropout.
TEST(LoraDropout, GradientsMatchFiniteDifferences) {
  RandomKey key{99};
  Rand x = rand({5, 7}), a = rand({3, 7}), b = rand({4, 3}), w = rand({4, 7});
  check_grads(
      [&](const std::vector<Tensor>& in) { return linear(in[0], w.t) + lora_delta(dropout(in[0], 0.4, key), in[1], in[2], 0.5); },
      {x.t, a.t, b.t}, "lora_delta of dropout");

  auto model = tiny(Dtype::F64);
  lora::LoraConfig cfg;
  cfg.r = 2;
  cfg.target_modules = {"q_proj", "down_proj"};
  cfg.dropout = 0.25;
  lora::Adapter adapter = lora::Adapter::init(model, cfg, 4);
  std::vector<Tensor> params = wick::testing::parameters_with_random_b(adapter, 4, 0.3, Dtype::F64);
  for (size_t i = 0; i < params.size(); i += 2) params[i] = astype(params[i], Dtype::F64);
  Tensor ids = sample_ids();
  RandomKey step_key = train::dropout_key(8, 2, 1);
  auto loss = [&](const std::vector<Tensor>& p) {
    models::LoraDeltas d = adapter.training_deltas(p, step_key);
    return train::causal_lm_loss(model.forward(ids, nullptr, std::nullopt, std::nullopt, &d), ids);
  };
  auto [value, grads] = value_and_grad(loss, params);
  // The gradients another step's masks give: the check below must tell them apart.
  auto other_grads = value_and_grad(
                         [&](const std::vector<Tensor>& p) {
                           models::LoraDeltas d = adapter.training_deltas(p, train::dropout_key(8, 3, 1));
                           return train::causal_lm_loss(model.forward(ids, nullptr, std::nullopt, std::nullopt, &d), ids);
                         },
                         params)
                         .second;
  NoGradGuard no_grad;
  // The decoder's logits are f32 whatever its dtype, so the differences take a wide step (the f64
  // weights keep everything before the logits exact); the op-level check above is the tight one.
  std::mt19937 pick(5);
  const double h = 1e-2;
  auto tol = [](double fd) { return 1e-4 + 5e-3 * std::abs(fd); };
  int other_mismatches = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    Values v = values(params[i]), g = values(grads[i]), other = values(other_grads[i]);
    for (int trial = 0; trial < 4; ++trial) {
      size_t j = pick() % v.size();
      std::vector<Tensor> ps = params;
      Values vp = v;
      vp[j] = v[j] + h;
      ps[i] = make(vp, params[i].shape());
      double fp = loss(ps).item<double>();
      vp[j] = v[j] - h;
      ps[i] = make(vp, params[i].shape());
      double fm = loss(ps).item<double>();
      double fd = (fp - fm) / (2 * h);
      EXPECT_NEAR(g[j], fd, tol(fd)) << "parameter " << i << " element " << j;
      if (std::abs(other[j] - fd) > tol(fd)) ++other_mismatches;
    }
  }
  EXPECT_GT(other_mismatches, 8);
  // Dropout is on: the loss differs from the undropped one.
  models::LoraDeltas plain = adapter.deltas(&params);
  EXPECT_NE(value.item<double>(),
            train::causal_lm_loss(model.forward(ids, nullptr, std::nullopt, std::nullopt, &plain), ids).item<double>());
}

// (4) Each module draws its own mask; masks change with the step, the micro-batch and the seed and
// repeat for the same (seed, step, micro-batch); the dropped fraction is p.
TEST(LoraDropout, MasksArePerModuleAndReplayable) {
  auto model = tiny();
  lora::Adapter a = adapter_with_b(model, 0.1);
  auto mask_of = [](RandomKey k) { return bernoulli({64, 64}, 0.9, k).to_vector<uint8_t>(); };
  models::LoraDeltas d = a.training_deltas(a.parameters(), train::dropout_key(1, 5, 0));
  std::set<std::string> masks;  // each mask's bytes
  for (const auto& [name, delta] : d) {
    EXPECT_EQ(delta.dropout, 0.1) << name;
    std::vector<uint8_t> m = mask_of(delta.dropout_key);
    masks.insert(std::string(m.begin(), m.end()));
  }
  EXPECT_EQ(masks.size(), d.size()) << "two modules share a mask";
  const std::string q0 = models::DecoderModel::module_name(0, "q_proj");
  auto mask_at = [&](uint64_t seed, int64_t step, int64_t micro) {
    return mask_of(a.training_deltas(a.parameters(), train::dropout_key(seed, step, micro)).at(q0).dropout_key);
  };
  EXPECT_EQ(mask_at(1, 5, 0), mask_at(1, 5, 0));
  EXPECT_NE(mask_at(1, 5, 0), mask_at(1, 6, 0));
  EXPECT_NE(mask_at(1, 5, 0), mask_at(1, 5, 1));
  EXPECT_NE(mask_at(1, 5, 0), mask_at(2, 5, 0));
  // The same forward twice with the same key: identical logits; another step: different ones.
  Tensor ids = sample_ids();
  auto logits = [&](int64_t step) {
    models::LoraDeltas dd = a.training_deltas(a.parameters(), train::dropout_key(1, step, 0));
    return model.forward(ids, nullptr, std::nullopt, std::nullopt, &dd);
  };
  EXPECT_TRUE(identical(logits(3), logits(3)));
  EXPECT_FALSE(identical(logits(3), logits(4)));
  // Dropped fraction and scaling on a large input: within 5 standard errors of p.
  for (double p : {0.1, 0.5}) {
    const int64_t n = 1 << 20;
    Values y = values(dropout(ones({n}, Dtype::F32), p, RandomKey{1234}));
    int64_t dropped = 0;
    for (double v : y) {
      if (v == 0) ++dropped;
      else ASSERT_NEAR(v, 1 / (1 - p), 1e-6);
    }
    EXPECT_NEAR(double(dropped) / n, p, 5 * std::sqrt(p * (1 - p) / n)) << p;
  }
}

// (5) Evaluation and generation never drop: deltas() carries no dropout, evaluate_loss does not
// depend on the configured p, and the validation loss a training run reports is the dropout-free one.
TEST(LoraDropout, EvaluationIgnoresDropout) {
  auto model = tiny();
  lora::Adapter dropped = adapter_with_b(model, 0.5, 6), plain = adapter_with_b(model, 0.0, 6);
  plain.set_parameters(dropped.parameters());
  for (const auto& [name, d] : dropped.deltas()) EXPECT_EQ(d.dropout, 0.0) << name;
  auto val = patterns(6, 1);
  EXPECT_EQ(train::evaluate_loss(model, dropped, val, 4), train::evaluate_loss(model, plain, val, 4));

  auto data = patterns(8, 2);
  train::TrainOptions o;
  o.steps = 2;
  o.batch_size = 4;
  o.shuffle = false;
  o.adamw.lr = 1e-3;
  std::vector<train::StepMetrics> seen;
  lora::Adapter before = adapter_with_b(model, 0.5, 6);
  before.set_parameters(dropped.parameters());
  train::train_lora(model, dropped, data, val, o, [&](const train::StepMetrics& m) { seen.push_back(m); });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.back().val_loss, train::evaluate_loss(model, dropped, val, o.batch_size));
  // ...while the training loss did see dropout: the first step's loss is not the undropped loss of
  // its batch.
  std::vector<train::Example> first(data.begin(), data.begin() + 4);
  EXPECT_GT(std::abs(seen.front().loss - train::evaluate_loss(model, before, first, 4)), 1e-6);
}

// (6) A run with dropout interrupted after its step-3 checkpoint and resumed reproduces the
// uninterrupted run: the masks are a function of (seed, step, micro-batch), not of saved state.
TEST(LoraDropout, ResumeReproducesTheUninterruptedRun) {
  auto model = tiny();
  lora::LoraConfig cfg;
  cfg.target_modules = {"all-linear"};
  cfg.dropout = 0.2;
  auto data = patterns(7, 3);
  train::TrainOptions o;
  o.steps = 6;
  o.batch_size = 2;
  o.grad_accum = 2;
  o.adamw.lr = 3e-3;
  o.seed = 4;
  o.checkpoint_every = 3;
  std::string base = ::testing::TempDir() + "/wick_dropout_resume_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  std::vector<double> full;
  o.out_dir = base + "/full";
  lora::Adapter a = lora::Adapter::init(model, cfg, 3);
  train::train_lora(model, a, data, {}, o, [&](const train::StepMetrics& m) { full.push_back(m.loss); });

  o.out_dir = base + "/broken";
  lora::Adapter b = lora::Adapter::init(model, cfg, 3);
  struct Crash {};
  try {
    train::train_lora(model, b, data, {}, o, [&](const train::StepMetrics& m) {
      if (m.step == 4) throw Crash{};
    });
  } catch (const Crash&) {
  }
  o.resume = true;
  lora::Adapter c = lora::Adapter::init(model, cfg, 77);
  std::vector<double> resumed;
  train::train_lora(model, c, data, {}, o, [&](const train::StepMetrics& m) { resumed.push_back(m.loss); });
  ASSERT_EQ(resumed.size(), 3u);
  for (size_t i = 0; i < resumed.size(); ++i) EXPECT_DOUBLE_EQ(resumed[i], full[3 + i]) << "step " << 4 + i;
  for (size_t i = 0; i < a.parameters().size(); ++i) EXPECT_TRUE(identical(a.parameters()[i], c.parameters()[i]));

  // The same run without dropout takes other steps.
  cfg.dropout = 0;
  o.resume = false;
  o.checkpoint_every = 0;
  o.out_dir.clear();
  lora::Adapter d = lora::Adapter::init(model, cfg, 3);
  std::vector<double> undropped;
  train::train_lora(model, d, data, {}, o, [&](const train::StepMetrics& m) { undropped.push_back(m.loss); });
  // (B starts at 0, so the first step's loss is the same; from the second on they differ.)
  EXPECT_EQ(undropped[0], full[0]);
  EXPECT_NE(undropped[1], full[1]);
  std::filesystem::remove_all(base);
}

TEST(LoraDropout, OutOfRangeIsAnError) {
  auto model = tiny();
  lora::LoraConfig cfg;
  cfg.dropout = 1.0;
  expect_error([&] { lora::Adapter::init(model, cfg, 0); }, {"dropout", "[0, 1)"});
  cfg.dropout = -0.1;
  expect_error([&] { lora::Adapter::init(model, cfg, 0); }, {"dropout", "-0.1"});
  expect_error([] { dropout(ones({2}), 1.0, RandomKey{1}); }, {"dropout", "p must be in [0, 1)"});
}

}  // namespace
