// Writing a decoder as a Hugging Face folder (config.json + model.safetensors) that transformers
// loads, or as a GGUF file that llama.cpp loads; used by `wick merge`.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "wick/core/ops.h"
#include "wick/io/gguf_write.h"
#include "wick/io/gguf_model.h"
#include "wick/io/safetensors.h"
#include "wick/models/decoder_save.h"

namespace wick::models {

namespace {

nlohmann::ordered_json hf_config_json(const DecoderConfig& c, Dtype dtype, const SpecialTokenIds& ids) {
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
  if (ids.bos) j["bos_token_id"] = *ids.bos;
  if (ids.eos.size() == 1) j["eos_token_id"] = ids.eos.front();
  if (ids.eos.size() > 1) j["eos_token_id"] = ids.eos;
  if (ids.pad) j["pad_token_id"] = *ids.pad;
  return j;
}

// The weights under their Hugging Face names; quantized ones dequantized to `dtype`.
std::vector<std::pair<std::string, Tensor>> hf_weights(const DecoderModel& m, Dtype dtype) {
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
  return weights;
}

// The bytes of `t` in `dtype`, little-endian, row-major.
std::vector<uint8_t> host_bytes(const Tensor& t, Dtype dtype) {
  Tensor host = to_device(astype(t, dtype), Device::cpu());
  std::vector<uint8_t> bytes(size_t(host.numel()) * dtype_size(dtype));
  copy_to_host(host, bytes.data());
  return bytes;
}

}  // namespace

void save_decoder(const DecoderModel& m, const std::string& dir, Dtype dtype, const SpecialTokenIds& ids) {
  std::vector<std::pair<std::string, Tensor>> weights = hf_weights(m, dtype);
  io::FileDtype file_dtype = dtype == Dtype::F32 ? io::FileDtype::F32 : (dtype == Dtype::BF16 ? io::FileDtype::BF16 : io::FileDtype::F16);
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<io::TensorToWrite> out;
  bytes.reserve(weights.size());
  for (const auto& [name, t] : weights) bytes.push_back(host_bytes(t, dtype));
  for (size_t i = 0; i < weights.size(); ++i)
    out.push_back({weights[i].first, file_dtype, weights[i].second.shape(), bytes[i].data(), bytes[i].size()});
  std::filesystem::create_directories(dir);
  io::save_safetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  std::string config = hf_config_json(m.config(), dtype, ids).dump(2);
  io::write_text_atomic(dir + "/config.json", config);
}

void save_decoder(const DecoderModel& m, const std::string& dir, Dtype dtype) { save_decoder(m, dir, dtype, {}); }

void save_decoder_gguf(const DecoderModel& m, const std::string& path, Dtype dtype,
                       const std::vector<std::pair<std::string, io::GgufValue>>& tokenizer_metadata,
                       const std::string& name) {
  const DecoderConfig& c = m.config();
  const std::string& arch = c.model_type;
  WICK_CHECK(arch == "llama" || arch == "qwen2", path, ": GGUF output supports llama and qwen2 models, not ", arch);
  WICK_CHECK(!c.o_bias || arch == "llama", path, ": an o_proj bias cannot be written for ", arch);
  using ggml::GgmlType, io::gguf_f32, io::gguf_string, io::gguf_u32;
  std::string p = arch + ".";
  std::vector<std::pair<std::string, io::GgufValue>> meta{
      {"general.architecture", gguf_string(arch)},
      {"general.name", gguf_string(name)},
      // llama.cpp's llama_ftype: all f32, mostly f16, mostly bf16.
      {"general.file_type", gguf_u32(dtype == Dtype::F32 ? 0 : (dtype == Dtype::F16 ? 1 : 32))},
      {p + "vocab_size", gguf_u32(uint32_t(c.vocab_size))},
      {p + "context_length", gguf_u32(uint32_t(c.max_position_embeddings))},
      {p + "embedding_length", gguf_u32(uint32_t(c.hidden_size))},
      {p + "block_count", gguf_u32(uint32_t(c.num_layers))},
      {p + "feed_forward_length", gguf_u32(uint32_t(c.intermediate_size))},
      {p + "attention.head_count", gguf_u32(uint32_t(c.num_heads))},
      {p + "attention.head_count_kv", gguf_u32(uint32_t(c.num_kv_heads))},
      {p + "attention.key_length", gguf_u32(uint32_t(c.head_dim))},
      {p + "attention.value_length", gguf_u32(uint32_t(c.head_dim))},
      {p + "rope.dimension_count", gguf_u32(uint32_t(c.head_dim))},
      {p + "rope.freq_base", gguf_f32(float(c.rope_theta))},
      {p + "attention.layer_norm_rms_epsilon", gguf_f32(float(c.rms_norm_eps))},
  };
  for (const auto& kv : tokenizer_metadata) meta.push_back(kv);

  std::vector<std::pair<std::string, Tensor>> weights = hf_weights(m, dtype);
  // RoPE scaling as llama.cpp's converter writes it for llama: per-frequency divisors in rope_freqs.
  DecoderConfig unscaled = c;
  unscaled.rope_scaling.reset();
  std::vector<float> plain = rope_frequencies(unscaled, Device::cpu()).to_vector<float>();
  std::vector<float> used = to_device(m.inv_freq, Device::cpu()).to_vector<float>();
  std::vector<float> factors(plain.size());
  bool scaled = false;
  for (size_t i = 0; i < plain.size(); ++i) {
    factors[i] = plain[i] / used[i];
    scaled = scaled || std::fabs(factors[i] - 1.0f) > 1e-6f;
  }
  WICK_CHECK(!scaled || arch == "llama", path, ": the RoPE scaling of this ", arch, " model cannot be written to GGUF");
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<io::GgufTensorToWrite> tensors;
  bytes.reserve(weights.size() + 1);
  for (const auto& [hf_name, t] : weights) {
    std::optional<std::string> gguf_name = io::hf_to_gguf_name(hf_name);
    WICK_CHECK(gguf_name.has_value(), path, ": no GGUF name for ", hf_name);
    // llama.cpp keeps norms and biases in f32, as its converter writes them.
    Dtype stored = t.shape().size() == 1 ? Dtype::F32 : dtype;
    bytes.push_back(host_bytes(t, stored));
    bool q = hf_name.find("self_attn.q_proj") != std::string::npos, k = hf_name.find("self_attn.k_proj") != std::string::npos;
    if (io::gguf_qk_rows_permuted(arch) && (q || k)) {
      int64_t rows = t.shape()[0];
      io::permute_qk_rows_bytes(bytes.back().data(), q ? c.num_heads : c.num_kv_heads, rows, bytes.back().size() / size_t(rows));
    }
    GgmlType type = stored == Dtype::F32 ? GgmlType::F32 : (stored == Dtype::F16 ? GgmlType::F16 : GgmlType::BF16);
    tensors.push_back({*gguf_name, type, t.shape(), bytes.back().data(), bytes.back().size()});
  }
  if (scaled) {
    bytes.emplace_back(factors.size() * sizeof(float));
    std::memcpy(bytes.back().data(), factors.data(), bytes.back().size());
    tensors.push_back({"rope_freqs.weight", GgmlType::F32, {int64_t(factors.size())}, bytes.back().data(), bytes.back().size()});
  }
  io::save_gguf(path, meta, tensors);
}

}  // namespace wick::models
