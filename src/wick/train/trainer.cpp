// The LoRA training loop.
#include "wick/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/weights.h"
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

// What, besides the adapter and the optimizer, a checkpoint must hold to continue exactly.
struct LoopState {
  int64_t step = 0;  // steps done
  std::mt19937_64 rng;
  std::vector<size_t> order;
  size_t cursor = 0;
};

namespace fs = std::filesystem;

std::vector<std::pair<int64_t, fs::path>> checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("checkpoint-", 0) == 0 && name.find(".tmp") == std::string::npos) {
      try {
        out.emplace_back(std::stoll(name.substr(11)), e.path());
      } catch (const std::exception&) {
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void save_checkpoint(const std::string& out_dir, const lora::Adapter& adapter, const AdamW& opt, const LoopState& st,
                     int64_t keep) {
  fs::path final_dir = fs::path(out_dir) / ("checkpoint-" + std::to_string(st.step));
  fs::path tmp = fs::path(out_dir) / ("checkpoint-" + std::to_string(st.step) + ".tmp");
  fs::remove_all(tmp);
  adapter.save(tmp.string());
  std::vector<std::vector<float>> data;
  std::vector<io::TensorToWrite> tensors;
  for (size_t i = 0; i < opt.first_moments().size(); ++i) {
    data.push_back(opt.first_moments()[i].to_vector<float>());
    data.push_back(opt.second_moments()[i].to_vector<float>());
  }
  for (size_t i = 0; i < opt.first_moments().size(); ++i)
    for (int which = 0; which < 2; ++which) {
      const auto& d = data[2 * i + which];
      tensors.push_back({(which ? "v." : "m.") + std::to_string(i), io::FileDtype::F32,
                         opt.first_moments()[i].shape(), d.data(), d.size() * sizeof(float)});
    }
  io::save_safetensors((tmp / "optimizer.safetensors").string(), tensors);
  std::ostringstream rng;
  rng << st.rng;
  nlohmann::json state{{"step", st.step}, {"rng", rng.str()}, {"order", st.order}, {"cursor", st.cursor},
                       {"adamw_steps", opt.steps()}};
  std::string text = state.dump();
  io::write_file_atomic((tmp / "trainer_state.json").string(),
                        {{reinterpret_cast<const uint8_t*>(text.data()), text.size()}});
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);  // the checkpoint appears whole or not at all
  auto all = checkpoints(out_dir);
  for (size_t i = 0; i + size_t(std::max<int64_t>(keep, 1)) < all.size(); ++i) fs::remove_all(all[i].second);
}

// Restores the newest checkpoint of out_dir; false when there is none.
bool load_checkpoint(const std::string& out_dir, const models::DecoderModel& model, lora::Adapter& adapter, AdamW& opt,
                     LoopState& st) {
  auto all = checkpoints(out_dir);
  if (all.empty()) return false;
  fs::path dir = all.back().second;
  lora::Adapter loaded = lora::Adapter::load(dir.string(), model);
  WICK_CHECK(loaded.modules() == adapter.modules(), dir.string(), ": the checkpoint's adapter targets other modules");
  adapter.set_parameters(loaded.parameters());
  std::ifstream in(dir / "trainer_state.json");
  nlohmann::json state = nlohmann::json::parse(in, nullptr, false);
  WICK_CHECK(state.is_object() && state.contains("step") && state.contains("rng"), dir.string(),
             "/trainer_state.json is missing or malformed");
  st.step = state["step"];
  std::istringstream rng(state["rng"].get<std::string>());
  rng >> st.rng;
  st.order = state["order"].get<std::vector<size_t>>();
  st.cursor = state["cursor"];
  io::SafeTensors file = io::SafeTensors::open((dir / "optimizer.safetensors").string());
  std::vector<Tensor> m, v;
  const auto& params = adapter.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    m.push_back(models::load_weight(file, "m." + std::to_string(i), params[i].shape(), params[i].dtype(), params[i].device()));
    v.push_back(models::load_weight(file, "v." + std::to_string(i), params[i].shape(), params[i].dtype(), params[i].device()));
  }
  opt.restore(std::move(m), std::move(v), state["adamw_steps"].get<std::vector<int64_t>>());
  return true;
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
  WICK_CHECK(o.checkpoint_every == 0 || !o.out_dir.empty(), "train: checkpoints need an output folder");
  LoopState st;
  st.rng.seed(o.seed);
  st.order.resize(train.size());
  std::iota(st.order.begin(), st.order.end(), 0);
  st.cursor = st.order.size();  // start a new epoch at once
  AdamW optimizer(o.adamw);
  bool resumed = false;
  if (o.resume) {
    WICK_CHECK(!o.out_dir.empty(), "train: --resume needs the output folder of the interrupted run");
    resumed = load_checkpoint(o.out_dir, model, adapter, optimizer, st);
    WICK_CHECK(resumed, "train: --resume found no checkpoint-N folder in ", o.out_dir);
    WICK_CHECK(st.order.size() == train.size(), "train: the checkpoint was made with ", st.order.size(),
               " examples but the data has ", train.size());
  }
  std::ofstream metrics;
  if (!o.out_dir.empty()) {
    std::filesystem::create_directories(o.out_dir);
    std::string path = o.out_dir + "/metrics.jsonl";
    std::vector<std::string> kept;  // on resume, the lines of the steps the checkpoint includes
    if (resumed) {
      std::ifstream old(path);
      for (std::string line; std::getline(old, line);) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("step") && j["step"].get<int64_t>() <= st.step) kept.push_back(line);
      }
    }
    metrics.open(path, std::ios::trunc);
    WICK_CHECK(metrics.good(), "train: cannot write ", path);
    for (const std::string& line : kept) metrics << line << "\n";
  }
  auto next_rows = [&]() {
    std::vector<const Example*> rows;
    while (int64_t(rows.size()) < o.batch_size) {
      if (st.cursor == st.order.size()) {
        if (o.shuffle) std::shuffle(st.order.begin(), st.order.end(), st.rng);
        st.cursor = 0;
      }
      rows.push_back(&train[st.order[st.cursor++]]);
    }
    return rows;
  };
  std::vector<Tensor> params = adapter.parameters();
  for (int64_t step = st.step + 1; step <= o.steps; ++step) {
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
    st.step = step;
    if (o.checkpoint_every > 0 && (step % o.checkpoint_every == 0 || step == o.steps))
      save_checkpoint(o.out_dir, adapter, optimizer, st, o.keep_checkpoints);
    if (on_step) on_step(m);
  }
}

}  // namespace wick::train
