// The continuous-batching loop (see scheduler.h).
#include "wick/runtime/scheduler.h"

#include <algorithm>
#include <cmath>

#include "wick/core/ops.h"

namespace wick::runtime {

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::Length: return "length";
    case Finish::Eos: return "eos";
    case Finish::Cancelled: return "cancelled";
    case Finish::Error: return "error";
    default: return "none";
  }
}

Scheduler::Scheduler(DecoderRunner& runner, const SchedulerOptions& options) : runner_(runner), options_(options) {
  WICK_CHECK(options.max_step_tokens >= runner.options().max_batch, "scheduler: max_step_tokens (",
             options.max_step_tokens, ") must be at least the batch size (", runner.options().max_batch, ")");
}

std::shared_ptr<Sequence> Scheduler::add(SequenceParams params, SequenceCallbacks callbacks) {
  int64_t context = runner_.options().max_context;
  WICK_CHECK(!params.prompt.empty(), "the prompt is empty");
  WICK_CHECK(int64_t(params.prompt.size()) < context, "the prompt has ", params.prompt.size(),
             " tokens; the context holds ", context, " (prompt and at least one generated token)");
  WICK_CHECK(params.max_tokens >= 1, "max_tokens must be at least 1, got ", params.max_tokens);
  WICK_CHECK(params.adapter_slot >= -1 && params.adapter_slot < runner_.adapters().capacity(), "adapter slot ",
             params.adapter_slot, " does not exist");
  int64_t vocab = runner_.model().config().vocab_size;
  for (int32_t id : params.prompt)
    WICK_CHECK(id >= 0 && id < vocab, "token id ", id, " is outside the vocabulary of ", vocab);
  // Sampling options are checked now, not at the first token.
  models::next_token_probabilities(std::vector<float>{0.f}, {}, params.sampling.temperature == 0
                                                                    ? models::SamplingOptions{}
                                                                    : params.sampling);
  if (int64_t(waiting_.size()) >= options_.max_waiting)
    throw QueueFull(str_cat("the queue is full (", options_.max_waiting, " requests waiting)"));
  auto s = std::make_shared<Sequence>();
  s->params_ = std::move(params);
  s->callbacks_ = std::move(callbacks);
  s->tokens_ = s->params_.prompt;
  s->sampler_ = models::Sampler(s->params_.sampling);
  waiting_.push_back(s);
  return s;
}

void Scheduler::finish(const std::shared_ptr<Sequence>& s, Finish reason, const std::string& error) {
  runner_.blocks().release(s->blocks_);
  if (s->callbacks_.on_finish) s->callbacks_.on_finish(reason, error);
}

void Scheduler::admit() {
  const RunnerOptions& ro = runner_.options();
  while (!waiting_.empty() && int64_t(running_.size()) < ro.max_batch) {
    std::shared_ptr<Sequence>& s = waiting_.front();
    if (s->cancelled_.load()) {
      finish(s, Finish::Cancelled);
      waiting_.pop_front();
      continue;
    }
    int64_t positions = std::min(ro.max_context, int64_t(s->tokens_.size()) + s->params_.max_tokens);
    if (!runner_.blocks().allocate(blocks_for(positions, ro.block_size), s->blocks_)) break;  // wait for room
    s->admitted_ = true;
    running_.push_back(std::move(s));
    waiting_.pop_front();
  }
}

void Scheduler::cancel_all() {
  for (auto& s : waiting_) finish(s, Finish::Cancelled);
  waiting_.clear();
  for (auto& s : running_) finish(s, Finish::Cancelled);
  running_.clear();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  st.waiting = int64_t(waiting_.size());
  st.running = int64_t(running_.size());
  st.blocks_used = runner_.blocks().used();
  st.blocks_total = runner_.blocks().total();
  st.last_batch = last_batch_;
  return st;
}

bool Scheduler::step() {
  // The step and its read-back as one use of the device (another engine may share it).
  auto device = lock_device(runner_.model().device());
  // Cancelled sequences leave first, so their blocks serve this step's admissions.
  std::erase_if(running_, [&](const std::shared_ptr<Sequence>& s) {
    if (!s->cancelled_.load()) return false;
    finish(s, Finish::Cancelled);
    return true;
  });
  admit();
  if (running_.empty()) return false;
  // Decoding sequences take one token each; prefilling ones share the rest of the budget in order.
  std::vector<StepRow> rows;
  std::vector<std::shared_ptr<Sequence>> row_seq;
  std::vector<bool> completes;  // the row's last token is the sequence's newest token
  int64_t budget = options_.max_step_tokens;
  for (auto& s : running_) {
    if (int64_t(s->tokens_.size()) - s->cached_ != 1) continue;
    rows.push_back(StepRow{&s->blocks_, s->cached_, std::span<const int32_t>(s->tokens_).subspan(s->cached_, 1),
                           s->params_.adapter_slot});
    row_seq.push_back(s);
    completes.push_back(true);
    --budget;
  }
  for (auto& s : running_) {
    int64_t pending = int64_t(s->tokens_.size()) - s->cached_;
    if (pending <= 1 || budget <= 0) continue;
    int64_t chunk = std::min(pending, budget);
    rows.push_back(StepRow{&s->blocks_, s->cached_,
                           std::span<const int32_t>(s->tokens_).subspan(size_t(s->cached_), size_t(chunk)),
                           s->params_.adapter_slot});
    row_seq.push_back(s);
    completes.push_back(chunk == pending);
    budget -= chunk;
  }
  last_batch_ = int64_t(rows.size());
  Tensor logits;
  try {
    logits = runner_.step(rows);
  } catch (const std::exception& e) {
    // The step's sequences cannot continue; others (still waiting) are unaffected.
    std::string message = e.what();
    for (auto& s : row_seq) {
      finish(s, Finish::Error, message);
      std::erase(running_, s);
    }
    return true;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    Sequence& s = *row_seq[i];
    s.cached_ += int64_t(rows[i].tokens.size());
    if (s.generated() == 0 && s.callbacks_.on_prefill) s.callbacks_.on_prefill(s.cached_, int64_t(s.tokens_.size()));
  }
  std::vector<std::shared_ptr<Sequence>> sampled(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    if (completes[i]) sampled[i] = row_seq[i];
  sample(logits, sampled);
  return true;
}

void Scheduler::sample(const Tensor& logits, const std::vector<std::shared_ptr<Sequence>>& rows) {
  int64_t r = logits.shape(0), vocab = logits.shape(1);
  // Greedy rows without a repetition penalty need only the argmax and its log-probability, computed
  // on the device; any other row needs its logits on the host for the sampler.
  bool device_only = true;
  for (const auto& s : rows)
    if (s && (s->callbacks_.choose || s->params_.sampling.temperature != 0 ||
              s->params_.sampling.repetition_penalty != 1.0))
      device_only = false;
  std::vector<double> picked;  // per row: argmax id, its logit, log-sum-exp (one read-back)
  std::vector<float> host;
  if (device_only) {
    picked = stack({astype(argmax(logits, 1), Dtype::F64), astype(max(logits, {1}), Dtype::F64),
                    astype(logsumexp(logits, {1}), Dtype::F64)},
                   1)
                 .to_vector<double>();
  } else {
    host = logits.to_vector<float>();
  }
  const int64_t context = runner_.options().max_context;
  for (int64_t i = 0; i < r; ++i) {
    const std::shared_ptr<Sequence>& s = rows[size_t(i)];
    if (!s) continue;
    int32_t id;
    double logprob = 0;
    try {
      if (device_only) {
        id = int32_t(picked[size_t(3 * i)]);
        logprob = picked[size_t(3 * i + 1)] - picked[size_t(3 * i + 2)];
      } else if (s->callbacks_.choose) {
        id = s->callbacks_.choose(host.data() + i * vocab, vocab, s->tokens_);
        WICK_CHECK(id >= 0 && id < vocab, "sampling: the chooser picked id ", id, " outside the vocabulary of ", vocab);
      } else {
        std::vector<float> row(host.begin() + i * vocab, host.begin() + (i + 1) * vocab);
        id = s->sampler_.sample(row, s->tokens_, nullptr, &logprob);
      }
    } catch (const std::exception& e) {
      finish(s, Finish::Error, e.what());
      std::erase(running_, s);
      continue;
    }
    const SequenceParams& p = s->params_;
    bool eos = !p.ignore_eos && std::find(p.eos_ids.begin(), p.eos_ids.end(), id) != p.eos_ids.end();
    Finish reason = Finish::None;
    if (eos) {
      reason = Finish::Eos;
    } else {
      s->tokens_.push_back(id);
      if (s->callbacks_.on_token) s->callbacks_.on_token(id, logprob);
      if (s->generated() >= p.max_tokens || int64_t(s->tokens_.size()) >= context) reason = Finish::Length;
    }
    if (reason != Finish::None) {
      finish(s, reason);
      std::erase(running_, s);
    }
  }
}

}  // namespace wick::runtime
