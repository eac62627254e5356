// Prefill + decode loop with streaming and stop strings.
#include "wick/models/generate.h"

#include <algorithm>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"

namespace wick::models {

namespace {

// The largest cut <= n that does not split a UTF-8 sequence of `s`.
size_t utf8_boundary(const std::string& s, size_t n) {
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::vector<float> last_logits(const Tensor& logits) {
  int64_t t = logits.shape(1);
  return reshape(narrow(logits, 1, t - 1, 1), {logits.shape(2)}).to_vector<float>();
}

}  // namespace

TextStream::TextStream(const tok::Tokenizer& tokenizer, std::vector<std::string> stop)
    : stream_(tokenizer, /*skip_special_tokens=*/true), stop_(std::move(stop)) {
  // A stop string can only start in the last (longest stop - 1) bytes.
  for (const std::string& s : stop_) hold_ = std::max(hold_, s.empty() ? 0 : s.size() - 1);
}

std::string TextStream::push(int32_t id) {
  if (stopped_) return {};
  text_ += stream_.step(id);
  // The earliest stop string in the text ends generation there.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_)
    if (!s.empty()) cut = std::min(cut, text_.find(s, emitted_ > s.size() ? emitted_ - s.size() : 0));
  size_t safe = cut != std::string::npos ? cut : utf8_boundary(text_, text_.size() > hold_ ? text_.size() - hold_ : 0);
  std::string piece = safe > emitted_ ? text_.substr(emitted_, safe - emitted_) : std::string();
  emitted_ = std::max(emitted_, safe);
  if (cut != std::string::npos) {
    text_.resize(cut);
    stopped_ = true;
  }
  return piece;
}

std::string TextStream::finish() {
  if (stopped_) return {};
  text_ += stream_.finish();
  std::string rest = text_.size() > emitted_ ? text_.substr(emitted_) : std::string();
  emitted_ = text_.size();
  return rest;
}

GenerateResult generate(const DecoderModel& model, const tok::Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const std::function<void(const TokenEvent&)>& on_token,
                        const LoraDeltas* lora) {
  WICK_CHECK(!prompt.empty(), "generate: the prompt is empty");
  WICK_CHECK(options.max_tokens >= 0, "generate: max_tokens must be >= 0");
  int64_t context = model.config().max_position_embeddings;
  int64_t needed = int64_t(prompt.size()) + options.max_tokens;
  WICK_CHECK(context <= 0 || int64_t(prompt.size()) < context, "generate: the prompt has ", prompt.size(),
             " tokens, more than the model's context of ", context);
  if (context > 0) needed = std::min(needed, context);
  NoGradGuard no_grad;
  KVCache cache = model.make_cache(1, needed);
  Sampler sampler(options.sampling);
  TextStream text(tokenizer, options.stop);
  std::vector<int32_t> history = prompt;
  GenerateResult result;
  result.finish_reason = "length";

  std::vector<int64_t> ids64(prompt.begin(), prompt.end());
  Tensor logits = model.forward(Tensor::from_vector(ids64, {1, int64_t(ids64.size())}, model.device()), &cache,
                                std::nullopt, std::nullopt, lora);
  for (int64_t step = 0; step < options.max_tokens; ++step) {
    double p = 0, lp = 0;
    int32_t id = sampler.sample(last_logits(logits), history, &p, &lp);
    if (std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end()) {
      result.finish_reason = "eos";
      break;
    }
    result.ids.push_back(id);
    history.push_back(id);
    std::string piece = text.push(id);
    if (on_token) on_token({id, piece, p, lp});
    if (text.stopped()) {
      result.finish_reason = "stop";
      break;
    }
    if (int64_t(history.size()) >= needed) break;
    logits = model.forward(Tensor::from_vector(std::vector<int64_t>{id}, {1, 1}, model.device()), &cache, std::nullopt,
                           std::nullopt, lora);
  }
  if (result.finish_reason != "stop") {
    std::string rest = text.finish();
    if (on_token && !rest.empty()) on_token({-1, rest, 1.0, 0.0});
  }
  result.text = text.text();
  return result;
}

std::vector<GenerateResult> generate_batch(const DecoderModel& model, const tok::Tokenizer* tokenizer,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateOptions& options, const LoraDeltas* lora) {
  WICK_CHECK(!prompts.empty(), "generate: empty batch");
  WICK_CHECK(tokenizer != nullptr || options.stop.empty(), "generate: stop strings need a tokenizer");
  size_t width = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    WICK_CHECK(!prompts[i].empty(), "generate: prompt ", i, " of the batch is empty");
    width = std::max(width, prompts[i].size());
  }
  int64_t b = int64_t(prompts.size()), n = options.max_tokens;
  int64_t context = model.config().max_position_embeddings;
  WICK_CHECK(context <= 0 || int64_t(width) < context, "generate: a prompt has ", width,
             " tokens, more than the model's context of ", context);
  NoGradGuard no_grad;
  KVCache cache = model.make_cache(b, int64_t(width) + n);
  // Left padding: row i's tokens end at column width - 1; its positions count real tokens only.
  std::vector<int64_t> ids(b * width, 0), mask(b * width, 0), pos(b * width, 0), next_pos(b);
  for (int64_t i = 0; i < b; ++i) {
    size_t pad = width - prompts[i].size();
    for (size_t j = 0; j < prompts[i].size(); ++j) {
      ids[i * width + pad + j] = prompts[i][j];
      mask[i * width + pad + j] = 1;
      pos[i * width + pad + j] = int64_t(j);
    }
    next_pos[i] = int64_t(prompts[i].size());
  }
  std::vector<Sampler> samplers(static_cast<size_t>(b), Sampler(options.sampling));
  std::vector<std::vector<int32_t>> history(prompts.begin(), prompts.end());
  std::vector<GenerateResult> results(static_cast<size_t>(b));
  std::vector<bool> done(static_cast<size_t>(b), false);
  for (auto& r : results) r.finish_reason = "length";
  Device device = model.device();
  Tensor logits = model.forward(Tensor::from_vector(ids, {b, int64_t(width)}, device), &cache,
                                Tensor::from_vector(mask, {b, int64_t(width)}, device),
                                Tensor::from_vector(pos, {b, int64_t(width)}, device), lora);
  for (int64_t step = 0; step < n; ++step) {
    int64_t v = logits.shape(2);
    std::vector<float> last = reshape(narrow(logits, 1, logits.shape(1) - 1, 1), {b, v}).to_vector<float>();
    std::vector<int64_t> feed(b), feed_pos(b);
    bool all_done = true;
    for (int64_t i = 0; i < b; ++i) {
      feed[i] = history[i].back();
      feed_pos[i] = next_pos[i];
      if (done[i]) continue;
      std::vector<float> row(last.begin() + i * v, last.begin() + (i + 1) * v);
      int32_t id = samplers[i].sample(row, history[i]);
      if (std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end()) {
        results[i].finish_reason = "eos";
        done[i] = true;
        continue;
      }
      results[i].ids.push_back(id);
      history[i].push_back(id);
      feed[i] = id;
      ++next_pos[i];
      if (tokenizer && !options.stop.empty()) {
        std::string text = tokenizer->decode(results[i].ids, true);
        for (const std::string& s : options.stop)
          if (!s.empty() && text.find(s) != std::string::npos) {
            results[i].finish_reason = "stop";
            done[i] = true;
          }
      }
    }
    for (int64_t i = 0; i < b; ++i) all_done = all_done && done[i];
    if (all_done || step + 1 == n) break;
    // Every row takes one more column (a finished row repeats its last token, whose result is
    // ignored); the prompt's padding columns stay masked.
    int64_t cols = cache.length + 1;
    std::vector<int64_t> step_mask(b * cols, 1);
    for (int64_t i = 0; i < b; ++i)
      for (size_t j = 0; j < width - prompts[i].size(); ++j) step_mask[i * cols + j] = 0;
    logits = model.forward(Tensor::from_vector(feed, {b, 1}, device), &cache, Tensor::from_vector(step_mask, {b, cols}, device),
                           Tensor::from_vector(feed_pos, {b, 1}, device), lora);
  }
  for (int64_t i = 0; i < b; ++i) {
    if (!tokenizer) continue;
    std::string text = tokenizer->decode(results[i].ids, true);
    if (results[i].finish_reason == "stop")
      for (const std::string& s : options.stop)
        if (!s.empty()) text = text.substr(0, std::min(text.size(), text.find(s)));
    results[i].text = text;
  }
  return results;
}

}  // namespace wick::models
