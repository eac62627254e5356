// A sentence-transformers model folder's own files: modules.json, the Pooling module's config,
// sentence_bert_config.json and config_sentence_transformers.json (prompts).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wick::io {

struct SentenceTransformersModule {
  int64_t idx = 0;
  std::string name;
  std::string path;  // relative to the model folder ("" for the transformer itself)
  std::string type;  // "sentence_transformers.models.Pooling", ...
};

struct SentenceTransformersConfig {
  std::vector<SentenceTransformersModule> modules;
  // Pooling modes switched on, in the order sentence-transformers concatenates their outputs:
  // "cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken".
  std::vector<std::string> pooling_modes;
  bool include_prompt = true;         // Pooling: whether prompt tokens take part in pooling
  bool normalize = false;             // a Normalize module follows pooling
  bool has_dense = false;             // a Dense module follows pooling (not an encoder-only model)
  std::optional<int64_t> word_embedding_dimension;
  std::optional<int64_t> max_seq_length;  // sentence_bert_config.json
  std::optional<bool> do_lower_case;
  std::map<std::string, std::string> prompts;  // config_sentence_transformers.json, e.g. "query" → "query: "
  std::optional<std::string> default_prompt_name;
  std::optional<std::string> similarity_fn_name;
};

// Reads the files of `dir`; std::nullopt when it has no modules.json (not a sentence-transformers
// folder). Malformed files throw wick::Error naming the file and field.
std::optional<SentenceTransformersConfig> load_sentence_transformers_config(const std::string& dir);

}  // namespace wick::io
