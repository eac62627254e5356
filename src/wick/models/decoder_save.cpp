// Writing a decoder as a Hugging Face folder (config.json + model.safetensors) that transformers
// loads; used by `wick merge`.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/decoder.h"

namespace wick::models {

nlohmann::ordered_json hf_config_json(const DecoderConfig& c, Dtype dtype) {
  nlohmann::ordered_json j;
  bool qwen = c.model_type == "qwen2";
  j["architectures"] = {qwen ? "Qwen2ForCausalLM" : (c.model_type == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM")};
  j["model_type"] = c.model_type;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling) {
    nlohmann::ordered_json s{{"rope_type", c.rope_scaling->rope_type}, {"factor", c.rope_scaling->factor}};
    if (c.rope_scaling->low_freq_factor) s["low_freq_factor"] = *c.rope_scaling->low_freq_factor;
    if (c.rope_scaling->high_freq_factor) s["high_freq_factor"] = *c.rope_scaling->high_freq_factor;
    if (c.rope_scaling->original_max_position_embeddings)
      s["original_max_position_embeddings"] = *c.rope_scaling->original_max_position_embeddings;
    j["rope_scaling"] = s;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (!qwen) j["attention_bias"] = c.qkv_bias;
  j["torch_dtype"] = dtype == Dtype::BF16 ? "bfloat16" : (dtype == Dtype::F16 ? "float16" : "float32");
  return j;
}

void save_decoder(const DecoderModel& m, const std::string& dir, Dtype dtype) {
  WICK_CHECK(dtype == Dtype::F32 || dtype == Dtype::BF16 || dtype == Dtype::F16, "save: dtype must be f32, bf16 or f16");
  const DecoderConfig& c = m.config();
  std::vector<std::pair<std::string, Tensor>> weights;
  Tensor embed = m.embed_blocks ? dequantize(*m.embed_blocks, dtype) : m.embed_tokens;
  weights.emplace_back("model.embed_tokens.weight", embed);
  weights.emplace_back("model.norm.weight", m.final_norm);
  bool tied = m.embed_blocks ? m.lm_head_blocks && m.lm_head_blocks->blocks.same(m.embed_blocks->blocks)
                             : m.lm_head.same(m.embed_tokens);
  if (!tied) weights.emplace_back("lm_head.weight", m.lm_head_blocks ? dequantize(*m.lm_head_blocks, dtype) : m.lm_head);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const DecoderLayer& l = m.layers[i];
    std::string p = "model.layers." + std::to_string(i) + ".";
    weights.emplace_back(p + "input_layernorm.weight", l.input_norm);
    weights.emplace_back(p + "post_attention_layernorm.weight", l.post_norm);
    weights.emplace_back(p + "self_attn.q_proj.weight", l.q.to_dense(dtype));
    weights.emplace_back(p + "self_attn.k_proj.weight", l.k.to_dense(dtype));
    weights.emplace_back(p + "self_attn.v_proj.weight", l.v.to_dense(dtype));
    weights.emplace_back(p + "self_attn.o_proj.weight", l.o.to_dense(dtype));
    if (l.q_bias) weights.emplace_back(p + "self_attn.q_proj.bias", *l.q_bias);
    if (l.k_bias) weights.emplace_back(p + "self_attn.k_proj.bias", *l.k_bias);
    if (l.v_bias) weights.emplace_back(p + "self_attn.v_proj.bias", *l.v_bias);
    if (l.o_bias) weights.emplace_back(p + "self_attn.o_proj.bias", *l.o_bias);
    weights.emplace_back(p + "mlp.gate_proj.weight", l.gate.to_dense(dtype));
    weights.emplace_back(p + "mlp.up_proj.weight", l.up.to_dense(dtype));
    weights.emplace_back(p + "mlp.down_proj.weight", l.down.to_dense(dtype));
  }
  io::FileDtype file_dtype = dtype == Dtype::F32 ? io::FileDtype::F32 : (dtype == Dtype::BF16 ? io::FileDtype::BF16 : io::FileDtype::F16);
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<io::TensorToWrite> out;
  bytes.reserve(weights.size());
  for (const auto& [name, t] : weights) {
    Tensor host = to_device(astype(t, dtype), Device::cpu());
    bytes.emplace_back(size_t(host.numel()) * dtype_size(dtype));
    copy_to_host(host, bytes.back().data());
  }
  for (size_t i = 0; i < weights.size(); ++i)
    out.push_back({weights[i].first, file_dtype, weights[i].second.shape(), bytes[i].data(), bytes[i].size()});
  std::filesystem::create_directories(dir);
  io::save_safetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  std::string config = hf_config_json(c, dtype).dump(2);
  io::write_text_atomic(dir + "/config.json", config);
}

}  // namespace wick::models
