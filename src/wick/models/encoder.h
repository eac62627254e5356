// Bidirectional encoders for sentence embeddings: BERT (MiniLM, BGE, E5: absolute positions,
// token types, GELU, post-norm) and MPNet (relative position bias buckets), plus pooling.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "wick/core/tensor.h"

namespace wick::models {

struct EncoderConfig {
  std::string model_type;  // "bert" or "mpnet"
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0, num_heads = 0;
  int64_t max_position_embeddings = 0, type_vocab_size = 0;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";
  int64_t relative_attention_num_buckets = 32;  // mpnet
  int64_t pad_token_id = 1;                     // mpnet positions start after it
};

struct EncoderLayer {
  Tensor q, k, v, o, q_b, k_b, v_b, o_b;
  Tensor attn_norm_w, attn_norm_b;
  Tensor up, up_b, down, down_b;
  Tensor out_norm_w, out_norm_b;
};

class EncoderModel {
 public:
  // A Hugging Face folder (config.json + model.safetensors).
  static EncoderModel load(const std::string& dir, Device device, Dtype dtype);
  EncoderModel() = default;
  // An empty model of this shape; the caller fills in the weights.
  EncoderModel(EncoderConfig config, Device device, Dtype dtype) : config_(std::move(config)), device_(device), dtype_(dtype) {}

  const EncoderConfig& config() const { return config_; }
  Device device() const { return device_; }

  // Last hidden states [B, T, H] of ids [B, T] with attention_mask [B, T] (1 = token).
  Tensor forward(const Tensor& ids, const Tensor& attention_mask,
                 const std::optional<Tensor>& token_type_ids = std::nullopt) const;

  Tensor word_embeddings, position_embeddings, token_type_embeddings, embed_norm_w, embed_norm_b;
  Tensor relative_attention_bias;  // mpnet [buckets, heads]
  std::vector<EncoderLayer> layers;

 private:
  EncoderConfig config_;
  Device device_;
  Dtype dtype_ = Dtype::F32;
};

enum class Pooling { Mean, Cls, LastToken };
Pooling parse_pooling(const std::string& name);
// Pools hidden [B, T, H] over the attention mask [B, T] into [B, H] (f32).
Tensor pool(const Tensor& hidden, const Tensor& attention_mask, Pooling pooling);
// Rows scaled to unit L2 norm.
Tensor l2_normalize(const Tensor& x);

}  // namespace wick::models
