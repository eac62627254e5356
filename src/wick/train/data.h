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
  int64_t line = 0;             // 1-based line of the JSONL file
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

}  // namespace wick::train
