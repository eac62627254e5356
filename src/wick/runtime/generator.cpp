// Jobs to sequences of the scheduler, and their tokens to text.
#include "wick/runtime/generator.h"

#include <cmath>
#include <memory>
#include <optional>

namespace wick::runtime {

std::vector<models::GenerateResult> generate(DecoderRunner& runner, const tok::Tokenizer* tokenizer,
                                             const std::vector<GenerationJob>& jobs, const SchedulerOptions& options) {
  SchedulerOptions so = options;
  so.max_step_tokens = std::max(so.max_step_tokens, runner.options().max_batch);
  so.max_waiting = std::max<int64_t>(so.max_waiting, int64_t(jobs.size()));
  Scheduler scheduler(runner, so);
  struct State {
    std::optional<models::TextStream> text;
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
    cb.on_token = [&, i](int32_t id, double logprob) {
      State& st = states[i];
      results[i].ids.push_back(id);
      std::string piece;
      if (st.text) {
        piece = st.text->push(id);
        if (st.text->stopped()) st.seq->cancel();
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
    }
  }
  return results;
}

}  // namespace wick::runtime
