// Decoder-only transformers of the Llama family (Llama 2/3.x, SmolLM2, TinyLlama, Mistral) and
// Qwen2/Qwen2.5: configuration, weights, and a forward pass over a preallocated KV cache.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "wick/core/ops.h"
#include "wick/core/tensor.h"
#include "wick/io/gguf.h"
#include "wick/io/hf_config.h"
#include "wick/models/lora_deltas.h"
#include "wick/models/weights.h"

namespace wick::models {

struct DecoderConfig {
  std::string model_type;  // "llama" or "qwen2"
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0;
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0, max_position_embeddings = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  std::optional<io::RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama when attention_bias
  bool o_bias = false;    // Llama attention_bias

  // Validates what a decoder needs; errors name the field.
  static DecoderConfig from_model_config(const io::ModelConfig& config);
};

// RoPE inverse frequencies [head_dim / 2] with the config's scaling (llama3, linear; dynamic
// scaling leaves them unchanged within max_position_embeddings).
Tensor rope_frequencies(const DecoderConfig& config, Device device);

// Keys and values of every layer, [batch, kv_heads, capacity, head_dim], written in place.
struct KVCache {
  std::vector<Tensor> keys, values;
  int64_t length = 0;  // positions filled
  int64_t capacity() const { return keys.empty() ? 0 : keys[0].shape(2); }
};

struct DecoderLayer {
  Tensor input_norm, post_norm;
  LinearWeight q, k, v, o;
  std::optional<Tensor> q_bias, k_bias, v_bias, o_bias;
  LinearWeight gate, up, down;
};

// Which kept blocks CPU decode products multiply through 8-bit activations (WeightStorage).
enum class Int8Activations { kNone, kKQuants, kAll };

// How a decoder keeps the weights of its linear layers (the seven projections of every layer;
// embeddings, norms and lm_head stay dense, as with bitsandbytes' QLoRA). Quantized weights are
// dequantized on the fly by each product, in the forward and in the backward.
struct WeightStorage {
  // GGUF bases: keep the file's quantized blocks (Q4_0 ... Q6_K) instead of expanding them at
  // load. Projections the file stores as F32/F16/BF16 stay dense.
  bool keep_file_blocks = false;
  // Quantize the projections into this type at load, from any base (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
  std::optional<ggml::GgmlType> quantize;
  // GGUF bases: keep the token embeddings (and an untied lm_head) as the file's blocks too, for
  // inference in the memory of the file (embed_blocks / lm_head_blocks instead of the dense tensors).
  bool keep_embedding_blocks = false;
  // Blocks kept for inference: which of them let CPU products quantize activations to 8 bits
  // (QuantizedMatrix::int8_activations): none (exact products), the K-quants (Q2_K ... Q6_K, whose
  // kernels sum integer products per 256-value super-block), or all.
  Int8Activations int8_activations = Int8Activations::kNone;
};

// How a forward runs, for training.
struct ForwardOptions {
  // Logits in the model's compute dtype instead of f32 (a loss that computes in f32 reads them as
  // they are: no f32 copy of [B, T, vocab] and of its gradient).
  bool logits_in_compute_dtype = false;
  // Return the final normalised hidden states [B, T, hidden] (the model's dtype) instead of the
  // logits, for a loss that applies the LM head itself (linear_cross_entropy).
  bool final_hidden_states = false;
  // Packed rows: segments [B, T] (integers) give each token's example; a token attends only to
  // earlier tokens of its own example (padding: a segment of its own, e.g. -1). No KV cache.
  std::optional<Tensor> segments;
  // Activation checkpointing: each layer keeps only its input for the backward, which runs the
  // layer again (eager execution; see wick::checkpoint).
  bool checkpoint_layers = false;
};

class DecoderModel {
 public:
  // A Hugging Face folder with config.json and model.safetensors (or a sharded index).
  static DecoderModel load(const std::string& dir, Device device, Dtype dtype, const WeightStorage& storage = {});
  // A .gguf file (llama, qwen2): quantized weights are dequantized at load unless `storage` keeps
  // them, llama.cpp's q/k row permutation is undone, and rope_freqs (llama3 scaling) is honoured.
  static DecoderModel load_gguf(const std::string& path, Device device, Dtype dtype, const WeightStorage& storage = {});
  // The same from a file already open (its metadata parsed once for the model and its tokenizer).
  static DecoderModel load_gguf(const io::GgufFile& file, Device device, Dtype dtype, const WeightStorage& storage = {});
  DecoderModel(DecoderConfig config, Device device, Dtype dtype) : config_(std::move(config)), device_(device), dtype_(dtype) {}

  const DecoderConfig& config() const { return config_; }
  Device device() const { return device_; }
  Dtype dtype() const { return dtype_; }
  // Moves every weight into one block of `device` memory (see pack_tensors): one allocation instead
  // of one per tensor, and the runner's stacked projections become views instead of copies. Loading
  // onto a GPU reads the weights on the CPU, then places them so.
  void place_weights(Device device);
  // Bytes held by the linear layers' weights (quantized ones as blocks).
  size_t linear_weight_bytes() const;

  KVCache make_cache(int64_t batch, int64_t capacity) const;

  // Logits [B, T, vocab] (f32) of ids [B, T]. With a cache, the ids continue the cached positions
  // and their keys/values are appended. `attention_mask` [B, past + T] (1 = token, 0 = padding)
  // masks padded keys; `positions` [B, T] overrides the default past .. past+T-1 (left padding).
  // `lora`, when given, adds its low-rank updates to the linear modules it names.
  Tensor forward(const Tensor& ids, KVCache* cache = nullptr, const std::optional<Tensor>& attention_mask = std::nullopt,
                 const std::optional<Tensor>& positions = std::nullopt, const LoraDeltas* lora = nullptr,
                 const ForwardOptions& options = {}) const;

  // The names of the linear modules of layer i, in Hugging Face form ("model.layers.i.self_attn.q_proj").
  static std::string module_name(int64_t layer, const char* projection);

  // The token embeddings of ids (any shape) -> ids.shape + [hidden], in the model's dtype, from
  // embed_tokens or the kept blocks.
  Tensor embed_rows(const Tensor& ids) const;
  // x[..., hidden] @ lm_head^T -> [..., vocab] in x's dtype, from lm_head or the kept blocks.
  Tensor lm_head_product(const Tensor& x) const;

  Tensor embed_tokens, final_norm, lm_head;
  std::optional<QuantizedMatrix> embed_blocks, lm_head_blocks;  // set instead of the dense ones when kept
  std::vector<DecoderLayer> layers;
  Tensor inv_freq;

 private:
  // Layer i of the forward: x [B, T, hidden] -> x.
  Tensor layer_forward(int64_t i, Tensor x, const Tensor& pos, const std::optional<Tensor>& mask,
                       const RopeOptions& rope_opts, KVCache* cache, int64_t past, const LoraDeltas* lora) const;

  DecoderConfig config_;
  Device device_;
  Dtype dtype_;
};

// Writes `model` as a Hugging Face folder (config.json + model.safetensors in `dtype`) that
// transformers loads with AutoModelForCausalLM.
void save_decoder(const DecoderModel& model, const std::string& dir, Dtype dtype);

}  // namespace wick::models
