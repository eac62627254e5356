// Text generation with a decoder: prefill the prompt once into a preallocated KV cache, then
// decode one token at a time, sampling, streaming UTF-8-safe text pieces, and stopping on any EOS
// id, a stop string (matched in the decoded text) or the token limit.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "wick/models/decoder.h"
#include "wick/models/sampler.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::models {

struct GenerateOptions {
  int64_t max_tokens = 128;
  SamplingOptions sampling;
  std::vector<int32_t> eos_ids;         // any of them ends generation (not included in the text)
  std::vector<std::string> stop;        // stop strings; the text ends before the first match
};

struct TokenEvent {
  int32_t id;
  // The new text this token completes (may be empty while UTF-8 or a stop string is pending). A
  // last event with id -1 carries text still held back when generation ends.
  std::string text;
  double probability, logprob;
};

// The text of a generation as tokens arrive: UTF-8-safe pieces, with stop strings found in the
// decoded text (the text ends before the first match) and the bytes that could still begin a stop
// string held back until they cannot.
class TextStream {
 public:
  TextStream(const tok::Tokenizer& tokenizer, std::vector<std::string> stop);
  // Adds a generated token; returns the text that is now final (may be empty).
  std::string push(int32_t id);
  // The text still held back once generation ends without a stop string.
  std::string finish();
  bool stopped() const { return stopped_; }
  // Everything decoded so far (cut at the stop string once stopped).
  const std::string& text() const { return text_; }

 private:
  tok::StreamingDecoder stream_;
  std::vector<std::string> stop_;
  std::string text_;
  size_t emitted_ = 0, hold_ = 0;
  bool stopped_ = false;
};

struct GenerateResult {
  std::vector<int32_t> ids;  // generated ids (an EOS id that ended generation is not included)
  std::string text;
  std::string finish_reason;  // "eos", "stop" or "length"
};

GenerateResult generate(const DecoderModel& model, const tok::Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const std::function<void(const TokenEvent&)>& on_token = {},
                        const LoraDeltas* lora = nullptr);

// Several prompts at once: left-padded to one length, with an attention mask over the padding
// and positions that start at each prompt's first real token, so each row generates what it would
// alone. Each row samples with its own Sampler seeded with options.sampling.seed. Without a
// tokenizer only ids are produced (no text, no stop strings).
std::vector<GenerateResult> generate_batch(const DecoderModel& model, const tok::Tokenizer* tokenizer,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateOptions& options, const LoraDeltas* lora = nullptr);

}  // namespace wick::models
