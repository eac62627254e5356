// Training data from JSONL: {"text"}, {"prompt","completion"}, {"messages":[...]} (rendered with
// the model's chat template, loss on assistant turns) and pre-tokenised {"input_ids","labels"?}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wick/chat/template.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::train {

struct Example {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // -100 where no loss is taken
  int64_t line = 0;             // 1-based line of the JSONL file (a packed row: its first example's)
  // A packed row (pack_examples): where each of its examples begins, from 0. Empty: one example.
  std::vector<int32_t> starts;
};

struct DataOptions {
  int64_t max_length = 1024;      // longer examples are truncated
  bool train_on_prompt = false;   // loss on prompt / non-assistant tokens too
};

// What tokenising needs; a null tokenizer allows only pre-tokenised lines.
struct DataContext {
  const tok::Tokenizer* tokenizer = nullptr;
  const wick::chat::ChatTemplateConfig* chat = nullptr;  // for {"messages"}
  std::optional<int32_t> eos_id;                  // appended to text and completions
  // Why the tokenizer or chat template is absent (e.g. the model's tokenizer.json is malformed),
  // for the error of a line that needs it.
  std::string tokenizer_error{}, chat_error{};
};

// Reads every line of `path` (blank lines skipped). Malformed lines (invalid UTF-8, incomplete or
// invalid JSON, a field of the wrong type), unknown shapes and examples left with no target token
// are errors naming the file, line and what is wrong.
std::vector<Example> load_jsonl(const std::string& path, const DataContext& context, const DataOptions& options);

// Packs examples into rows of at most `length` tokens (best fit, longest first; deterministic), so a
// batch carries no padding but that of its last rows. Each row lists where its examples begin
// (Example::starts): the forward keeps attention inside each example and restarts its positions,
// and the first label of every example but the row's first is set to -100, so no example predicts
// the next one's first token. Every example must be at most `length` tokens long.
std::vector<Example> pack_examples(const std::vector<Example>& examples, int64_t length);

}  // namespace wick::train
