// Jobs to sequences of the scheduler, and their tokens to text.
#include "wick/runtime/generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <memory>
#include <optional>

namespace wick::runtime {

namespace {

// log_softmax(logits)[id] and the `k` most likely ids (ties: lower id first), in float64.
TokenLogprobs token_logprobs(const float* logits, int64_t vocab, int32_t id, int k) {
  double top = *std::max_element(logits, logits + vocab), sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - top);
  double log_normalizer = top + std::log(sum);
  TokenLogprobs out{id, double(logits[id]) - log_normalizer, {}};
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  size_t n = std::min<size_t>(size_t(k), order.size());
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (size_t j = 0; j < n; ++j) out.top.emplace_back(order[j], double(logits[order[j]]) - log_normalizer);
  return out;
}

}  // namespace

std::vector<models::GenerateResult> generate(DecoderRunner& runner, const tok::Tokenizer* tokenizer,
                                             const std::vector<GenerationJob>& jobs, const SchedulerOptions& options) {
  SchedulerOptions so = options;
  so.max_step_tokens = std::max(so.max_step_tokens, runner.options().max_batch);
  so.max_waiting = std::max<int64_t>(so.max_waiting, int64_t(jobs.size()));
  Scheduler scheduler(runner, so);
  struct State {
    std::optional<models::TextStream> text;
    std::optional<models::Sampler> sampler;  // when the job asks for log-probabilities
    std::vector<size_t> text_ends;           // per generated id: the decoded text's length after it
    std::shared_ptr<Sequence> seq;
    std::string error;
    bool done = false;
  };
  std::vector<models::GenerateResult> results(jobs.size());
  std::vector<State> states(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const GenerationJob& job = jobs[i];
    WICK_CHECK(tokenizer != nullptr || job.options.stop.empty(), "generate: stop strings need a tokenizer");
    if (tokenizer) states[i].text.emplace(*tokenizer, job.options.stop);
    results[i].finish_reason = "length";
    SequenceParams p;
    p.prompt = job.prompt;
    p.max_tokens = job.options.max_tokens;
    p.sampling = job.options.sampling;
    p.eos_ids = job.options.eos_ids;
    p.adapter_slot = job.adapter_slot;
    if (p.max_tokens == 0) {
      states[i].done = true;
      continue;
    }
    SequenceCallbacks cb;
    cb.on_prefill = job.on_prefill;
    if (job.logprobs) {
      job.logprobs->clear();
      states[i].sampler.emplace(job.options.sampling);
      cb.choose = [&, i](const float* logits, int64_t vocab, const std::vector<int32_t>& tokens) {
        std::vector<float> row(logits, logits + vocab);
        int32_t id = states[i].sampler->sample(row, tokens);
        jobs[i].logprobs->push_back(token_logprobs(logits, vocab, id, jobs[i].top_logprobs));
        return id;
      };
    }
    cb.on_token = [&, i](int32_t id, double logprob) {
      State& st = states[i];
      results[i].ids.push_back(id);
      std::string piece;
      if (st.text) {
        piece = st.text->push(id);
        if (st.text->stopped()) st.seq->cancel();
        st.text_ends.push_back(st.text->stopped() ? std::string::npos : st.text->text().size());
      }
      if (jobs[i].on_token) jobs[i].on_token({id, piece, std::exp(logprob), logprob});
    };
    cb.on_finish = [&, i](Finish reason, const std::string& error) {
      State& st = states[i];
      st.done = true;
      if (reason == Finish::Error) st.error = error;
      if (reason == Finish::Eos) results[i].finish_reason = "eos";
      if (reason == Finish::Cancelled) results[i].finish_reason = "cancelled";
      if (st.text && st.text->stopped()) results[i].finish_reason = "stop";
    };
    states[i].seq = scheduler.add(std::move(p), std::move(cb));
  }
  while (scheduler.step()) {
    for (size_t i = 0; i < jobs.size(); ++i)
      if (jobs[i].interrupt && jobs[i].interrupt->load() && !states[i].done) states[i].seq->cancel();
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    State& st = states[i];
    if (!st.error.empty()) fail("generate: ", st.error);
    if (st.text) {
      if (!st.text->stopped()) {
        std::string rest = st.text->finish();
        if (jobs[i].on_token && !rest.empty()) jobs[i].on_token({-1, rest, 1.0, 0.0});
      }
      results[i].text = st.text->text();
      if (st.text->stopped()) {
        size_t keep = 0;
        while (keep < st.text_ends.size() && st.text_ends[keep] <= results[i].text.size()) ++keep;
        results[i].ids.resize(keep);
      }
    }
    if (jobs[i].logprobs && jobs[i].logprobs->size() > results[i].ids.size())
      jobs[i].logprobs->resize(results[i].ids.size());
  }
  return results;
}

}  // namespace wick::runtime
