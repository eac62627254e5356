// POST /v1/chat/completions and POST /v1/completions: prompts to token ids (the model's chat
// template, or the tokenizer), one engine sequence per choice, and the answer as one JSON body or
// as server-sent events. A streaming client that goes away cancels its sequences.
#include <ctime>
#include <random>

#include "wick/serve/completion_choice.h"
#include "wick/serve/http/server_impl.h"
#include "wick/serve/openai_response.h"

namespace wick::serve {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// One request's choices and what has been sent of them.
struct GenerationJob {
  ResponseHeader header;
  GenerationFields fields;
  int64_t prompt_tokens = 0;
  std::vector<std::unique_ptr<CompletionChoice>> choices;
  Clock::time_point start = Clock::now();
  bool first_token_seen = false;
  std::vector<std::optional<Clock::time_point>> last_arrival;
  std::vector<bool> started;                    // streaming: the choice's first chunk was sent
  std::vector<size_t> text_offset;              // completions' logprobs text_offset so far
  std::vector<std::vector<TokenEvent>> tokens;  // non-streaming: each choice's tokens
  std::shared_ptr<void> active;                 // counts the request as in progress while it lives

  bool done() const {
    for (const auto& c : choices)
      if (!c->done()) return false;
    return true;
  }
  void cancel_all() {
    for (auto& c : choices) c->cancel();
  }
  int64_t completion_tokens() const {
    int64_t total = 0;
    for (const auto& c : choices) total += int64_t(c->completion_tokens());
    return total;
  }
};

SamplingParams resolve_sampling(const SamplingFields& f, const models::SamplingOptions& d, int64_t choice) {
  SamplingParams p;
  p.temperature = f.temperature.value_or(d.temperature);
  p.top_k = f.top_k.value_or(d.top_k);
  p.top_p = f.top_p.value_or(d.top_p);
  p.min_p = f.min_p.value_or(d.min_p);
  p.repetition_penalty = f.repetition_penalty.value_or(d.repetition_penalty);
  p.presence_penalty = f.presence_penalty;
  p.frequency_penalty = f.frequency_penalty;
  // A given seed makes the request reproducible; its choices differ from each other.
  static thread_local std::mt19937_64 random_seeds{std::random_device{}()};
  p.seed = f.seed ? uint64_t(*f.seed) + uint64_t(choice) : random_seeds();
  return p;
}

void observe_arrival(Metrics& metrics, GenerationJob& job, size_t k, int64_t arrived) {
  if (arrived == 0) return;
  Clock::time_point now = Clock::now();
  if (!job.first_token_seen) {
    job.first_token_seen = true;
    metrics.observe_time_to_first_token(std::chrono::duration<double>(now - job.start).count());
  }
  if (job.last_arrival[k])
    metrics.observe_inter_token(std::chrono::duration<double>(now - *job.last_arrival[k]).count(), arrived);
  job.last_arrival[k] = now;
}

json logprobs_json(GenerationJob& job, size_t k, const std::vector<TokenEvent>& tokens,
                   const tok::Tokenizer& tokenizer) {
  if (job.fields.logprobs < 0) return nullptr;
  if (job.header.chat) return chat_logprobs(tokens, tokenizer);
  return completion_logprobs(tokens, tokenizer, job.text_offset[k], &job.text_offset[k]);
}

// One pass over the choices: the events to send now ("" when nothing happened within ~100 ms).
std::string stream_step(Server::Impl& s, GenerationJob& job) {
  std::string out;
  bool waited = false;
  for (size_t k = 0; k < job.choices.size(); ++k) {
    CompletionChoice& choice = *job.choices[k];
    if (choice.done()) continue;
    CompletionChoice::Delta d = choice.poll(std::chrono::milliseconds(waited ? 0 : 100));
    waited = true;
    observe_arrival(s.metrics, job, k, d.arrived);
    if (d.text.empty() && d.tokens.empty() && !d.finish_reason) continue;
    if (d.finish_reason == "error")
      out += sse_event(ApiError(500, "generation failed: " + d.error, "", "engine_error").body());
    json chunk = stream_chunk(job.header, int64_t(k), d.text, !job.started[k],
                              d.tokens.empty() ? json(nullptr) : logprobs_json(job, k, d.tokens, *s.models.tokenizer),
                              d.finish_reason);
    job.started[k] = true;
    // Without stream_options.include_usage the usage rides on the last chunk.
    if (d.finish_reason && job.done() && !job.fields.include_usage)
      chunk["usage"] = usage_json(job.prompt_tokens, job.completion_tokens());
    out += sse_event(chunk);
  }
  if (job.done()) {
    if (job.fields.include_usage) out += sse_event(usage_chunk(job.header, job.prompt_tokens, job.completion_tokens()));
    out += "data: [DONE]\n\n";
  }
  return out;
}

void answer_whole(Server::Impl& s, GenerationJob& job, httplib::Response& res) {
  json choices = json::array();
  for (size_t k = 0; k < job.choices.size(); ++k) {
    CompletionChoice& choice = *job.choices[k];
    std::vector<TokenEvent> tokens;
    std::string finish;
    while (!choice.done()) {
      CompletionChoice::Delta d = choice.poll(std::chrono::milliseconds(1000));
      observe_arrival(s.metrics, job, k, d.arrived);
      tokens.insert(tokens.end(), d.tokens.begin(), d.tokens.end());
      if (d.finish_reason == "error") throw ApiError(500, "generation failed: " + d.error, "", "engine_error");
      if (d.finish_reason) finish = *d.finish_reason;
    }
    choices.push_back(response_choice(job.header, int64_t(k), choice.text(),
                                      logprobs_json(job, k, tokens, *s.models.tokenizer), finish));
  }
  send_json(res, 200, response_body(job.header, std::move(choices), job.prompt_tokens, job.completion_tokens()));
}

// Submits one sequence per choice of every prompt, then answers.
void generate(Server::Impl& s, std::shared_ptr<GenerationJob> job, const std::vector<std::vector<int32_t>>& prompts,
              const std::string& adapter, httplib::Response& res) {
  Engine& engine = *s.models.engine;
  const GenerationFields& f = job->fields;
  int64_t context = engine.context_length();
  const char* param = job->header.chat ? "messages" : "prompt";
  for (const auto& prompt : prompts) {
    int64_t length = int64_t(prompt.size());
    if (length >= context)
      throw ApiError(400,
                     "This model's maximum context length is " + std::to_string(context) + " tokens; the prompt has " +
                         std::to_string(length) + " tokens",
                     param, "context_length_exceeded");
    if (f.max_tokens && length + *f.max_tokens > context)
      throw ApiError(400,
                     "This model's maximum context length is " + std::to_string(context) + " tokens; you requested " +
                         std::to_string(length + *f.max_tokens) + " tokens (" + std::to_string(length) +
                         " in the prompt, " + std::to_string(*f.max_tokens) + " for the completion)",
                     "max_tokens", "context_length_exceeded");
    job->prompt_tokens += length;
  }
  for (size_t i = 0; i < prompts.size(); ++i)
    for (int64_t j = 0; j < f.n; ++j) {
      GenerationRequest r;
      r.prompt = prompts[i];
      r.max_tokens = f.max_tokens.value_or(context - int64_t(prompts[i].size()));
      r.sampling = resolve_sampling(f.sampling, s.models.sampling_defaults, int64_t(job->choices.size()));
      r.adapter = adapter;
      r.ignore_eos = f.ignore_eos;
      r.top_logprobs = std::max(f.logprobs, 0);
      std::shared_ptr<SequenceHandle> handle;
      try {
        handle = engine.submit(std::move(r));
      } catch (const EngineError& e) {
        throw api_error(e);  // the choices submitted so far are cancelled as `job` goes
      }
      job->choices.push_back(std::make_unique<CompletionChoice>(handle, *s.models.tokenizer, f.stop));
    }
  size_t n = job->choices.size();
  job->last_arrival.resize(n);
  job->started.assign(n, false);
  job->text_offset.assign(n, 0);
  if (!f.stream) return answer_whole(s, *job, res);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&s, job](size_t, httplib::DataSink& sink) {
        // A closed connection reads as not writable: the client is gone, its sequences stop.
        if (!sink.is_writable()) {
          job->cancel_all();
          return false;
        }
        std::string events = stream_step(s, *job);
        if (!events.empty() && !sink.write(events.data(), events.size())) {
          job->cancel_all();
          return false;
        }
        if (job->done()) sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel_all();
      });
}

std::shared_ptr<GenerationJob> new_job(Server::Impl& s, GenerationFields fields, bool chat) {
  auto job = std::make_shared<GenerationJob>();
  job->active = s.track_generation();
  job->header = {new_response_id(chat ? "chatcmpl-" : "cmpl-"), int64_t(std::time(nullptr)), fields.model, chat};
  job->fields = std::move(fields);
  return job;
}

}  // namespace

void Server::Impl::add_generation_routes() {
  http.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              ChatRequest r = parse_chat_request(parse_json_object(req.body));
              std::string adapter = adapter_for(r.fields.model);
              if (!chat_template)
                throw ApiError(400, "this model has no chat template: use /v1/completions", "messages",
                               "no_chat_template");
              std::string text;
              try {
                text = chat_template->render(r.messages, /*add_generation_prompt=*/true, models.chat_template->options);
              } catch (const Error& e) {
                throw ApiError(400, std::string("the chat template rejected the messages: ") + e.what(), "messages",
                               "invalid_value");
              }
              auto job = new_job(*this, std::move(r.fields), /*chat=*/true);
              generate(*this, job, {models.tokenizer->encode(text, /*add_special_tokens=*/false)}, adapter, res);
            }));

  http.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              CompletionRequest r = parse_completion_request(parse_json_object(req.body));
              std::string adapter = adapter_for(r.fields.model);
              std::vector<std::vector<int32_t>> prompts;
              for (const Prompt& p : r.prompts) {
                if (const auto* text = std::get_if<std::string>(&p))
                  prompts.push_back(models.tokenizer->encode(*text, true));
                else
                  prompts.push_back(std::get<std::vector<int32_t>>(p));
              }
              auto job = new_job(*this, std::move(r.fields), /*chat=*/false);
              generate(*this, job, prompts, adapter, res);
            }));
}

}  // namespace wick::serve
