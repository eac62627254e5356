// The LoRA training loop.
#include "wick/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/train/loss.h"

namespace wick::train {

Schedule parse_schedule(const std::string& name) {
  if (name == "constant") return Schedule::Constant;
  if (name == "linear") return Schedule::Linear;
  if (name == "cosine") return Schedule::Cosine;
  fail("unknown schedule '", name, "' (expected constant, linear or cosine)");
}

double learning_rate(Schedule schedule, double base, int64_t step, int64_t total, int64_t warmup) {
  // As transformers' schedules: the first update uses step 0 (so warm-up starts at a rate of 0).
  int64_t s = step - 1;
  if (s < warmup) return base * double(s) / double(std::max<int64_t>(warmup, 1));
  double progress = double(s - warmup) / double(std::max<int64_t>(total - warmup, 1));
  switch (schedule) {
    case Schedule::Constant: return base;
    case Schedule::Linear: return base * std::max(0.0, 1.0 - progress);
    case Schedule::Cosine: return base * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return base;
}

namespace {

struct Batch {
  Tensor ids, labels, mask;
  int64_t tokens = 0;
};

// Right-padded batch of examples (labels -100 and mask 0 on padding).
Batch make_batch(const std::vector<const Example*>& rows, Device device) {
  size_t width = 0;
  for (const Example* e : rows) width = std::max(width, e->ids.size());
  std::vector<int64_t> ids(rows.size() * width, 0), labels(rows.size() * width, -100), mask(rows.size() * width, 0);
  Batch b;
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i]->ids.size(); ++j) {
      ids[i * width + j] = rows[i]->ids[j];
      labels[i * width + j] = rows[i]->labels[j];
      mask[i * width + j] = 1;
      ++b.tokens;
    }
  Shape shape{int64_t(rows.size()), int64_t(width)};
  b.ids = Tensor::from_vector(ids, shape, device);
  b.labels = Tensor::from_vector(labels, shape, device);
  b.mask = Tensor::from_vector(mask, shape, device);
  return b;
}

Tensor forward_loss_sum(const models::DecoderModel& model, const lora::Adapter& adapter, const std::vector<Tensor>& params,
                        const Batch& b) {
  models::LoraDeltas d = adapter.deltas(&params);
  return causal_lm_loss_sum(model.forward(b.ids, nullptr, b.mask, std::nullopt, &d), b.labels);
}

}  // namespace

double evaluate_loss(const models::DecoderModel& model, const lora::Adapter& adapter, const std::vector<Example>& examples,
                     int64_t batch_size) {
  NoGradGuard no_grad;
  double total = 0;
  int64_t targets = 0;
  for (size_t i = 0; i < examples.size(); i += size_t(batch_size)) {
    std::vector<const Example*> rows;
    for (size_t k = i; k < std::min(examples.size(), i + size_t(batch_size)); ++k) rows.push_back(&examples[k]);
    Batch b = make_batch(rows, model.device());
    total += forward_loss_sum(model, adapter, adapter.parameters(), b).item<double>();
    targets += count_targets(b.labels);
  }
  return total / double(std::max<int64_t>(targets, 1));
}

void train_lora(const models::DecoderModel& model, lora::Adapter& adapter, const std::vector<Example>& train,
                const std::vector<Example>& validation, const TrainOptions& o,
                const std::function<void(const StepMetrics&)>& on_step) {
  WICK_CHECK(!train.empty(), "train: no training examples");
  WICK_CHECK(o.steps > 0 && o.batch_size > 0 && o.grad_accum > 0, "train: steps, batch size and grad accumulation must be positive");
  std::ofstream metrics;
  if (!o.out_dir.empty()) {
    std::filesystem::create_directories(o.out_dir);
    metrics.open(o.out_dir + "/metrics.jsonl");
    WICK_CHECK(metrics.good(), "train: cannot write ", o.out_dir, "/metrics.jsonl");
  }
  std::mt19937_64 rng(o.seed);
  std::vector<size_t> order(train.size());
  std::iota(order.begin(), order.end(), 0);
  size_t cursor = order.size();  // start a new epoch at once
  auto next_rows = [&]() {
    std::vector<const Example*> rows;
    while (int64_t(rows.size()) < o.batch_size) {
      if (cursor == order.size()) {
        if (o.shuffle) std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      rows.push_back(&train[order[cursor++]]);
    }
    return rows;
  };
  AdamW optimizer(o.adamw);
  std::vector<Tensor> params = adapter.parameters();
  for (int64_t step = 1; step <= o.steps; ++step) {
    auto start = std::chrono::steady_clock::now();
    std::vector<Batch> micro;
    int64_t targets = 0, tokens = 0;
    for (int64_t m = 0; m < o.grad_accum; ++m) {
      micro.push_back(make_batch(next_rows(), model.device()));
      targets += count_targets(micro.back().labels);
      tokens += micro.back().tokens;
    }
    // The loss is the mean over every target token of the accumulated batch.
    std::vector<Tensor> grads;
    double loss = 0;
    for (const Batch& b : micro) {
      auto [value, g] = value_and_grad(
          [&](const std::vector<Tensor>& p) { return forward_loss_sum(model, adapter, p, b) / double(targets); }, params);
      loss += value.item<double>();
      if (grads.empty()) {
        grads = g;
      } else {
        for (size_t i = 0; i < g.size(); ++i) grads[i] = grads[i] + g[i];
      }
    }
    WICK_CHECK(std::isfinite(loss), "train: the loss became ", loss, " at step ", step,
               " (lower the learning rate; the last saved adapter is kept)");
    double norm_sq = 0;
    for (const Tensor& g : grads) norm_sq += sum(astype(g, Dtype::F64) * astype(g, Dtype::F64)).item<double>();
    double grad_norm = std::sqrt(norm_sq);
    if (o.max_grad_norm > 0 && grad_norm > o.max_grad_norm) {
      double scale = o.max_grad_norm / (grad_norm + 1e-6);
      for (Tensor& g : grads) g = g * scale;
    }
    double lr = learning_rate(o.schedule, o.adamw.lr, step, o.steps, o.warmup);
    optimizer.step(params, grads, lr);
    adapter.set_parameters(params);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    StepMetrics m{step, loss, lr, grad_norm, double(tokens) / std::max(secs, 1e-9), tokens};
    bool evaluate = !validation.empty() && ((o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps);
    if (evaluate) m.val_loss = evaluate_loss(model, adapter, validation, o.batch_size);
    if (metrics.is_open()) {
      nlohmann::json j{{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens", tokens},
                       {"tokens_per_second", m.tokens_per_second}};
      if (evaluate) j["val_loss"] = m.val_loss;
      metrics << j.dump() << "\n";
      metrics.flush();
    }
    if (on_step) on_step(m);
  }
}

}  // namespace wick::train
