// sample_tokens on the CPU: the same choices and log-probabilities as models::Sampler given the same
// uniform draws (many option combinations, ties included), the distribution transformers' logits
// processors give (goldens of scripts/golden/sampling_golden.py, probed draw by draw), and clear
// errors for bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/models/sampler.h"

namespace wick {
namespace {

using models::Sampler;
using models::SamplingOptions;

struct Row {
  std::vector<float> logits;
  SamplingOptions options;
  std::vector<int32_t> history;  // without padding
  double u = 0;
};

// The op over a batch of rows; history rows padded with -1 to the longest.
std::vector<double> run_op(const std::vector<Row>& rows, Device device = Device::cpu()) {
  int64_t r = int64_t(rows.size()), v = rows.empty() ? 1 : int64_t(rows[0].logits.size());
  size_t h = 0;
  for (const Row& row : rows) h = std::max(h, row.history.size());
  std::vector<float> logits;
  std::vector<double> params, uniforms;
  std::vector<int32_t> history;
  for (const Row& row : rows) {
    logits.insert(logits.end(), row.logits.begin(), row.logits.end());
    const SamplingOptions& o = row.options;
    params.insert(params.end(), {o.temperature, double(o.top_k), o.top_p, o.min_p, o.repetition_penalty});
    history.insert(history.end(), row.history.begin(), row.history.end());
    history.insert(history.end(), h - row.history.size(), -1);
    uniforms.push_back(row.u);
  }
  Tensor out =
      sample_tokens(Tensor::from_vector(logits, {r, v}, device), Tensor::from_vector(params, {r, 5}, device),
                    Tensor::from_vector(history, {r, int64_t(h)}, device), Tensor::from_vector(uniforms, {r}, device));
  EXPECT_EQ(out.shape(), (Shape{r, 2}));
  EXPECT_EQ(out.dtype(), Dtype::F64);
  return out.to_vector<double>();
}

std::vector<float> random_logits(std::mt19937_64& rng, int64_t v, double scale, bool ties) {
  std::normal_distribution<double> normal(0, scale);
  std::vector<float> l(static_cast<size_t>(v));
  for (float& x : l) x = ties ? float(std::round(normal(rng) * 2) / 2) : float(normal(rng));
  return l;
}

std::vector<int32_t> random_history(std::mt19937_64& rng, int64_t v, int n) {
  std::uniform_int_distribution<int32_t> id(0, int32_t(std::min<int64_t>(v, 40)) - 1);  // small ids: repeats
  std::vector<int32_t> h;
  for (int i = 0; i < n; ++i) h.push_back(id(rng));
  return h;
}

std::vector<SamplingOptions> option_grid() {
  std::vector<SamplingOptions> grid;
  for (double t : {0.0, 0.6, 1.0, 1.7})
    for (int64_t k : {0, 1, 5, 50})
      for (double p : {1.0, 0.9, 0.3, 1e-6})
        for (double m : {0.0, 0.05, 0.6})
          for (double penalty : {1.0, 1.3, 0.8}) {
            SamplingOptions o;
            o.temperature = t;
            o.top_k = k;
            o.top_p = p;
            o.min_p = m;
            o.repetition_penalty = penalty;
            grid.push_back(o);
          }
  return grid;
}

// Each option set draws with a Sampler seeded like the op's uniforms: the same u for both.
TEST(SampleTokens, MatchesTheHostSamplerDrawForDraw) {
  std::mt19937_64 rng(7);
  std::vector<SamplingOptions> grid = option_grid();
  int compared = 0;
  for (int64_t v : {1, 2, 7, 100, 1000}) {
    for (bool ties : {false, true}) {
      std::vector<Row> rows;
      std::vector<int32_t> host_ids;
      std::vector<double> host_logprobs;
      for (size_t g = 0; g < grid.size(); ++g) {
        SamplingOptions o = grid[g];
        o.seed = 1000 + g;
        Row row{random_logits(rng, v, 3.0, ties), o, random_history(rng, v, int(g % 9)), 0};
        Sampler sampler(o);
        std::mt19937_64 draws(o.seed);
        for (int draw = 0; draw < 3; ++draw) {
          double logprob = 0;
          host_ids.push_back(sampler.sample(row.logits, row.history, nullptr, &logprob));
          host_logprobs.push_back(logprob);
          row.u = o.temperature == 0 ? 0.5 : std::uniform_real_distribution<double>(0.0, 1.0)(draws);
          rows.push_back(row);
        }
      }
      std::vector<double> out = run_op(rows);
      for (size_t i = 0; i < rows.size(); ++i) {
        const SamplingOptions& o = rows[i].options;
        std::string what = str_cat("v=", v, " ties=", ties, " t=", o.temperature, " k=", o.top_k, " p=", o.top_p,
                                   " min_p=", o.min_p, " penalty=", o.repetition_penalty, " u=", rows[i].u);
        ASSERT_EQ(out[2 * i], double(host_ids[i])) << what;
        ASSERT_NEAR(out[2 * i + 1], host_logprobs[i], 1e-9) << what;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 5 * 2 * int(grid.size()) * 3);
}

TEST(SampleTokens, LargeVocabularyMatchesTheHostSampler) {
  std::mt19937_64 rng(11);
  const int64_t v = 151936;
  std::vector<SamplingOptions> options(6);
  options[0].temperature = 0;
  options[0].repetition_penalty = 1.2;
  options[1].temperature = 0.7;
  options[1].top_k = 40;
  options[1].top_p = 0.95;
  options[2].top_p = 0.9;
  options[3].min_p = 0.1;
  options[3].repetition_penalty = 1.1;
  options[4].temperature = 1.3;  // no filter: the whole vocabulary
  options[5].top_k = 20000;
  options[5].min_p = 0.001;
  std::vector<Row> rows;
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
  for (size_t i = 0; i < options.size(); ++i) {
    options[i].seed = 50 + i;
    Row row{random_logits(rng, v, 2.5, false), options[i], random_history(rng, v, 30), 0};
    Sampler sampler(options[i]);
    double logprob = 0;
    ids.push_back(sampler.sample(row.logits, row.history, nullptr, &logprob));
    logprobs.push_back(logprob);
    std::mt19937_64 draws(options[i].seed);
    row.u = options[i].temperature == 0 ? 0.0 : std::uniform_real_distribution<double>(0.0, 1.0)(draws);
    rows.push_back(row);
  }
  std::vector<double> out = run_op(rows);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(out[2 * i], double(ids[i])) << "row " << i;
    EXPECT_NEAR(out[2 * i + 1], logprobs[i], 1e-9) << "row " << i;
  }
}

// The goldens hold transformers' filtered distribution p. For every token with p > 1e-5 a draw u
// in the middle of its cumulative interval must choose it, with log-probability log p; tokens
// transformers filters out are never reached (they would shift the intervals).
TEST(SampleTokens, FollowsTransformersLogitsProcessors) {
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/sampling_golden.json");
  ASSERT_TRUE(in.good()) << "missing tests/data/sampling_golden.json";
  nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 7u);
  int probes = 0;
  for (const auto& c : cases) {
    const auto& opt = c["options"];
    SamplingOptions o;
    o.repetition_penalty = opt.value("repetition_penalty", 1.0);
    o.temperature = opt.value("temperature", 1.0);
    o.top_k = opt.value("top_k", 0);
    o.top_p = opt.value("top_p", 1.0);
    o.min_p = opt.value("min_p", 0.0);
    std::vector<float> logits = c["logits"].get<std::vector<float>>();
    std::vector<int32_t> history = c["history"].get<std::vector<int32_t>>();
    std::vector<double> p = c["probabilities"].get<std::vector<double>>();
    std::vector<Row> rows;
    std::vector<size_t> want;
    double cumulative = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] > 1e-5) {
        rows.push_back(Row{logits, o, history, cumulative + p[i] / 2});
        want.push_back(i);
      }
      cumulative += p[i];
    }
    std::vector<double> out = run_op(rows);
    for (size_t j = 0; j < rows.size(); ++j) {
      EXPECT_EQ(out[2 * j], double(want[j])) << opt.dump() << " u=" << rows[j].u;
      EXPECT_NEAR(out[2 * j + 1], std::log(p[want[j]]), 1e-5) << opt.dump() << " token " << want[j];
      ++probes;
    }
    if (!opt.contains("temperature") && !opt.contains("top_k") && !opt.contains("top_p") && !opt.contains("min_p")) {
      // Only the penalty: greedy takes the most likely token of the same distribution.
      SamplingOptions g = o;
      g.temperature = 0;
      std::vector<double> greedy = run_op({Row{logits, g, history, 0}});
      size_t best = size_t(std::max_element(p.begin(), p.end()) - p.begin());
      EXPECT_EQ(greedy[0], double(best));
      EXPECT_NEAR(greedy[1], std::log(p[best]), 1e-5);
    }
  }
  EXPECT_GT(probes, 50);
}

TEST(SampleTokens, RowsAreIndependent) {
  std::mt19937_64 rng(3);
  std::vector<SamplingOptions> grid = option_grid();
  std::vector<Row> rows;
  for (int i = 0; i < 24; ++i) {
    Row row{random_logits(rng, 300, 2.0, false), grid[(size_t(i) * 37) % grid.size()], random_history(rng, 300, i % 5),
            std::uniform_real_distribution<double>(0.0, 1.0)(rng)};
    rows.push_back(row);
  }
  std::vector<double> batch = run_op(rows);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<double> single = run_op({rows[i]});
    EXPECT_EQ(batch[2 * i], single[0]) << "row " << i;
    EXPECT_EQ(batch[2 * i + 1], single[1]) << "row " << i;
  }
  EXPECT_EQ(run_op({}).size(), 0u);
}

TEST(SampleTokens, MaskedTokensAreNeverChosen) {
  std::vector<float> logits{-INFINITY, 1.0f, -INFINITY, 0.5f, -INFINITY};
  SamplingOptions o;
  for (double u : {0.0, 0.3, 0.9999}) {
    std::vector<double> out = run_op({Row{logits, o, {}, u}});
    EXPECT_TRUE(out[0] == 1 || out[0] == 3) << u;
  }
  o.temperature = 0;
  EXPECT_EQ(run_op({Row{logits, o, {}, 0}})[0], 1.0);
}

// Wrong shapes, dtypes or values raise errors that name what is wrong.
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning \"" << needle << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(SampleTokens, BadInputsAreNamed) {
  Tensor logits = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor params = Tensor::from_vector(std::vector<double>{1, 0, 1, 0, 1, 0, 0, 1, 0, 1}, {2, 5});
  Tensor history = Tensor::from_vector(std::vector<int32_t>{0, -1, 2, 1}, {2, 2});
  Tensor uniforms = Tensor::from_vector(std::vector<double>{0.5, 0.5}, {2});
  EXPECT_EQ(sample_tokens(logits, params, history, uniforms).shape(), (Shape{2, 2}));
  expect_error([&] { sample_tokens(reshape(logits, {6}), params, history, uniforms); }, "logits must be [rows, vocab]");
  expect_error([&] { sample_tokens(astype(logits, Dtype::F64), params, history, uniforms); }, "logits must be f32");
  expect_error([&] { sample_tokens(logits, astype(params, Dtype::F32), history, uniforms); }, "params must be f64");
  expect_error([&] { sample_tokens(logits, reshape(params, {5, 2}), history, uniforms); }, "params must be [2, 5]");
  expect_error([&] { sample_tokens(logits, params, astype(history, Dtype::I64), uniforms); }, "history must be i32");
  expect_error([&] { sample_tokens(logits, params, reshape(history, {4}), uniforms); }, "history must be [2, H]");
  expect_error([&] { sample_tokens(logits, params, history, astype(uniforms, Dtype::F32)); }, "uniforms must be f64");
  expect_error([&] { sample_tokens(logits, params, history, zeros({3}, Dtype::F64)); }, "uniforms must be [2]");
  expect_error([&] { sample_tokens(zeros({2, 0}), params, history, uniforms); }, "empty vocabulary");

  auto with_param = [&](int column, double value) {
    std::vector<double> p = params.to_vector<double>();
    p[5 + size_t(column)] = value;
    return Tensor::from_vector(p, {2, 5});
  };
  expect_error([&] { sample_tokens(logits, with_param(kSampleTemperature, -1), history, uniforms); },
               "row 1: temperature must be >= 0");
  expect_error([&] { sample_tokens(logits, with_param(kSampleTemperature, INFINITY), history, uniforms); },
               "temperature must be >= 0 and finite");
  expect_error([&] { sample_tokens(logits, with_param(kSampleTopK, 2.5), history, uniforms); },
               "top_k must be a non-negative integer, got 2.5");
  expect_error([&] { sample_tokens(logits, with_param(kSampleTopK, -1), history, uniforms); }, "top_k");
  expect_error([&] { sample_tokens(logits, with_param(kSampleTopP, 0), history, uniforms); },
               "top_p must be in (0, 1]");
  expect_error([&] { sample_tokens(logits, with_param(kSampleTopP, NAN), history, uniforms); }, "top_p");
  expect_error([&] { sample_tokens(logits, with_param(kSampleMinP, 1.5), history, uniforms); },
               "min_p must be in [0, 1]");
  expect_error([&] { sample_tokens(logits, with_param(kSampleRepetitionPenalty, 0), history, uniforms); },
               "repetition_penalty must be > 0");
  Tensor sampled = with_param(kSampleTemperature, 0.7);
  expect_error(
      [&] {
        sample_tokens(logits, sampled, history, Tensor::from_vector(std::vector<double>{0.5, 1.0}, {2}));
      },
      "row 1: uniforms must be in [0, 1)");
  // A greedy row does not read its uniform.
  EXPECT_NO_THROW(sample_tokens(logits, params, history, Tensor::from_vector(std::vector<double>{0.5, 7.0}, {2})));
  expect_error(
      [&] {
        sample_tokens(logits, params, Tensor::from_vector(std::vector<int32_t>{0, 3, 0, 0}, {2, 2}), uniforms);
      },
      "row 0: history holds id 3, outside [0, 3)");
  expect_error(
      [&] {
        sample_tokens(logits, params, Tensor::from_vector(std::vector<int32_t>{0, 0, -2, 0}, {2, 2}), uniforms);
      },
      "history holds id -2");
  expect_error(
      [&] {
        sample_tokens(Tensor::from_vector(std::vector<float>{1, NAN, 3, 4, 5, 6}, {2, 3}), params, history, uniforms);
      },
      "row 0: logits hold nan at column 1");
  expect_error(
      [&] {
        sample_tokens(Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, INFINITY}, {2, 3}), params, history,
                      uniforms);
      },
      "logits hold inf at column 2");
  expect_error(
      [&] {
        sample_tokens(Tensor::from_vector(std::vector<float>{1, 2, 3, -INFINITY, -INFINITY, -INFINITY}, {2, 3}), params,
                      history, uniforms);
      },
      "row 1: no token has a finite logit");
  expect_error([&] { sample_tokens(logits, with_param(kSampleTemperature, 1e-310), history, uniforms); },
               "overflow to infinity");
}

// Sampling has no derivative: differentiating through its output is an error, not a silent zero.
TEST(SampleTokens, HasNoGradient) {
  Tensor logits = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  Tensor params = Tensor::from_vector(std::vector<double>{1, 0, 1, 0, 1}, {1, 5});
  Tensor history = zeros({1, 0}, Dtype::I32);
  Tensor uniforms = Tensor::from_vector(std::vector<double>{0.5}, {1});
  expect_error(
      [&] {
        grad([&](const std::vector<Tensor>& x) { return sum(sample_tokens(x[0], params, history, uniforms)); },
             {logits});
      },
      "sample_tokens: no gradient");
}

}  // namespace
}  // namespace wick
