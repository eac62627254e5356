// Packing (wick train --packing): pack_examples fills rows best-fit without splitting or losing an
// example; in a packed row each example gets the loss it has alone (attention kept inside it,
// positions restarted, no target across the boundary), and a training step on packed rows equals
// the step on the same examples padded.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "wick/core/ops.h"
#include "wick/lora/adapter.h"
#include "wick/train/data.h"
#include "wick/train/trainer.h"

using namespace wick;

namespace {

const std::string kModel = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";

// Examples of the given lengths with random ids (labels = ids), lines 1, 2, ...
std::vector<train::Example> examples_of(const std::vector<int>& lengths, uint64_t seed) {
  std::mt19937 rng(seed);
  std::vector<train::Example> out;
  for (size_t i = 0; i < lengths.size(); ++i) {
    train::Example e;
    for (int k = 0; k < lengths[i]; ++k) e.ids.push_back(int32_t(rng() % 256));
    e.labels = e.ids;
    e.line = int64_t(i) + 1;
    out.push_back(e);
  }
  return out;
}

TEST(Packing, RowsHoldEveryExampleOnceWithinTheLength) {
  std::vector<int> lengths = {7, 3, 12, 5, 9, 1, 16, 4, 4, 11, 2, 8};
  auto examples = examples_of(lengths, 1);
  auto rows = train::pack_examples(examples, 16);
  int total = 0;
  for (int n : lengths) total += n;
  EXPECT_EQ(rows.size(), size_t((total + 15) / 16));  // best fit packs these without a spare row
  std::vector<int> seen(examples.size(), 0);
  for (const auto& row : rows) {
    ASSERT_LE(row.ids.size(), 16u);
    ASSERT_FALSE(row.starts.empty());
    EXPECT_EQ(row.starts.front(), 0);
    ASSERT_EQ(row.labels.size(), row.ids.size());
    for (size_t s = 0; s < row.starts.size(); ++s) {
      size_t begin = size_t(row.starts[s]);
      size_t end = s + 1 < row.starts.size() ? size_t(row.starts[s + 1]) : row.ids.size();
      // Which example this is: the one with these ids (random ids make them unique).
      auto it = std::find_if(examples.begin(), examples.end(), [&](const train::Example& e) {
        return e.ids.size() == end - begin && std::equal(e.ids.begin(), e.ids.end(), row.ids.begin() + long(begin));
      });
      ASSERT_NE(it, examples.end());
      ++seen[size_t(it - examples.begin())];
      if (s == 0) EXPECT_EQ(row.line, it->line);
      // Labels as the example's, but the first of every later example, which must not be a
      // target of the example before it.
      for (size_t j = begin; j < end; ++j)
        EXPECT_EQ(row.labels[j], s > 0 && j == begin ? -100 : it->labels[j - begin]);
    }
  }
  for (int n : seen) EXPECT_EQ(n, 1);

  // The same input packs the same way; an example longer than a row, and a packed row, are errors.
  auto again = train::pack_examples(examples, 16);
  ASSERT_EQ(again.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(again[i].ids, rows[i].ids);
  try {
    train::pack_examples(examples, 15);
    ADD_FAILURE() << "an example of 16 tokens packed into rows of 15";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 7 has 16 tokens, more than a row of 15"), std::string::npos) << e.what();
  }
  EXPECT_THROW(train::pack_examples(rows, 16), Error);
}

// Each example's loss in a packed row equals its loss alone: the row's other examples carry no
// targets (labels -100), so the row's mean loss is this example's, computed beside the others.
TEST(Packing, EachExampleInAPackedRowHasTheLossItHasAlone) {
  auto model = models::DecoderModel::load(kModel, Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  lora::Adapter adapter = lora::Adapter::init(model, cfg, 3);
  // B = 0 after init: give the adapter a nonzero update so it takes part.
  std::vector<Tensor> params = adapter.parameters();
  for (Tensor& p : params) p = normal(p.shape(), 0, 0.05, p.dtype(), p.device()).eval();
  adapter.set_parameters(params);
  auto examples = examples_of({9, 4, 14, 6, 3, 11}, 2);
  auto rows = train::pack_examples(examples, 24);
  ASSERT_LT(rows.size(), examples.size());
  for (const auto& row : rows)
    for (size_t s = 0; s < row.starts.size(); ++s) {
      train::Example only = row;
      size_t begin = size_t(row.starts[s]);
      size_t end = s + 1 < row.starts.size() ? size_t(row.starts[s + 1]) : row.ids.size();
      for (size_t j = 0; j < only.labels.size(); ++j)
        if (j < begin || j >= end) only.labels[j] = -100;
      train::Example alone;
      alone.ids.assign(row.ids.begin() + long(begin), row.ids.begin() + long(end));
      alone.labels = alone.ids;
      double packed = train::evaluate_loss(model, adapter, {only}, 1);
      double single = train::evaluate_loss(model, adapter, {alone}, 1);
      EXPECT_NEAR(packed, single, 1e-5 * std::abs(single)) << "example at " << begin << " of a packed row";
    }
}

// One step over all the examples, packed or padded: the same loss and the same gradient (its norm;
// AdamW's first update is about lr times the gradient's sign, too coarse to compare).
TEST(Packing, APackedStepEqualsThePaddedStep) {
  auto model = models::DecoderModel::load(kModel, Device::cpu(), Dtype::F32);
  lora::LoraConfig cfg;
  cfg.r = 4;
  cfg.target_modules = {"all-linear"};
  auto examples = examples_of({9, 4, 14, 6, 3, 11, 7, 2}, 4);
  train::TrainOptions o;
  o.steps = 2;
  o.shuffle = false;
  o.adamw.lr = 1e-2;
  // A batch of every row: one step is one pass over the examples either way.
  auto run = [&](const std::vector<train::Example>& data) {
    o.batch_size = int64_t(data.size());
    lora::Adapter adapter = lora::Adapter::init(model, cfg, 5);
    std::vector<train::StepMetrics> steps;
    train::train_lora(model, adapter, data, {}, o, [&](const train::StepMetrics& m) { steps.push_back(m); });
    return steps;
  };
  auto padded = run(examples);
  auto packed = run(train::pack_examples(examples, 32));
  ASSERT_EQ(padded.size(), 2u);
  ASSERT_EQ(packed.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(packed[i].tokens, padded[i].tokens) << "step " << i + 1;
    EXPECT_NEAR(packed[i].loss, padded[i].loss, 1e-5 * padded[i].loss) << "step " << i + 1;
    EXPECT_NEAR(packed[i].grad_norm, padded[i].grad_norm, 1e-4 * padded[i].grad_norm) << "step " << i + 1;
  }
}

}  // namespace
