// BenchTargets over DecoderModel::forward and over the inference runtime.
#include "wick/cli/bench_target.h"

#include <optional>

#include "wick/base/error.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/core/storage.h"
#include "wick/lora/adapter.h"
#include "wick/runtime/decoder_runner.h"

namespace wick::cli {

namespace {

Tensor ids_tensor(const std::vector<std::vector<int32_t>>& rows, size_t begin, size_t end, Device device) {
  std::vector<int64_t> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin() + ptrdiff_t(begin), row.begin() + ptrdiff_t(end));
  return Tensor::from_vector(flat, {int64_t(rows.size()), int64_t(end - begin)}, device);
}

class ForwardBenchTarget : public BenchTarget {
 public:
  explicit ForwardBenchTarget(const models::DecoderModel& model) : model_(model) {}

  void prefill(const std::vector<int32_t>& prompt) override {
    WICK_CHECK(!prompt.empty(), "bench: a prefill needs at least one token");
    NoGradGuard no_grad;
    models::KVCache cache = model_.make_cache(1, int64_t(prompt.size()));
    model_.forward(ids_tensor({prompt}, 0, prompt.size(), model_.device()), &cache);
    synchronize(model_.device());
  }

  void prepare_decode(const std::vector<std::vector<int32_t>>& sequences, int64_t steps) override {
    WICK_CHECK(!sequences.empty() && steps > 0, "bench: a decode test needs sequences and steps");
    size_t context = sequences[0].size() - 1;
    for (const auto& s : sequences)
      WICK_CHECK(s.size() == context + 1, "bench: the sequences of a batch differ in length");
    NoGradGuard no_grad;
    cache_ = model_.make_cache(int64_t(sequences.size()), int64_t(context) + steps);
    if (context > 0) model_.forward(ids_tensor(sequences, 0, context, model_.device()), &*cache_);
    next_ = ids_tensor(sequences, context, context + 1, model_.device());
    steps_ = steps;
    synchronize(model_.device());
  }

  void decode(int64_t steps) override {
    WICK_CHECK(cache_ && steps == steps_, "bench: decode(", steps, ") without prepare_decode for as many steps");
    NoGradGuard no_grad;
    for (int64_t i = 0; i < steps; ++i) {
      Tensor logits = model_.forward(next_, &*cache_);
      next_ = argmax(narrow(logits, 1, logits.shape(1) - 1, 1), -1);  // [batch, 1]
      next_.to_vector<int64_t>();  // the host sees every token; this also waits for the device
    }
    cache_.reset();
  }

 private:
  const models::DecoderModel& model_;
  std::optional<models::KVCache> cache_;
  Tensor next_;
  int64_t steps_ = 0;
};

class RuntimeBenchTarget : public BenchTarget {
 public:
  RuntimeBenchTarget(models::DecoderModel& model, int64_t max_batch, int64_t max_context, int adapters, int64_t rank)
      : runner_(model, options(max_batch, max_context, adapters, rank)), adapters_(adapters) {
    lora::LoraConfig config;
    config.r = rank;
    config.alpha = double(2 * rank);
    config.target_modules = {"all-linear"};
    for (int a = 0; a < adapters; ++a) {
      // B drawn too (PEFT starts it at zero), so every update is a real one.
      lora::Adapter adapter = lora::Adapter::init(model, config, uint64_t(a) + 1);
      std::vector<Tensor> params = adapter.parameters();
      Generator generator(uint64_t(a) + 1001);
      for (size_t i = 1; i < params.size(); i += 2)
        params[i] = normal(params[i].shape(), 0, 0.01, params[i].dtype(), params[i].device(), generator);
      adapter.set_parameters(std::move(params));
      runner_.adapters().load("bench-" + std::to_string(a), adapter.deltas());
    }
  }

  void prefill(const std::vector<int32_t>& prompt) override {
    WICK_CHECK(!prompt.empty(), "bench: a prefill needs at least one token");
    std::vector<int32_t> blocks;
    allocate(int64_t(prompt.size()), blocks);
    runner_.step({runtime::StepRow{&blocks, 0, prompt, slot(0)}});
    synchronize(runner_.model().device());
    runner_.blocks().release(blocks);
  }

  void prepare_decode(const std::vector<std::vector<int32_t>>& sequences, int64_t steps) override {
    WICK_CHECK(!sequences.empty() && steps > 0, "bench: a decode test needs sequences and steps");
    release();
    context_ = int64_t(sequences[0].size()) - 1;
    for (const auto& s : sequences)
      WICK_CHECK(int64_t(s.size()) == context_ + 1, "bench: the sequences of a batch differ in length");
    sequences_ = sequences;
    blocks_.assign(sequences.size(), {});
    for (auto& b : blocks_) allocate(context_ + steps, b);
    if (context_ > 0) {
      std::vector<runtime::StepRow> rows;
      for (size_t i = 0; i < sequences.size(); ++i)
        rows.push_back({&blocks_[i], 0, std::span<const int32_t>(sequences_[i]).subspan(0, size_t(context_)), slot(i)});
      runner_.step(rows);
    }
    next_.clear();
    for (const auto& s : sequences) next_.push_back(s.back());
    steps_ = steps;
    synchronize(runner_.model().device());
  }

  void decode(int64_t steps) override {
    WICK_CHECK(!blocks_.empty() && steps == steps_, "bench: decode(", steps, ") without prepare_decode for as many steps");
    for (int64_t i = 0; i < steps; ++i) {
      std::vector<runtime::StepRow> rows;
      for (size_t r = 0; r < next_.size(); ++r)
        rows.push_back({&blocks_[r], context_ + i, std::span<const int32_t>(&next_[r], 1), slot(r)});
      std::vector<int64_t> ids = argmax(runner_.step(rows), 1).to_vector<int64_t>();  // waits for the device
      for (size_t r = 0; r < next_.size(); ++r) next_[r] = int32_t(ids[r]);
    }
    release();
  }

 private:
  static runtime::RunnerOptions options(int64_t max_batch, int64_t max_context, int adapters, int64_t rank) {
    runtime::RunnerOptions o;
    o.max_batch = max_batch;
    o.max_context = max_context;
    o.max_loras = adapters;
    o.max_lora_rank = rank;
    return o;
  }
  // The adapter slot of sequence i (-1: none resident).
  int slot(size_t i) const { return adapters_ > 0 ? int(i % size_t(adapters_)) : -1; }
  void allocate(int64_t positions, std::vector<int32_t>& blocks) {
    WICK_CHECK(runner_.blocks().allocate(runtime::blocks_for(positions, runner_.options().block_size), blocks),
               "bench: the KV cache has no room for ", positions, " more positions");
  }
  void release() {
    for (auto& b : blocks_) runner_.blocks().release(b);
    blocks_.clear();
  }

  runtime::DecoderRunner runner_;
  int adapters_ = 0;
  std::vector<std::vector<int32_t>> sequences_, blocks_;
  std::vector<int32_t> next_;
  int64_t context_ = 0, steps_ = 0;
};

}  // namespace

std::unique_ptr<BenchTarget> make_runtime_bench_target(models::DecoderModel& model, int64_t max_batch,
                                                       int64_t max_context, int adapters, int64_t adapter_rank) {
  WICK_CHECK(adapters >= 0 && adapter_rank >= 1, "bench: --adapters must be >= 0 and --adapter-rank >= 1, got ",
             adapters, " and ", adapter_rank);
  return std::make_unique<RuntimeBenchTarget>(model, max_batch, max_context, adapters, adapter_rank);
}

std::unique_ptr<BenchTarget> make_forward_bench_target(const models::DecoderModel& model) {
  return std::make_unique<ForwardBenchTarget>(model);
}

}  // namespace wick::cli
