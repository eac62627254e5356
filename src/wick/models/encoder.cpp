// BERT and MPNet encoders on the engine's ops.
#include "wick/models/encoder.h"

#include <cmath>

#include "wick/core/ops.h"
#include "wick/io/hf_config.h"
#include "wick/io/safetensors.h"
#include "wick/models/weights.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace wick::models {

namespace {

EncoderConfig read_config(const std::string& path) {
  io::ModelConfig c = io::load_model_config(path);
  WICK_CHECK(c.model_type == "bert" || c.model_type == "mpnet", path, ": model_type '", c.model_type,
             "' is not an encoder wick knows (bert, mpnet)");
  EncoderConfig e;
  e.model_type = c.model_type;
  e.vocab_size = c.vocab_size;
  e.hidden_size = c.hidden_size;
  e.intermediate_size = c.intermediate_size;
  e.num_layers = c.num_hidden_layers;
  e.num_heads = c.num_attention_heads;
  e.max_position_embeddings = c.max_position_embeddings;
  e.type_vocab_size = c.type_vocab_size;
  e.layer_norm_eps = c.layer_norm_eps;
  e.hidden_act = c.hidden_act.empty() ? "gelu" : c.hidden_act;
  if (c.pad_token_id) e.pad_token_id = *c.pad_token_id;
  std::ifstream in(path);
  nlohmann::json raw = nlohmann::json::parse(in, nullptr, false);
  if (raw.is_object() && raw.contains("relative_attention_num_buckets") && raw["relative_attention_num_buckets"].is_number_integer())
    e.relative_attention_num_buckets = raw["relative_attention_num_buckets"];
  WICK_CHECK(e.hidden_size > 0 && e.num_heads > 0 && e.hidden_size % e.num_heads == 0 && e.num_layers > 0 &&
                 e.vocab_size > 0 && e.max_position_embeddings > 0,
             path, ": inconsistent sizes (hidden_size ", e.hidden_size, ", num_attention_heads ", e.num_heads, ")");
  WICK_CHECK(e.hidden_act == "gelu" || e.hidden_act == "gelu_new" || e.hidden_act == "relu", path,
             ": hidden_act '", e.hidden_act, "' is not supported (gelu, gelu_new, relu)");
  return e;
}

Tensor activation(const Tensor& x, const std::string& act) {
  if (act == "gelu") return gelu(x);
  if (act == "gelu_new") return gelu_tanh(x);
  return relu(x);
}

// T5-style bidirectional relative position buckets (MPNet), [T, T] of bucket ids.
std::vector<int64_t> relative_buckets(int64_t t, int64_t num_buckets, int64_t max_distance) {
  std::vector<int64_t> out(t * t);
  int64_t half = num_buckets / 2, max_exact = half / 2;
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < t; ++j) {
      int64_t n = i - j;  // -(memory - context)
      int64_t bucket = n < 0 ? half : 0;
      n = std::abs(n);
      if (n < max_exact) {
        bucket += n;
      } else {
        int64_t large = max_exact + int64_t(std::log(double(n) / max_exact) / std::log(double(max_distance) / max_exact) *
                                            double(half - max_exact));
        bucket += std::min(large, half - 1);
      }
      out[i * t + j] = bucket;
    }
  return out;
}

}  // namespace

EncoderModel EncoderModel::load(const std::string& dir, Device device, Dtype dtype) {
  EncoderModel m;
  m.config_ = read_config(dir + "/config.json");
  m.device_ = device;
  m.dtype_ = dtype;
  const EncoderConfig& c = m.config_;
  io::SafeTensors file = io::SafeTensors::open_dir(dir);
  // Checkpoints saved from a task model carry the base model's prefix.
  std::string prefix;
  for (const char* p : {"bert.", "mpnet.", "model."})
    if (file.contains(std::string(p) + "embeddings.word_embeddings.weight")) prefix = p;
  int64_t h = c.hidden_size, f = c.intermediate_size;
  auto w = [&](const std::string& name, const Shape& shape) {
    return load_weight(file, prefix + name, shape, dtype, device);
  };
  m.word_embeddings = w("embeddings.word_embeddings.weight", {c.vocab_size, h});
  m.position_embeddings = w("embeddings.position_embeddings.weight", {c.max_position_embeddings, h});
  if (c.model_type == "bert") m.token_type_embeddings = w("embeddings.token_type_embeddings.weight", {c.type_vocab_size, h});
  m.embed_norm_w = w("embeddings.LayerNorm.weight", {h});
  m.embed_norm_b = w("embeddings.LayerNorm.bias", {h});
  if (c.model_type == "mpnet")
    m.relative_attention_bias = w("encoder.relative_attention_bias.weight", {c.relative_attention_num_buckets, c.num_heads});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    std::string p = "encoder.layer." + std::to_string(i) + ".";
    EncoderLayer l;
    bool bert = c.model_type == "bert";
    std::string att = bert ? p + "attention.self." : p + "attention.attn.";
    l.q = w(att + (bert ? "query" : "q") + ".weight", {h, h});
    l.q_b = w(att + (bert ? "query" : "q") + ".bias", {h});
    l.k = w(att + (bert ? "key" : "k") + ".weight", {h, h});
    l.k_b = w(att + (bert ? "key" : "k") + ".bias", {h});
    l.v = w(att + (bert ? "value" : "v") + ".weight", {h, h});
    l.v_b = w(att + (bert ? "value" : "v") + ".bias", {h});
    std::string out = bert ? p + "attention.output.dense" : p + "attention.attn.o";
    l.o = w(out + ".weight", {h, h});
    l.o_b = w(out + ".bias", {h});
    std::string norm = bert ? p + "attention.output.LayerNorm" : p + "attention.LayerNorm";
    l.attn_norm_w = w(norm + ".weight", {h});
    l.attn_norm_b = w(norm + ".bias", {h});
    l.up = w(p + "intermediate.dense.weight", {f, h});
    l.up_b = w(p + "intermediate.dense.bias", {f});
    l.down = w(p + "output.dense.weight", {h, f});
    l.down_b = w(p + "output.dense.bias", {h});
    l.out_norm_w = w(p + "output.LayerNorm.weight", {h});
    l.out_norm_b = w(p + "output.LayerNorm.bias", {h});
    m.layers.push_back(std::move(l));
  }
  return m;
}

Tensor EncoderModel::forward(const Tensor& ids, const Tensor& attention_mask, const std::optional<Tensor>& token_type_ids) const {
  const EncoderConfig& c = config_;
  WICK_CHECK(ids.ndim() == 2 && attention_mask.shape() == ids.shape(), "encoder: ids ", shape_str(ids.shape()),
             " and attention_mask ", shape_str(attention_mask.shape()), " must both be [batch, seq]");
  int64_t b = ids.shape(0), t = ids.shape(1), heads = c.num_heads, d = c.hidden_size / heads;
  WICK_CHECK(b > 0 && t > 0, "encoder: empty batch ", shape_str(ids.shape()));
  int64_t max_t = c.model_type == "mpnet" ? c.max_position_embeddings - c.pad_token_id - 1 : c.max_position_embeddings;
  WICK_CHECK(t <= max_t, "encoder: ", t, " tokens exceed the model's ", max_t, " positions (truncate the input)");
  Tensor x = embedding(word_embeddings, ids);
  if (c.model_type == "bert") {
    x = x + embedding(position_embeddings, arange(0, double(t), 1, Dtype::I64, device_));
    Tensor types = token_type_ids ? *token_type_ids : zeros({b, t}, Dtype::I64, device_);
    x = x + embedding(token_type_embeddings, types);
  } else {
    // MPNet numbers real tokens from pad_token_id + 1 (padding keeps pad_token_id).
    std::vector<int64_t> id = ids.to_vector<int64_t>(), pos(b * t);
    for (int64_t i = 0; i < b; ++i) {
      int64_t run = 0;
      for (int64_t j = 0; j < t; ++j) {
        bool real = id[i * t + j] != c.pad_token_id;
        run += real;
        pos[i * t + j] = real ? run + c.pad_token_id : c.pad_token_id;
      }
    }
    x = x + embedding(position_embeddings, Tensor::from_vector(pos, {b, t}, device_));
  }
  x = layer_norm(x, embed_norm_w, embed_norm_b, c.layer_norm_eps);
  // Additive mask over keys; MPNet adds its relative position bias.
  Tensor keep = reshape(ne(attention_mask, zeros({}, attention_mask.dtype(), device_)), {b, 1, 1, t});
  Tensor mask = where(keep, zeros({}, Dtype::F32, device_), full({}, -INFINITY, Dtype::F32, device_));
  if (c.model_type == "mpnet") {
    Tensor buckets = Tensor::from_vector(relative_buckets(t, c.relative_attention_num_buckets, 128), {t, t}, device_);
    Tensor bias = permute(embedding(astype(relative_attention_bias, Dtype::F32), buckets), {2, 0, 1});  // [heads, T, T]
    mask = mask + unsqueeze(bias, 0);
  }
  for (const EncoderLayer& l : layers) {
    auto heads_of = [&](const Tensor& w, const Tensor& bias) {
      return transpose(reshape(linear(x, w, bias), {b, t, heads, d}), 1, 2);
    };
    Tensor a = scaled_dot_product_attention(heads_of(l.q, l.q_b), heads_of(l.k, l.k_b), heads_of(l.v, l.v_b), mask);
    a = reshape(transpose(a, 1, 2), {b, t, c.hidden_size});
    x = layer_norm(x + linear(a, l.o, l.o_b), l.attn_norm_w, l.attn_norm_b, c.layer_norm_eps);
    Tensor f = linear(activation(linear(x, l.up, l.up_b), c.hidden_act), l.down, l.down_b);
    x = layer_norm(x + f, l.out_norm_w, l.out_norm_b, c.layer_norm_eps);
  }
  return x;
}

Pooling parse_pooling(const std::string& name) {
  if (name == "mean") return Pooling::Mean;
  if (name == "cls") return Pooling::Cls;
  if (name == "last" || name == "lasttoken") return Pooling::LastToken;
  fail("unknown pooling '", name, "' (expected mean, cls or last)");
}

Tensor pool(const Tensor& hidden, const Tensor& attention_mask, Pooling pooling) {
  Tensor h = astype(hidden, Dtype::F32);
  int64_t b = h.shape(0), t = h.shape(1);
  if (pooling == Pooling::Cls) return reshape(narrow(h, 1, 0, 1), {b, h.shape(2)});
  Tensor m = astype(attention_mask, Dtype::F32);
  if (pooling == Pooling::Mean) {
    Tensor summed = sum(h * unsqueeze(m, -1), {1});
    return summed / maximum(sum(m, {1}, true), full({}, 1e-9, Dtype::F32, h.device()));
  }
  // The last real token of each row (right padding): index = count - 1.
  Tensor last = astype(sum(m, {1}) - 1.0, Dtype::I64);
  Tensor onehot = astype(eq(unsqueeze(last, 1), unsqueeze(arange(0, double(t), 1, Dtype::I64, h.device()), 0)), Dtype::F32);
  return sum(h * unsqueeze(onehot, -1), {1});
}

Tensor l2_normalize(const Tensor& x) {
  Tensor norm = sqrt(sum(x * x, {-1}, true));
  return x / maximum(norm, full({}, 1e-12, x.dtype(), x.device()));
}

}  // namespace wick::models
