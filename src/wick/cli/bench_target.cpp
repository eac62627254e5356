// BenchTarget over DecoderModel::forward: the decode path `wick generate` uses.
#include "wick/cli/bench_target.h"

#include <optional>

#include "wick/core/autograd.h"
#include "wick/core/error.h"
#include "wick/core/ops.h"
#include "wick/core/storage.h"

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

}  // namespace

std::unique_ptr<BenchTarget> make_forward_bench_target(const models::DecoderModel& model) {
  return std::make_unique<ForwardBenchTarget>(model);
}

}  // namespace wick::cli
