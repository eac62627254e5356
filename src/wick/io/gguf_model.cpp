// GGUF ↔ Hugging Face: tensor names, config fields, tokenizer keys, q/k row order.
#include "wick/io/gguf_model.h"

#include <array>
#include <cstring>
#include <utility>

#include "wick/base/error.h"
#include "wick/io/gguf_write.h"

namespace wick::io {
namespace {

// Per-layer names: GGUF "blk.N.<gguf>" ↔ HF "model.layers.N.<hf>", each with .weight or .bias.
constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kLayerNames = {{
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kGlobalNames = {{
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
}};

// Splits "<prefix>N.<rest>" into N and rest; false when the shape does not match.
bool split_layer(std::string_view name, std::string_view prefix, std::string_view& layer,
                 std::string_view& rest) {
  if (name.substr(0, prefix.size()) != prefix) return false;
  name.remove_prefix(prefix.size());
  size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  for (char ch : name.substr(0, dot)) {
    if (ch < '0' || ch > '9') return false;
  }
  layer = name.substr(0, dot);
  rest = name.substr(dot + 1);
  return true;
}

// Splits "<stem>.weight" / "<stem>.bias".
bool split_suffix(std::string_view rest, std::string_view& stem, std::string_view& suffix) {
  for (std::string_view s : {std::string_view(".weight"), std::string_view(".bias")}) {
    if (rest.size() > s.size() && rest.substr(rest.size() - s.size()) == s) {
      stem = rest.substr(0, rest.size() - s.size());
      suffix = s;
      return true;
    }
  }
  return false;
}

std::optional<int64_t> optional_int(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_int(str_cat(f.source(), ": ", key));
}

std::optional<bool> optional_bool(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_bool(str_cat(f.source(), ": ", key));
}

}  // namespace

std::optional<std::string> gguf_to_hf_name(std::string_view name) {
  for (const auto& [g, h] : kGlobalNames) {
    if (name == g) return std::string(h);
  }
  std::string_view layer, rest, stem, suffix;
  if (!split_layer(name, "blk.", layer, rest) || !split_suffix(rest, stem, suffix)) return std::nullopt;
  for (const auto& [g, h] : kLayerNames) {
    if (stem == g) return str_cat("model.layers.", layer, ".", h, suffix);
  }
  return std::nullopt;
}

std::optional<std::string> hf_to_gguf_name(std::string_view name) {
  for (const auto& [g, h] : kGlobalNames) {
    if (name == h) return std::string(g);
  }
  std::string_view layer, rest, stem, suffix;
  if (!split_layer(name, "model.layers.", layer, rest) || !split_suffix(rest, stem, suffix))
    return std::nullopt;
  for (const auto& [g, h] : kLayerNames) {
    if (stem == h) return str_cat("blk.", layer, ".", g, suffix);
  }
  return std::nullopt;
}

bool gguf_qk_rows_permuted(std::string_view architecture) {
  return architecture == "llama" || architecture == "mistral";
}

ModelConfig model_config_from_gguf(const GgufFile& f) {
  const std::string& arch = f.get_string("general.architecture");
  ModelConfig c;
  if (arch == "llama") {
    c.architectures = {"LlamaForCausalLM"};
  } else if (arch == "qwen2") {
    c.architectures = {"Qwen2ForCausalLM"};
    c.attention_bias = true;  // Qwen2 always has q/k/v biases
  } else {
    fail(f.source(), ": general.architecture '", escape_bytes(arch), "' is not supported (llama, qwen2)");
  }
  c.model_type = arch;
  std::string p = arch + ".";
  c.max_position_embeddings = f.get_int(p + "context_length");
  c.hidden_size = f.get_int(p + "embedding_length");
  c.num_hidden_layers = f.get_int(p + "block_count");
  c.intermediate_size = f.get_int(p + "feed_forward_length");
  c.num_attention_heads = f.get_int(p + "attention.head_count");
  c.num_key_value_heads = optional_int(f, p + "attention.head_count_kv").value_or(c.num_attention_heads);
  if (c.num_attention_heads <= 0 || c.hidden_size <= 0)
    fail(f.source(), ": ", p, "attention.head_count and ", p, "embedding_length must be positive");
  c.head_dim = optional_int(f, p + "attention.key_length").value_or(c.hidden_size / c.num_attention_heads);
  if (const GgufValue* v = f.find(p + "rope.freq_base")) c.rope_theta = v->as_float(p + "rope.freq_base");
  if (const GgufValue* v = f.find(p + "attention.layer_norm_rms_epsilon"))
    c.rms_norm_eps = v->as_float(p + "attention.layer_norm_rms_epsilon");

  if (const GgufValue* t = f.find(p + "rope.scaling.type")) {
    const std::string& type = t->as_string(p + "rope.scaling.type");
    if (type != "none") {
      RopeScaling r;
      r.rope_type = type;
      if (const GgufValue* v = f.find(p + "rope.scaling.factor")) r.factor = v->as_float(p + "rope.scaling.factor");
      r.original_max_position_embeddings = optional_int(f, p + "rope.scaling.original_context_length");
      c.rope_scaling = r;
    }
  }
  // llama3-style scaling is not described by keys: the converter bakes it into the rope_freqs
  // tensor, which the model reads directly.

  if (auto n = optional_int(f, p + "vocab_size")) {
    c.vocab_size = *n;
  } else if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens")) {
    c.vocab_size = int64_t(tokens->as_array("tokenizer.ggml.tokens").items.size());
  } else if (const GgufTensor* embd = f.find_tensor("token_embd.weight"); embd && !embd->shape.empty()) {
    c.vocab_size = embd->shape[0];
  }
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  if (f.find_tensor("blk.0.attn_q.bias") != nullptr) c.attention_bias = true;
  c.hidden_act = "silu";
  if (auto id = optional_int(f, "tokenizer.ggml.bos_token_id")) c.bos_token_ids = {*id};
  if (auto id = optional_int(f, "tokenizer.ggml.eos_token_id")) c.eos_token_ids = {*id};
  c.pad_token_id = optional_int(f, "tokenizer.ggml.padding_token_id");
  return c;
}

void unpermute_qk_rows_bytes(uint8_t* data, int64_t n_head, int64_t rows, size_t row_bytes) {
  if (n_head <= 0 || rows % (2 * n_head) != 0)
    fail("unpermute_qk_rows: ", rows, " rows cannot be split into ", n_head, " heads of row pairs");
  if (rows == 0 || row_bytes == 0) return;  // nothing to move (and memcpy must not see null)
  int64_t per_head = rows / n_head, half = per_head / 2;
  std::vector<uint8_t> head(size_t(per_head) * row_bytes);
  for (int64_t h = 0; h < n_head; ++h) {
    uint8_t* base = data + size_t(h * per_head) * row_bytes;
    std::memcpy(head.data(), base, head.size());
    // The converter stored HF row (i, j) of a head — i in {0,1} picks the half — at row 2j + i.
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(base + size_t(i * half + j) * row_bytes, head.data() + size_t(2 * j + i) * row_bytes,
                    row_bytes);
    }
  }
}

void permute_qk_rows_bytes(uint8_t* data, int64_t n_head, int64_t rows, size_t row_bytes) {
  if (n_head <= 0 || rows % (2 * n_head) != 0)
    fail("permute_qk_rows: ", rows, " rows cannot be split into ", n_head, " heads of row pairs");
  if (rows == 0 || row_bytes == 0) return;
  int64_t per_head = rows / n_head, half = per_head / 2;
  std::vector<uint8_t> head(size_t(per_head) * row_bytes);
  for (int64_t h = 0; h < n_head; ++h) {
    uint8_t* base = data + size_t(h * per_head) * row_bytes;
    std::memcpy(head.data(), base, head.size());
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(base + size_t(2 * j + i) * row_bytes, head.data() + size_t(i * half + j) * row_bytes, row_bytes);
    }
  }
}

void unpermute_qk_rows(float* data, int64_t n_head, int64_t rows, int64_t cols) {
  if (cols < 0) fail("unpermute_qk_rows: negative column count ", cols);
  unpermute_qk_rows_bytes(reinterpret_cast<uint8_t*>(data), n_head, rows, size_t(cols) * sizeof(float));
}

namespace {

// The head count llama.cpp's converter permuted this tensor's rows with; none when it did not.
std::optional<int64_t> permuted_qk_heads(const GgufFile& f, std::string_view name) {
  const GgufValue* arch_value = f.find("general.architecture");
  if (arch_value == nullptr) return std::nullopt;
  const std::string& arch = arch_value->as_string(str_cat(f.source(), ": general.architecture"));
  if (!gguf_qk_rows_permuted(arch)) return std::nullopt;
  std::string_view layer, rest, stem, suffix;
  if (!split_layer(name, "blk.", layer, rest) || !split_suffix(rest, stem, suffix)) return std::nullopt;
  if (stem != "attn_q" && stem != "attn_k") return std::nullopt;
  // The converter permutes q with the attention head count and k with the kv head count.
  std::string key = arch + (stem == "attn_q" ? ".attention.head_count" : ".attention.head_count_kv");
  if (stem == "attn_k" && f.find(key) == nullptr) key = arch + ".attention.head_count";
  return f.get_int(key);
}

}  // namespace

bool gguf_tensor_in_hf_order(const GgufFile& f, std::string_view name) { return !permuted_qk_heads(f, name); }

std::vector<float> gguf_tensor_f32_hf_order(const GgufFile& f, std::string_view name) {
  std::vector<float> data = f.dequantize(name);
  std::optional<int64_t> heads = permuted_qk_heads(f, name);
  if (!heads) return data;
  const GgufTensor& t = f.tensor(name);
  int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  int64_t cols = rows == 0 ? 0 : t.numel() / rows;
  try {
    unpermute_qk_rows(data.data(), *heads, rows, cols);
  } catch (const Error& e) {
    fail(f.source(), ": tensor '", name, "': ", e.what());
  }
  return data;
}

std::vector<uint8_t> gguf_tensor_bytes_hf_order(const GgufFile& f, std::string_view name) {
  const GgufTensor& t = f.tensor(name);
  std::vector<uint8_t> data(t.data, t.data + t.nbytes);
  std::optional<int64_t> heads = permuted_qk_heads(f, name);
  if (!heads) return data;
  int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  try {
    unpermute_qk_rows_bytes(data.data(), *heads, rows, rows == 0 ? 0 : t.nbytes / size_t(rows));
  } catch (const Error& e) {
    fail(f.source(), ": tensor '", name, "': ", e.what());
  }
  return data;
}

GgufTokenizerData gguf_tokenizer_data(const GgufFile& f) {
  GgufTokenizerData t;
  auto str = [&](const char* key) -> std::optional<std::string> {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return std::nullopt;
    return v->as_string(str_cat(f.source(), ": ", key));
  };
  t.model = str("tokenizer.ggml.model").value_or("");
  t.pre = str("tokenizer.ggml.pre").value_or("");
  t.chat_template = str("tokenizer.chat_template");

  // An entry of the wrong type is named with its index; the index is only spelled out then (a
  // vocabulary has tens of thousands of entries).
  auto each = [&](const char* key, auto&& fn) {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return;
    std::string what = str_cat(f.source(), ": ", key);
    const GgufArray& arr = v->as_array(what);
    for (size_t i = 0; i < arr.items.size(); ++i) {
      try {
        fn(arr.items[i], what);
      } catch (const Error&) {
        fn(arr.items[i], str_cat(what, "[", i, "]"));  // throws again, naming the entry
        throw;
      }
    }
  };
  each("tokenizer.ggml.tokens", [&](const GgufValue& v, const std::string& w) { t.tokens.push_back(v.as_string(w)); });
  each("tokenizer.ggml.scores", [&](const GgufValue& v, const std::string& w) { t.scores.push_back(float(v.as_float(w))); });
  each("tokenizer.ggml.token_type", [&](const GgufValue& v, const std::string& w) { t.token_type.push_back(int32_t(v.as_int(w))); });
  each("tokenizer.ggml.merges", [&](const GgufValue& v, const std::string& w) { t.merges.push_back(v.as_string(w)); });

  size_t n = t.tokens.size();
  if (!t.scores.empty() && t.scores.size() != n)
    fail(f.source(), ": tokenizer.ggml.scores has ", t.scores.size(), " entries for ", n, " tokens");
  if (!t.token_type.empty() && t.token_type.size() != n)
    fail(f.source(), ": tokenizer.ggml.token_type has ", t.token_type.size(), " entries for ", n, " tokens");

  auto id = [&](const char* key) -> std::optional<int64_t> {
    auto v = optional_int(f, key);
    // llama.cpp writes -1 (as u32 0xFFFFFFFF in some converters) for "none"; both mean absent.
    if (v && (*v < 0 || *v == 0xFFFFFFFF)) return std::nullopt;
    if (v && uint64_t(*v) >= n)
      fail(f.source(), ": ", key, " = ", *v, " is outside the token list (", n, " tokens)");
    return v;
  };
  t.bos_token_id = id("tokenizer.ggml.bos_token_id");
  t.eos_token_id = id("tokenizer.ggml.eos_token_id");
  t.unknown_token_id = id("tokenizer.ggml.unknown_token_id");
  t.separator_token_id = id("tokenizer.ggml.seperator_token_id");  // sic: the GGUF key's spelling
  t.padding_token_id = id("tokenizer.ggml.padding_token_id");
  t.eot_token_id = id("tokenizer.ggml.eot_token_id");
  t.eom_token_id = id("tokenizer.ggml.eom_token_id");
  t.add_bos_token = optional_bool(f, "tokenizer.ggml.add_bos_token");
  t.add_eos_token = optional_bool(f, "tokenizer.ggml.add_eos_token");
  t.add_space_prefix = optional_bool(f, "tokenizer.ggml.add_space_prefix");
  return t;
}

}  // namespace wick::io
