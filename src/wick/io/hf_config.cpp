// config.json → ModelConfig.
#include "wick/io/hf_config.h"

#include "wick/base/error.h"
#include "wick/io/json_fields.h"

namespace wick::io {
namespace {

using detail::JsonFields;

// `rope_scaling` and `rope_parameters` share their keys; the old files name the type `type`.
std::optional<RopeScaling> parse_rope(const JsonFields& rope) {
  RopeScaling r;
  std::optional<std::string> type = rope.string("rope_type");
  if (!type) type = rope.string("type");
  if (!type || *type == "default") return std::nullopt;
  r.rope_type = *type;
  r.factor = rope.number("factor").value_or(1.0);
  r.low_freq_factor = rope.number("low_freq_factor");
  r.high_freq_factor = rope.number("high_freq_factor");
  r.original_max_position_embeddings = rope.integer("original_max_position_embeddings");
  return r;
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source) {
  JsonFields f(config, source);
  ModelConfig c;
  c.model_type = f.string("model_type").value_or("");
  c.architectures = f.strings("architectures");
  c.hidden_size = f.integer("hidden_size").value_or(0);
  c.intermediate_size = f.integer("intermediate_size").value_or(0);
  c.num_hidden_layers = f.integer("num_hidden_layers").value_or(0);
  c.num_attention_heads = f.integer("num_attention_heads").value_or(0);
  c.num_key_value_heads = f.integer("num_key_value_heads").value_or(c.num_attention_heads);
  if (auto hd = f.integer("head_dim")) {
    c.head_dim = *hd;
  } else if (c.num_attention_heads > 0) {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.vocab_size = f.integer("vocab_size").value_or(0);
  c.max_position_embeddings = f.integer("max_position_embeddings").value_or(0);
  c.rms_norm_eps = f.number("rms_norm_eps").value_or(c.rms_norm_eps);
  c.layer_norm_eps = f.number("layer_norm_eps").value_or(c.layer_norm_eps);

  // Newer transformers move rope_theta into rope_parameters; either place is accepted.
  std::optional<double> theta = f.number("rope_theta");
  if (auto params = f.object("rope_parameters")) {
    if (!theta) theta = params->number("rope_theta");
    c.rope_scaling = parse_rope(*params);
  }
  if (auto scaling = f.object("rope_scaling")) {
    if (!c.rope_scaling) c.rope_scaling = parse_rope(*scaling);
  }
  c.rope_theta = theta.value_or(c.rope_theta);

  // PretrainedConfig defaults to tied embeddings; the decoder-only configs wick loads default to
  // untied (LlamaConfig, Qwen2Config, MistralConfig).
  bool decoder = c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "mistral";
  c.tie_word_embeddings = f.boolean("tie_word_embeddings").value_or(!decoder);
  c.torch_dtype = f.string("torch_dtype").value_or(f.string("dtype").value_or(""));
  c.hidden_act = f.string("hidden_act").value_or(decoder ? "silu" : "gelu");
  c.attention_bias = f.boolean("attention_bias").value_or(false);
  c.type_vocab_size = f.integer("type_vocab_size").value_or(c.model_type == "bert" ? 2 : 0);
  c.pad_token_id = f.integer("pad_token_id");
  c.bos_token_ids = f.integer_or_list("bos_token_id");
  c.eos_token_ids = f.integer_or_list("eos_token_id");

  for (auto [name, value] : {std::pair{"hidden_size", c.hidden_size},
                             std::pair{"num_hidden_layers", c.num_hidden_layers},
                             std::pair{"num_attention_heads", c.num_attention_heads},
                             std::pair{"num_key_value_heads", c.num_key_value_heads},
                             std::pair{"vocab_size", c.vocab_size}}) {
    if (value < 0) fail(source, ": field '", name, "' must not be negative, got ", value);
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(detail::read_json_file(path), path);
}

}  // namespace wick::io
