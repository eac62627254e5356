// Plain structs for the JSON files of a Hugging Face model folder: config.json,
// generation_config.json and tokenizer_config.json, and their parsers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::io {

// RoPE scaling, from config.json's `rope_scaling` (transformers <= 4.x) or `rope_parameters`
// (newer). Absent (std::nullopt in ModelConfig) when the type is "default" or not given.
struct RopeScaling {
  std::string rope_type;  // "llama3", "linear", "dynamic", "yarn", ...
  double factor = 1.0;
  std::optional<double> low_freq_factor;   // llama3
  std::optional<double> high_freq_factor;  // llama3
  std::optional<int64_t> original_max_position_embeddings;
};

// The fields of config.json that wick's models read, named as in transformers. Defaults are the
// transformers defaults of the model type where the file may omit them; unknown keys are ignored.
struct ModelConfig {
  std::string model_type;                  // "llama", "qwen2", "bert", "mpnet", ...
  std::vector<std::string> architectures;  // "LlamaForCausalLM", ...
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // = num_attention_heads when absent
  int64_t head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;     // llama/qwen2-style models
  double layer_norm_eps = 1e-12;  // bert-style models
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  std::string torch_dtype;   // "bfloat16", "float32", ... (from `torch_dtype` or newer `dtype`)
  std::string hidden_act;    // "silu", "gelu", ...
  bool attention_bias = false;
  int64_t type_vocab_size = 0;  // bert token types
  std::optional<int64_t> pad_token_id;
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
};

// Parses config.json; `source` names it in errors (wrong types are reported by field).
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source);
ModelConfig load_model_config(const std::string& path);

// generation_config.json: sampling defaults and the stop ids.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;  // every id that ends generation
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::optional<int64_t> max_length;
};

GenerationConfig parse_generation_config(const nlohmann::json& config, const std::string& source);
GenerationConfig load_generation_config(const std::string& path);

// One entry of tokenizer_config.json's `added_tokens_decoder`.
struct AddedTokenInfo {
  int64_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

// tokenizer_config.json. Special tokens may be written as strings or as AddedToken dicts
// ({"content": ..., "__type": "AddedToken"}); both give the token text here.
struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token, sep_token, cls_token,
      mask_token;
  // The default template: `chat_template` when a string; the entry named "default" when a list of
  // {name, template}; or the folder's chat_template.jinja (load_tokenizer_config only).
  std::optional<std::string> chat_template;
  std::map<std::string, std::string> named_chat_templates;  // every named template of the list form
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  // Absent when the file says "no limit" (transformers writes a huge float, ~1e30).
  std::optional<int64_t> model_max_length;
  std::optional<bool> clean_up_tokenization_spaces;
  std::optional<bool> do_lower_case;
  std::string tokenizer_class;
  std::vector<AddedTokenInfo> added_tokens;  // sorted by id
};

TokenizerConfig parse_tokenizer_config(const nlohmann::json& config, const std::string& source);
// Reads `path`; when its folder holds chat_template.jinja and the JSON has no template, uses it.
TokenizerConfig load_tokenizer_config(const std::string& path);

}  // namespace wick::io
