// The LoRA training loop.
#include "wick/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/weights.h"
#include "wick/train/loss.h"
#include "wick/train/loss_plot.h"

namespace wick::train {

ExecChoice parse_exec_choice(const std::string& name) {
  if (name == "eager") return ExecChoice::Eager;
  if (name == "lazy") return ExecChoice::Lazy;
  fail("unknown execution mode '", name, "' (expected eager or lazy)");
}

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
  // Packed rows (Example::starts): each token's example and its position within it.
  std::optional<Tensor> segments, positions;
  int64_t tokens = 0;
};

// Right-padded batch of examples (labels -100 and mask 0 on padding). A batch with packed rows
// also gets segments (padding: -1) and positions restarting at each example.
Batch make_batch(const std::vector<const Example*>& rows, Device device) {
  size_t width = 0;
  bool packed = false;
  for (const Example* e : rows) {
    width = std::max(width, e->ids.size());
    packed = packed || !e->starts.empty();
  }
  size_t cells = rows.size() * width;
  std::vector<int64_t> ids(cells, 0), labels(cells, -100), mask(cells, 0);
  std::vector<int64_t> segments(packed ? cells : 0, -1), positions(packed ? cells : 0, 0);
  Batch b;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Example& e = *rows[i];
    size_t segment = 0, start = 0;
    for (size_t j = 0; j < e.ids.size(); ++j) {
      ids[i * width + j] = e.ids[j];
      labels[i * width + j] = e.labels[j];
      mask[i * width + j] = 1;
      ++b.tokens;
      if (!packed) continue;
      while (segment < e.starts.size() && size_t(e.starts[segment]) == j) start = size_t(e.starts[segment++]);
      segments[i * width + j] = int64_t(segment);
      positions[i * width + j] = int64_t(j - start);
    }
  }
  Shape shape{int64_t(rows.size()), int64_t(width)};
  b.ids = Tensor::from_vector(ids, shape, device);
  b.labels = Tensor::from_vector(labels, shape, device);
  b.mask = Tensor::from_vector(mask, shape, device);
  if (packed) {
    b.segments = Tensor::from_vector(segments, shape, device);
    b.positions = Tensor::from_vector(positions, shape, device);
  }
  return b;
}

// `dropout`: the key of a training forward's LoRA dropout masks; none: no dropout (evaluation).
// `fused`: the LM head and the loss in one chunked op (a model whose lm_head is kept as quantized
// blocks has no dense weight for it, and takes the logits). The loss reads the logits in the
// model's dtype (it computes in f32 itself).
Tensor forward_loss_sum(const models::DecoderModel& model, const lora::Adapter& adapter, const std::vector<Tensor>& params,
                        const Batch& b, std::optional<RandomKey> dropout = std::nullopt, bool checkpoint_layers = false,
                        bool fused = true) {
  // The f32 adapter weights in the model's compute dtype, cast in one node (their gradients come
  // back to f32 in one node too) rather than one cast per tensor inside each product.
  std::vector<Tensor> cast = astype_all(params, model.dtype());
  models::LoraDeltas d = dropout ? adapter.training_deltas(cast, *dropout) : adapter.deltas(&cast);
  fused = fused && !model.lm_head_blocks;
  models::ForwardOptions fo{.logits_in_compute_dtype = true,
                            .final_hidden_states = fused,
                            .segments = b.segments,
                            .checkpoint_layers = checkpoint_layers};
  Tensor out = model.forward(b.ids, nullptr, b.mask, b.positions, &d, fo);
  return fused ? causal_lm_loss_sum(out, model.lm_head, b.labels) : causal_lm_loss_sum(out, b.labels);
}

// What, besides the adapter and the optimizer, a checkpoint must hold to continue exactly.
struct LoopState {
  int64_t step = 0;  // steps done
  std::mt19937_64 rng;
  std::vector<size_t> order;
  size_t cursor = 0;
  double best_val_loss = INFINITY;  // the lowest validation loss so far, at best_step (0: none yet)
  int64_t best_step = 0;
  int64_t evals_since_best = 0;  // validation passes in a row without an improvement (early stopping)
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

// Runs `write`, which fills the folder `tmp`; when it fails (a full disk), removes `tmp` and reports
// what could not be written.
template <class Write>
void write_folder_or_clean_up(const fs::path& tmp, const std::string& what, Write&& write) {
  try {
    write();
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    fail("train: writing ", what, " failed: ", e.what());
  }
}

void save_checkpoint(const std::string& out_dir, const lora::Adapter& adapter, const AdamW& opt, const LoopState& st,
                     int64_t keep, const std::string& base_model) {
  fs::path final_dir = fs::path(out_dir) / ("checkpoint-" + std::to_string(st.step));
  fs::path tmp = fs::path(out_dir) / ("checkpoint-" + std::to_string(st.step) + ".tmp");
  write_folder_or_clean_up(tmp, "the checkpoint " + final_dir.string(), [&] {
    fs::remove_all(tmp);
    adapter.save(tmp.string(), base_model);
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
    state["evals_since_best"] = st.evals_since_best;
    if (st.best_step > 0) {
      state["best_step"] = st.best_step;
      state["best_val_loss"] = st.best_val_loss;
    }
    std::string text = state.dump();
    io::write_text_atomic((tmp / "trainer_state.json").string(), text);
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);  // the checkpoint appears whole or not at all
  });
  auto all = checkpoints(out_dir);
  for (size_t i = 0; i + size_t(std::max<int64_t>(keep, 1)) < all.size(); ++i)
    if (all[i].first != st.best_step) fs::remove_all(all[i].second);  // the best validation's checkpoint stays
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
  // States written before best-adapter tracking have none of these.
  st.evals_since_best = state.value("evals_since_best", int64_t(0));
  st.best_step = state.value("best_step", int64_t(0));
  st.best_val_loss = st.best_step > 0 ? state.value("best_val_loss", double(INFINITY)) : INFINITY;
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

// Writes the adapter of the best validation pass to out_dir/best (with best.json: its step and
// loss) through best.tmp, so best/ never holds a half-written adapter.
void save_best(const std::string& out_dir, const lora::Adapter& adapter, const std::string& base_model, int64_t step,
               double val_loss) {
  fs::path dir = fs::path(out_dir) / "best", tmp = fs::path(out_dir) / "best.tmp", old = fs::path(out_dir) / "best.old";
  write_folder_or_clean_up(tmp, "the best adapter " + dir.string(), [&] {
    fs::remove_all(tmp);
    adapter.save(tmp.string(), base_model);
    std::string text = nlohmann::json{{"step", step}, {"val_loss", val_loss}}.dump();
    io::write_text_atomic((tmp / "best.json").string(), text);
  });
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

// "NaN", "inf" or "-inf" (the C library would print "-nan" for some NaNs).
std::string not_finite(double value) { return std::isnan(value) ? "NaN" : value > 0 ? "inf" : "-inf"; }

// For the error that stops a run whose loss is not finite: what of the run is kept.
std::string kept_after_failure(const std::string& out_dir, const LoopState& st) {
  if (out_dir.empty()) return "";
  std::string kept;
  auto all = checkpoints(out_dir);
  if (!all.empty()) kept += "; the last checkpoint is " + all.back().second.string();
  if (st.best_step > 0)
    kept += str_cat("; the best adapter (step ", st.best_step, ") is ", (fs::path(out_dir) / "best").string());
  return kept;
}

// Runs `fn` (best effort) when the scope is left by an exception.
struct OnException {
  std::function<void()> fn;
  int exceptions = std::uncaught_exceptions();
  ~OnException() {
    if (std::uncaught_exceptions() <= exceptions) return;
    try {
      fn();
    } catch (...) {  // the error in flight is the one to report
    }
  }
};

}  // namespace

std::string latest_checkpoint(const std::string& out_dir) {
  auto all = checkpoints(out_dir);
  return all.empty() ? "" : all.back().second.string();
}

RandomKey dropout_key(uint64_t seed, int64_t step, int64_t micro) {
  return fold_in(fold_in(fold_in({seed}, 0x64726f706f7574ULL /* "dropout" */), uint64_t(step)), uint64_t(micro));
}

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

void check_options(const TrainOptions& o, bool has_validation) {
  WICK_CHECK(!(o.activation_checkpointing && o.exec == ExecChoice::Lazy),
             "train: activation checkpointing runs eager steps; it cannot be combined with lazy execution");
  WICK_CHECK(o.early_stopping_patience >= 0 && o.early_stopping_delta >= 0,
             "train: --early-stopping-patience and --early-stopping-delta must not be negative");
  if (o.early_stopping_patience > 0) {
    WICK_CHECK(has_validation, "train: --early-stopping-patience needs validation data (--validation)");
    WICK_CHECK(o.eval_every > 0, "train: --early-stopping-patience needs validation passes during training (--eval-every N)");
  }
}

namespace {

TrainResult train_loop(const models::DecoderModel& model, lora::Adapter& adapter, const std::vector<Example>& train,
                       const std::vector<Example>& validation, const TrainOptions& o,
                       const std::function<void(const StepMetrics&)>& on_step) {
  WICK_CHECK(!train.empty(), "train: no training examples");
  WICK_CHECK(o.steps > 0 && o.batch_size > 0 && o.grad_accum > 0, "train: steps, batch size and grad accumulation must be positive");
  WICK_CHECK((o.checkpoint_every == 0 && o.interrupt == nullptr) || !o.out_dir.empty(),
             "train: checkpoints need an output folder");
  check_options(o, !validation.empty());
  const int ranks = o.group ? o.group->size() : 1, rank = o.group ? o.group->rank() : 0;
  const bool lead = rank == 0;  // the rank that writes and reports
  // Sums over the group (the values themselves without one).
  auto group_sum = [&](std::vector<double> values) {
    if (o.group) o.group->all_reduce_sum(values);
    return values;
  };
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
  LossHistory history;  // for loss.svg
  auto plot = [&] {
    if (o.out_dir.empty() || !lead) return;
    history.best_step = st.best_step;
    write_loss_svg(o.out_dir + "/loss.svg", history);
  };
  OnException plot_on_error{plot};
  std::ofstream metrics;
  if (!o.out_dir.empty() && lead) {
    std::filesystem::create_directories(o.out_dir);
    std::string path = o.out_dir + "/metrics.jsonl";
    std::vector<std::string> kept;  // on resume, the lines of the steps the checkpoint includes
    if (resumed) {
      std::ifstream old(path);
      for (std::string line; std::getline(old, line);) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("step") && j["step"].get<int64_t>() <= st.step) {
          kept.push_back(line);
          int64_t step = j["step"];
          if (j.contains("loss") && j["loss"].is_number()) history.train.emplace_back(step, j["loss"].get<double>());
          if (j.contains("val_loss") && j["val_loss"].is_number())
            history.validation.emplace_back(step, j["val_loss"].get<double>());
        }
      }
    }
    metrics.open(path, std::ios::trunc);
    WICK_CHECK(metrics.good(), "train: cannot write ", path, ": ", std::strerror(errno));
    for (const std::string& line : kept) metrics << line << "\n";
  }
  std::string metrics_path = o.out_dir + "/metrics.jsonl";
  auto check_metrics = [&] {
    WICK_CHECK(metrics.flush().good(), "train: writing ", metrics_path, " failed: ", std::strerror(errno));
  };
  if (metrics.is_open()) check_metrics();
  auto next_rows = [&]() {  // this rank's share of the next global batch
    std::vector<const Example*> rows;
    while (int64_t(rows.size()) < o.batch_size * ranks) {
      if (st.cursor == st.order.size()) {
        if (o.shuffle) std::shuffle(st.order.begin(), st.order.end(), st.rng);
        st.cursor = 0;
      }
      rows.push_back(&train[st.order[st.cursor++]]);
    }
    Shard share = shard_of(int64_t(rows.size()), rank, ranks);
    return std::vector<const Example*>(rows.begin() + share.begin, rows.begin() + share.end);
  };
  TrainResult result;
  auto stop_reason = [&] {
    return str_cat("early stopping: the validation loss has not improved on ", st.best_val_loss, " (step ", st.best_step,
                   ")", o.early_stopping_delta > 0 ? str_cat(" by more than ", o.early_stopping_delta) : "", " in ",
                   st.evals_since_best, " validation passes");
  };
  bool stop = o.early_stopping_patience > 0 && st.evals_since_best >= o.early_stopping_patience;  // resumed after a stop
  if (stop && st.step < o.steps) {
    result.stopped_early = true;
    result.stop_reason = stop_reason();
  }
  std::vector<Tensor> params = adapter.parameters();
  bool lazy = o.exec == ExecChoice::Lazy;
  for (int64_t step = st.step + 1; step <= o.steps && !stop; ++step) {
    auto start = std::chrono::steady_clock::now();
    std::vector<Batch> micro;
    int64_t targets = 0, tokens = 0;
    for (int64_t m = 0; m < o.grad_accum; ++m) {
      micro.push_back(make_batch(next_rows(), model.device()));
      targets += count_targets(micro.back().labels);
      tokens += micro.back().tokens;
    }
    const std::vector<double> counts = group_sum({double(targets), double(tokens)});  // the loss is a mean over them
    targets = int64_t(counts[0]);
    tokens = int64_t(counts[1]);
    // Lazy: each micro-batch's forward and backward are recorded, then evaluated as one graph that
    // frees every activation after its last use (less memory than eager, which keeps the forward's
    // tensors until the backward reaches them).
    std::optional<ExecModeScope> mode;
    if (lazy) mode.emplace(ExecMode::Lazy);
    // The loss is the mean over every target token of the accumulated batch.
    std::vector<Tensor> grads;
    double loss = 0;
    for (size_t mi = 0; mi < micro.size(); ++mi) {
      const Batch& b = micro[mi];
      RandomKey key = dropout_key(o.seed, step, int64_t(mi));
      auto [value, g] = value_and_grad(
          [&](const std::vector<Tensor>& p) {
            return forward_loss_sum(model, adapter, p, b, key, o.activation_checkpointing, o.fused_loss) /
                   double(targets);
          },
          params);
      if (lazy) {
        std::vector<Tensor> all = g;
        all.push_back(value);
        eval(all);
      }
      loss += value.item<double>();
      if (grads.empty()) {
        grads = g;
      } else {
        for (size_t i = 0; i < g.size(); ++i) grads[i] = grads[i] + g[i];
      }
    }
    if (o.group) o.group->all_reduce_sum(grads);
    loss = group_sum({loss})[0];
    WICK_CHECK(std::isfinite(loss), "train: the loss became ", not_finite(loss), " at step ", step,
               "; stopped before its update (lower the learning rate or add warm-up)", kept_after_failure(o.out_dir, st));
    Tensor norm_sq = zeros({}, Dtype::F64, model.device());
    for (const Tensor& g : grads) norm_sq = norm_sq + sum(astype(g, Dtype::F64) * astype(g, Dtype::F64));
    double grad_norm = std::sqrt(norm_sq.item<double>());  // one wait for the device per step
    WICK_CHECK(std::isfinite(grad_norm), "train: the gradient norm became ", not_finite(grad_norm), " at step ", step,
               "; stopped before its update (lower the learning rate or add warm-up)", kept_after_failure(o.out_dir, st));
    if (o.max_grad_norm > 0 && grad_norm > o.max_grad_norm) {
      double scale = o.max_grad_norm / (grad_norm + 1e-6);
      for (Tensor& g : grads) g = g * scale;
    }
    double lr = learning_rate(o.schedule, o.adamw.lr, step, o.steps, o.warmup);
    optimizer.step(params, grads, lr);
    if (lazy) eval(params);
    mode.reset();
    adapter.set_parameters(params);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    StepMetrics m{step, loss, lr, grad_norm, double(tokens) / std::max(secs, 1e-9), tokens};
    bool evaluate = !validation.empty() && ((o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps);
    if (evaluate) {
      m.val_loss = group_sum({lead ? evaluate_loss(model, adapter, validation, o.batch_size) : 0.0})[0];
      if (std::isfinite(m.val_loss)) {
        bool improved = m.val_loss < st.best_val_loss - o.early_stopping_delta;
        st.evals_since_best = improved ? 0 : st.evals_since_best + 1;
        m.best = m.val_loss < st.best_val_loss;
        if (m.best) {
          st.best_val_loss = m.val_loss;
          st.best_step = step;
        }
      }
    }
    history.train.emplace_back(step, loss);
    if (evaluate) history.validation.emplace_back(step, m.val_loss);
    if (metrics.is_open()) {
      nlohmann::json j{{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens", tokens},
                       {"tokens_per_second", m.tokens_per_second}};
      if (evaluate) j["val_loss"] = m.val_loss;
      if (m.best) j["best"] = true;
      metrics << j.dump() << "\n";
      check_metrics();
    }
    WICK_CHECK(!evaluate || std::isfinite(m.val_loss), "train: the validation loss became ", not_finite(m.val_loss),
               " after the update of step ", step, "; that update is not saved (lower the learning rate or add warm-up)",
               kept_after_failure(o.out_dir, st));
    if (m.best && !o.out_dir.empty() && lead) save_best(o.out_dir, adapter, o.base_model, step, m.val_loss);
    st.step = step;
    stop = evaluate && o.early_stopping_patience > 0 && st.evals_since_best >= o.early_stopping_patience;
    if (stop && step < o.steps) {
      result.stopped_early = true;
      result.stop_reason = stop_reason();
    }
    bool interrupted = o.interrupt && o.interrupt->load() && step < o.steps && !stop;
    interrupted = group_sum({interrupted ? 1.0 : 0.0})[0] > 0;  // one rank's signal stops them all after this step
    if ((o.checkpoint_every > 0 && (step % o.checkpoint_every == 0 || step == o.steps || stop)) || interrupted) {
      if (lead) save_checkpoint(o.out_dir, adapter, optimizer, st, o.keep_checkpoints, o.base_model);
      plot();
    }
    if (on_step && lead) on_step(m);
    if (interrupted) {
      result.interrupted = true;
      break;
    }
  }
  plot();
  result.steps = st.step;
  if (!o.out_dir.empty()) result.checkpoint = latest_checkpoint(o.out_dir);
  result.best_step = st.best_step;
  result.best_val_loss = st.best_step > 0 ? st.best_val_loss : 0;
  return result;
}

}  // namespace

TrainResult train_lora(const models::DecoderModel& model, lora::Adapter& adapter, const std::vector<Example>& train,
                       const std::vector<Example>& validation, const TrainOptions& o,
                       const std::function<void(const StepMetrics&)>& on_step) {
  try {
    return train_loop(model, adapter, train, validation, o, on_step);
  } catch (const std::exception& e) {
    // A rank that stops stops the others at their next sum instead of leaving them waiting.
    if (o.group) o.group->abandon(e.what());
    throw;
  }
}

}  // namespace wick::train
