// Llama-family and Qwen2 decoders on the engine's ops.
#include "wick/models/decoder.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "wick/backend/cpu/quant_dot.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/core/quantized.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/safetensors.h"
#include "wick/models/weights.h"

namespace wick::models {

DecoderConfig DecoderConfig::from_model_config(const io::ModelConfig& c) {
  DecoderConfig d;
  d.model_type = c.model_type;
  WICK_CHECK(c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "mistral",
             "config.json: model_type '", c.model_type, "' is not a decoder wick knows (llama, mistral, qwen2)");
  auto positive = [](int64_t v, const char* field) {
    WICK_CHECK(v > 0, "config.json: ", field, " must be positive, got ", v);
    return v;
  };
  d.vocab_size = positive(c.vocab_size, "vocab_size");
  d.hidden_size = positive(c.hidden_size, "hidden_size");
  d.intermediate_size = positive(c.intermediate_size, "intermediate_size");
  d.num_layers = positive(c.num_hidden_layers, "num_hidden_layers");
  d.num_heads = positive(c.num_attention_heads, "num_attention_heads");
  d.num_kv_heads = positive(c.num_key_value_heads ? c.num_key_value_heads : c.num_attention_heads, "num_key_value_heads");
  d.head_dim = positive(c.head_dim ? c.head_dim : c.hidden_size / c.num_attention_heads, "head_dim");
  WICK_CHECK(d.num_heads % d.num_kv_heads == 0, "config.json: num_attention_heads ", d.num_heads,
             " is not a multiple of num_key_value_heads ", d.num_kv_heads);
  d.max_position_embeddings = c.max_position_embeddings;
  d.rms_norm_eps = c.rms_norm_eps;
  d.rope_theta = c.rope_theta;
  d.rope_scaling = c.rope_scaling;
  d.tie_word_embeddings = c.tie_word_embeddings;
  d.qkv_bias = c.model_type == "qwen2" || c.attention_bias;
  d.o_bias = c.model_type != "qwen2" && c.attention_bias;
  return d;
}

Tensor rope_frequencies(const DecoderConfig& config, Device device) {
  int64_t half = config.head_dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i)
    inv[i] = float(1.0 / std::pow(config.rope_theta, double(2 * i) / double(config.head_dim)));
  if (config.rope_scaling) {
    const io::RopeScaling& s = *config.rope_scaling;
    if (s.rope_type == "linear") {
      for (float& f : inv) f = float(f / s.factor);
    } else if (s.rope_type == "llama3") {
      // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between
      // interpolated smoothly.
      WICK_CHECK(s.low_freq_factor && s.high_freq_factor && s.original_max_position_embeddings,
                 "config.json: llama3 rope_scaling needs low_freq_factor, high_freq_factor and "
                 "original_max_position_embeddings");
      double old_len = double(*s.original_max_position_embeddings);
      double low_wavelen = old_len / *s.low_freq_factor, high_wavelen = old_len / *s.high_freq_factor;
      for (float& f : inv) {
        double wavelen = 2 * M_PI / f;
        if (wavelen > low_wavelen) {
          f = float(f / s.factor);
        } else if (wavelen >= high_wavelen) {
          double smooth = (old_len / wavelen - *s.low_freq_factor) / (*s.high_freq_factor - *s.low_freq_factor);
          f = float((1 - smooth) * f / s.factor + smooth * f);
        }
      }
    } else if (s.rope_type != "dynamic" && s.rope_type != "default") {
      fail("config.json: rope_scaling type '", s.rope_type, "' is not supported (llama3, linear, dynamic)");
    }
  }
  return Tensor::from_vector(inv, {half}, device);
}

namespace {

bool is_k_quant(ggml::GgmlType type) {
  using ggml::GgmlType;
  return type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::Q4_K || type == GgmlType::Q5_K ||
         type == GgmlType::Q6_K;
}

bool int8_activations_for(const WeightStorage& storage, ggml::GgmlType type) {
  switch (storage.int8_activations) {
    case Int8Activations::kNone: return false;
    case Int8Activations::kKQuants: return is_k_quant(type);
    case Int8Activations::kAll: return true;
  }
  return false;
}

// Reads the weights named in Hugging Face form from whichever file holds them; the projections'
// weights through the LinearSource, which may keep them quantized.
using WeightSource = std::function<Tensor(const std::string& name, const Shape& shape)>;
using LinearSource = std::function<LinearWeight(const std::string& name, const Shape& shape)>;

// `ew` reads the embedding and lm_head matrices (dense, or kept as blocks).
DecoderModel build_decoder(const DecoderConfig& c, Device device, Dtype dtype, const WeightSource& w,
                           const LinearSource& lw, const LinearSource& ew,
                           const std::function<bool(const std::string&)>& has) {
  DecoderModel m(c, device, dtype);
  int64_t h = c.hidden_size, qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  auto set = [](const LinearWeight& wt, Tensor& dense, std::optional<QuantizedMatrix>& blocks) {
    if (wt.is_quantized()) blocks = wt.blocks();
    else dense = wt.dense();
  };
  set(ew("model.embed_tokens.weight", {c.vocab_size, h}), m.embed_tokens, m.embed_blocks);
  m.final_norm = w("model.norm.weight", {h});
  if (c.tie_word_embeddings && !has("lm_head.weight")) {
    m.lm_head = m.embed_tokens;
    m.lm_head_blocks = m.embed_blocks;
  } else {
    set(ew("lm_head.weight", {c.vocab_size, h}), m.lm_head, m.lm_head_blocks);
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    DecoderLayer l;
    l.input_norm = w(p + "input_layernorm.weight", {h});
    l.post_norm = w(p + "post_attention_layernorm.weight", {h});
    l.q = lw(p + "self_attn.q_proj.weight", {qd, h});
    l.k = lw(p + "self_attn.k_proj.weight", {kvd, h});
    l.v = lw(p + "self_attn.v_proj.weight", {kvd, h});
    l.o = lw(p + "self_attn.o_proj.weight", {h, qd});
    if (c.qkv_bias) {
      l.q_bias = w(p + "self_attn.q_proj.bias", {qd});
      l.k_bias = w(p + "self_attn.k_proj.bias", {kvd});
      l.v_bias = w(p + "self_attn.v_proj.bias", {kvd});
    }
    if (c.o_bias) l.o_bias = w(p + "self_attn.o_proj.bias", {h});
    l.gate = lw(p + "mlp.gate_proj.weight", {c.intermediate_size, h});
    l.up = lw(p + "mlp.up_proj.weight", {c.intermediate_size, h});
    l.down = lw(p + "mlp.down_proj.weight", {h, c.intermediate_size});
    m.layers.push_back(std::move(l));
  }
  m.inv_freq = rope_frequencies(c, Device::cpu());
  return m;
}

void check_storage(const WeightStorage& storage) {
  WICK_CHECK(!(storage.keep_file_blocks && storage.quantize),
             "weights: keeping a file's quantized blocks and quantizing at load exclude each other");
}

// A linear weight quantized at load from its f32 values (on the CPU), then moved to `device`.
LinearWeight quantized_at_load(const std::string& name, const Tensor& f32, ggml::GgmlType type, Device device) {
  try {
    return to_device(quantize(f32, type), device);
  } catch (const Error& e) {
    fail("weight '", name, "': ", e.what());
  }
}

}  // namespace

DecoderModel DecoderModel::load(const std::string& dir, Device device, Dtype dtype, const WeightStorage& storage) {
  check_storage(storage);
  Device host = Device::cpu();  // weights are read on the CPU, then placed (place_weights)
  WICK_CHECK(!storage.keep_file_blocks, dir, ": only a GGUF base has quantized blocks to keep (this is a ",
             "safetensors folder; quantize it at load instead: q4_0, q4_1, q5_0, q5_1 or q8_0)");
  DecoderConfig c = DecoderConfig::from_model_config(io::load_model_config(dir + "/config.json"));
  io::SafeTensors file = io::SafeTensors::open_dir(dir);
  WeightSource w = [&](const std::string& name, const Shape& shape) { return load_weight(file, name, shape, dtype, host); };
  LinearSource lw = [&](const std::string& name, const Shape& shape) -> LinearWeight {
    if (!storage.quantize) return w(name, shape);
    return quantized_at_load(name, load_weight(file, name, shape, Dtype::F32, host), *storage.quantize, host);
  };
  WICK_CHECK(!storage.keep_embedding_blocks, dir, ": only a GGUF base has quantized embeddings to keep");
  LinearSource ew = [&](const std::string& name, const Shape& shape) -> LinearWeight { return w(name, shape); };
  DecoderModel m = build_decoder(c, device, dtype, w, lw, ew, [&](const std::string& name) { return file.contains(name); });
  if (!device.is_cpu()) m.place_weights(device);
  return m;
}

DecoderModel DecoderModel::load_gguf(const std::string& path, Device device, Dtype dtype, const WeightStorage& storage) {
  return load_gguf(io::GgufFile::open(path), device, dtype, storage);
}

DecoderModel DecoderModel::load_gguf(const io::GgufFile& file, Device device, Dtype dtype, const WeightStorage& storage) {
  check_storage(storage);
  Device host = Device::cpu();  // weights are read on the CPU, then placed (place_weights)
  const std::string& path = file.source();
  DecoderConfig c = DecoderConfig::from_model_config(io::model_config_from_gguf(file));
  auto tensor = [&](const std::string& name, const Shape& shape) -> const io::GgufTensor& {
    std::optional<std::string> g = io::hf_to_gguf_name(name);
    WICK_CHECK(g.has_value(), path, ": no GGUF name for weight '", name, "'");
    const io::GgufTensor* t = file.find_tensor(*g);
    WICK_CHECK(t != nullptr, "missing weight '", *g, "' (", name, ") in ", path);
    WICK_CHECK(t->shape == shape, "weight '", *g, "' in ", path, " has shape ", shape_str(t->shape),
               " but the metadata implies ", shape_str(shape));
    return *t;
  };
  // Quantized blocks are expanded once, at load, unless kept.
  auto f32 = [&](const std::string& name, const Shape& shape) {
    return Tensor::from_vector(io::gguf_tensor_f32_hf_order(file, tensor(name, shape).name), shape, host);
  };
  WeightSource w = [&](const std::string& name, const Shape& shape) { return astype(f32(name, shape), dtype); };
  // A tensor's quantized blocks kept as they are: u8 rows where they lie in the mapping when the
  // file holds its rows in Hugging Face order, else a copy with the rows restored. The views share
  // one storage over the tensor data, so neighbours in the file stack without a copy.
  const uint8_t* data_begin = nullptr;
  const uint8_t* data_end = nullptr;
  for (const io::GgufTensor& t : file.tensors()) {
    if (!data_begin || t.data < data_begin) data_begin = t.data;
    if (!data_end || t.data + t.nbytes > data_end) data_end = t.data + t.nbytes;
  }
  // Q4_K, Q5_K and Q6_K blocks that the CPU multiplies through 8-bit activations are reordered into
  // the lane layout of its kernels (QuantizedMatrix::lanes). The kept tensors then live in memory of
  // their own (reordered, or copied as they are), still back to back as in the file, and the file's
  // pages of each are let go once it is written, so the weights are not resident twice.
  auto lanes_for = [&](ggml::GgmlType type) {
    return device.is_cpu() && int8_activations_for(storage, type) && cpu::k_lanes_type(type) &&
           cpu::k_lanes_available();
  };
  bool any_lanes = false;
  for (const io::GgufTensor& t : file.tensors())
    any_lanes = any_lanes || ((storage.keep_file_blocks || storage.keep_embedding_blocks) && lanes_for(t.type));
  const MappedRegion region = any_lanes ? MappedRegion::owned(data_begin, size_t(data_end - data_begin))
                                        : MappedRegion(data_begin, size_t(data_end - data_begin), file.owner());
  std::set<const uint8_t*> written;  // a tensor kept twice is written once
  auto kept_blocks = [&](const io::GgufTensor& t, const Shape& shape) {
    const Shape rows{shape[0], int64_t(t.nbytes) / shape[0]};
    const bool lanes = lanes_for(t.type);
    const int64_t n_blocks = shape[0] * shape[1] / 256;
    Tensor blocks;
    if (io::gguf_tensor_in_hf_order(file, t.name)) {
      if (any_lanes && written.insert(t.data).second) {
        uint8_t* bytes = region.writable(t.data);
        if (lanes) {
          const size_t block_bytes = ggml::ggml_type_info(t.type).type_size;
          cpu::parallel_for(n_blocks, 4096, [&](int64_t b0, int64_t b1) {
            cpu::k_lanes_pack(t.type, t.data + size_t(b0) * block_bytes, b1 - b0, bytes + size_t(b0) * block_bytes);
          });
        } else {
          std::memcpy(bytes, t.data, t.nbytes);
        }
        file.release(t.data, t.nbytes);
      }
      blocks = region.tensor(t.data, rows, Dtype::U8);
    } else {
      std::vector<uint8_t> bytes = io::gguf_tensor_bytes_hf_order(file, t.name);
      if (lanes) cpu::k_lanes_pack(t.type, bytes.data(), n_blocks, bytes.data());
      blocks = Tensor::from_data(bytes.data(), rows, Dtype::U8, Device::cpu());
    }
    QuantizedMatrix q = quantized_matrix(blocks, t.type, shape[0], shape[1]);
    q.int8_activations = int8_activations_for(storage, t.type);
    q.lanes = lanes;
    return q;
  };
  LinearSource lw = [&](const std::string& name, const Shape& shape) -> LinearWeight {
    const io::GgufTensor& t = tensor(name, shape);
    if (storage.keep_file_blocks && keeps_blocks(t.type)) return kept_blocks(t, shape);
    if (storage.quantize) return quantized_at_load(name, f32(name, shape), *storage.quantize, host);
    return w(name, shape);
  };
  LinearSource ew = [&](const std::string& name, const Shape& shape) -> LinearWeight {
    const io::GgufTensor& t = tensor(name, shape);
    if (storage.keep_embedding_blocks && keeps_blocks(t.type)) return kept_blocks(t, shape);
    return w(name, shape);
  };
  DecoderModel m = build_decoder(c, device, dtype, w, lw, ew, [&](const std::string& name) {
    std::optional<std::string> g = io::hf_to_gguf_name(name);
    return g && file.find_tensor(*g) != nullptr;
  });
  // llama.cpp stores scaled RoPE (llama3) as per-frequency divisors.
  if (const io::GgufTensor* f = file.find_tensor("rope_freqs.weight")) {
    WICK_CHECK(f->numel() == c.head_dim / 2, path, ": rope_freqs.weight has ", f->numel(), " entries, expected ",
               c.head_dim / 2);
    Tensor factors = Tensor::from_vector(file.dequantize("rope_freqs.weight"), {c.head_dim / 2}, host);
    m.inv_freq = m.inv_freq / factors;
  }
  if (!device.is_cpu()) m.place_weights(device);
  return m;
}

// Each run of a layer's projections that the runner stacks (q, k, v; gate, up: consecutive parts of
// one kind and type) lies back to back, its biases likewise, so the stacks are views.
void DecoderModel::place_weights(Device device) {
  std::vector<std::vector<Tensor*>> groups;
  Tensor none;
  auto bias = [&](std::optional<Tensor>& b) { return b ? &*b : &none; };
  auto runs = [&](std::vector<LinearWeight*> parts, std::vector<Tensor*> biases) {
    for (size_t i = 0; i < parts.size();) {
      size_t j = i + 1;
      while (j < parts.size() && stackable(*parts[i], *parts[j])) ++j;
      std::vector<Tensor*> weights, run_biases;
      for (size_t k = i; k < j; ++k) {
        weights.push_back(&parts[k]->memory());
        if (!biases.empty()) run_biases.push_back(biases[k]);
      }
      groups.push_back(weights);
      groups.push_back(run_biases);
      i = j;
    }
  };
  groups.push_back({embed_blocks ? &embed_blocks->blocks : &embed_tokens});
  for (DecoderLayer& l : layers) {
    groups.push_back({&l.input_norm, &l.post_norm});
    runs({&l.q, &l.k, &l.v}, {bias(l.q_bias), bias(l.k_bias), bias(l.v_bias)});
    runs({&l.o}, {bias(l.o_bias)});
    runs({&l.gate, &l.up}, {});
    runs({&l.down}, {});
  }
  groups.push_back({&final_norm, &inv_freq});
  groups.push_back({lm_head_blocks ? &lm_head_blocks->blocks : &lm_head});
  pack_tensors(groups, device);
  device_ = device;
}

size_t DecoderModel::linear_weight_bytes() const {
  size_t total = 0;
  for (const DecoderLayer& l : layers)
    for (const LinearWeight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) total += w->nbytes();
  return total;
}

Tensor DecoderModel::embed_rows(const Tensor& ids) const {
  if (!embed_blocks) return embedding(embed_tokens, ids);
  Shape shape = ids.shape();
  Tensor flat = reshape(ids, {-1});
  Tensor rows = take(embed_blocks->blocks, flat, 0);  // the blocks of each id's row
  QuantizedMatrix picked = quantized_matrix(rows, embed_blocks->type, flat.shape(0), embed_blocks->cols);
  picked.lanes = embed_blocks->lanes;
  Tensor dense = dequantize(picked, dtype_);
  shape.push_back(embed_blocks->cols);
  return reshape(dense, shape);
}

Tensor DecoderModel::lm_head_product(const Tensor& x) const {
  return lm_head_blocks ? wick::linear(x, *lm_head_blocks) : linear(x, lm_head);
}

KVCache DecoderModel::make_cache(int64_t batch, int64_t capacity) const {
  KVCache cache;
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    cache.keys.push_back(zeros({batch, config_.num_kv_heads, capacity, config_.head_dim}, dtype_, device_));
    cache.values.push_back(zeros({batch, config_.num_kv_heads, capacity, config_.head_dim}, dtype_, device_));
  }
  return cache;
}

std::string DecoderModel::module_name(int64_t layer, const char* projection) {
  std::string p = std::string(projection);
  bool attention = p == "q_proj" || p == "k_proj" || p == "v_proj" || p == "o_proj";
  return "model.layers." + std::to_string(layer) + (attention ? ".self_attn." : ".mlp.") + p;
}

Tensor DecoderModel::layer_forward(int64_t i, Tensor x, const Tensor& pos, const std::optional<Tensor>& mask,
                                   const RopeOptions& rope_opts, KVCache* cache, int64_t past, const LoraDeltas* lora) const {
  const DecoderConfig& c = config_;
  int64_t b = x.shape(0), t = x.shape(1);
  const DecoderLayer& l = layers[i];
  // A linear module, plus its low-rank update when the adapter has one.
  auto proj = [&](const char* name, const Tensor& in, const LinearWeight& w, const std::optional<Tensor>& bias) {
    Tensor y = linear(in, w, bias);
    if (lora) {
      auto it = lora->find(module_name(i, name));
      if (it != lora->end()) {
        const LoraDelta& d = it->second;
        // Added in place into the projection's own buffer where possible (see lora_add).
        y = lora_add(std::move(y), d.dropout > 0 ? dropout(in, d.dropout, d.dropout_key) : in, d.a, d.b, d.scale);
      }
    }
    return y;
  };
  // Projections that read one input (q, k, v; gate, up) as one product, when their weights lie
  // back to back (place_weights puts them so): one LoRA update covers every adapted part (A
  // stacked, B block-diagonal: place_blocks), and split hands out the parts as views, its
  // vjp joining their gradients in one pass. Their input's gradient is then one product (and one
  // of the update) instead of one per projection and per adapter, all added up. nullopt where the
  // weights are apart or an adapter needs its own input (dropout) or the ranks exceed lora_add's.
  auto stacked_proj = [&](std::initializer_list<const char*> names, std::vector<const LinearWeight*> ws,
                          std::vector<const std::optional<Tensor>*> biases, const Tensor& in) -> std::optional<Tensor> {
    std::optional<LinearWeight> w = stacked_view(ws);
    if (!w) return std::nullopt;
    std::vector<const LoraDelta*> deltas;
    int64_t rank = 0;
    for (const char* name : names) {
      const LoraDelta* d = nullptr;
      if (lora) {
        auto it = lora->find(module_name(i, name));
        if (it != lora->end()) d = &it->second;
      }
      if (d && d->dropout > 0) return std::nullopt;
      if (d) rank += d->a.shape(0);
      deltas.push_back(d);
    }
    if (rank > wick::LoraDelta::kMaxRank) return std::nullopt;
    std::optional<Tensor> bias;
    if (biases[0]->has_value()) {
      std::vector<const Tensor*> parts;
      for (const std::optional<Tensor>* b : biases) {
        if (!b->has_value()) return std::nullopt;
        parts.push_back(&b->value());
      }
      bias = stacked_view(parts);
      if (!bias) {
        std::vector<Tensor> copies;
        for (const Tensor* p : parts) copies.push_back(*p);
        bias = concat(copies, 0);
      }
    } else {
      for (const std::optional<Tensor>* b : biases)
        if (b->has_value()) return std::nullopt;
    }
    Tensor y = linear(in, *w, bias);
    if (rank == 0) return y;
    // One scale shared by the parts (PEFT's alpha / r of one config) stays lora_add's; else each
    // B block carries its own.
    Dtype dt = y.dtype();
    std::optional<double> scale;
    bool shared = true;
    for (const LoraDelta* d : deltas)
      if (d) {
        shared = shared && (!scale || d->scale == *scale);
        scale = d->scale;
      }
    std::vector<Tensor> as, bs;
    std::vector<Shape> at;
    int64_t row = 0, col = 0;
    for (size_t p = 0; p < deltas.size(); ++p) {
      if (const LoraDelta* d = deltas[p]) {
        as.push_back(astype(d->a, dt));
        bs.push_back(shared ? astype(d->b, dt) : astype(d->b, dt) * d->scale);
        at.push_back({row, col});
        col += d->a.shape(0);
      }
      row += ws[p]->shape()[0];
    }
    Tensor a = as.size() == 1 ? as[0] : concat(as, 0);
    return lora_add(std::move(y), in, a, place_blocks({row, rank}, bs, at), shared ? *scale : 1.0);
  };
  // The projections run on rows [B * T, features], so each product's output reaches lora_add
  // directly (not through a reshape) and the update is added into its buffer.
  int64_t hidden = c.hidden_size;
  Tensor h = reshape(rms_norm(x, l.input_norm, c.rms_norm_eps), {b * t, hidden});
  auto heads = [&](const char* name, const LinearWeight& w, const std::optional<Tensor>& bias, int64_t n) {
    return transpose(reshape(proj(name, h, w, bias), {b, t, n, c.head_dim}), 1, 2);
  };
  Tensor q, k, v;
  if (std::optional<Tensor> qkv = stacked_proj({"q_proj", "k_proj", "v_proj"}, {&l.q, &l.k, &l.v},
                                               {&l.q_bias, &l.k_bias, &l.v_bias}, h)) {
    std::vector<Tensor> parts = split(reshape(*qkv, {b, t, c.num_heads + 2 * c.num_kv_heads, c.head_dim}),
                                      {c.num_heads, c.num_kv_heads, c.num_kv_heads}, 2);
    q = rope(transpose(parts[0], 1, 2), pos, rope_opts);
    k = rope(transpose(parts[1], 1, 2), pos, rope_opts);
    v = transpose(parts[2], 1, 2);
  } else {
    q = rope(heads("q_proj", l.q, l.q_bias, c.num_heads), pos, rope_opts);
    k = rope(heads("k_proj", l.k, l.k_bias, c.num_kv_heads), pos, rope_opts);
    v = heads("v_proj", l.v, l.v_bias, c.num_kv_heads);
  }
  if (cache) {
    cache->keys[i] = slice_update(std::move(cache->keys[i]), k, {0, 0, past, 0});
    cache->values[i] = slice_update(std::move(cache->values[i]), v, {0, 0, past, 0});
    k = narrow(cache->keys[i], 2, 0, past + t);
    v = narrow(cache->values[i], 2, 0, past + t);
  }
  Tensor a = scaled_dot_product_attention(q, k, v, mask, /*causal=*/true);
  a = reshape(transpose(a, 1, 2), {b * t, c.num_heads * c.head_dim});
  x = x + reshape(proj("o_proj", a, l.o, l.o_bias), {b, t, hidden});
  h = reshape(rms_norm(x, l.post_norm, c.rms_norm_eps), {b * t, hidden});
  const std::optional<Tensor> no_bias;
  Tensor act;
  if (std::optional<Tensor> gate_up = stacked_proj({"gate_proj", "up_proj"}, {&l.gate, &l.up}, {&no_bias, &no_bias}, h)) {
    std::vector<Tensor> parts = split(*gate_up, {l.gate.shape()[0], l.up.shape()[0]}, 1);
    act = swiglu(parts[0], parts[1]);
  } else {
    act = swiglu(proj("gate_proj", h, l.gate, std::nullopt), proj("up_proj", h, l.up, std::nullopt));
  }
  Tensor mlp = proj("down_proj", act, l.down, std::nullopt);
  x = x + reshape(mlp, {b, t, hidden});
  return x;
}

Tensor DecoderModel::forward(const Tensor& ids, KVCache* cache, const std::optional<Tensor>& attention_mask,
                             const std::optional<Tensor>& positions, const LoraDeltas* lora,
                             const ForwardOptions& options) const {
  const DecoderConfig& c = config_;
  WICK_CHECK(ids.ndim() == 2, "forward: ids must be [batch, seq], got ", shape_str(ids.shape()));
  int64_t b = ids.shape(0), t = ids.shape(1), past = cache ? cache->length : 0;
  WICK_CHECK(t > 0 && b > 0, "forward: empty batch ", shape_str(ids.shape()));
  if (cache) {
    WICK_CHECK(cache->keys.size() == size_t(c.num_layers) && cache->keys[0].shape(0) == b,
               "forward: the KV cache was made for another model or batch size");
    WICK_CHECK(past + t <= cache->capacity(), "forward: ", past + t, " positions exceed the KV cache capacity of ",
               cache->capacity());
  }
  Tensor pos = positions ? *positions : arange(double(past), double(past + t), 1, Dtype::I64, device_);
  std::optional<Tensor> mask;
  if (attention_mask) {
    WICK_CHECK(attention_mask->shape() == Shape({b, past + t}), "forward: attention_mask must be [", b, ", ",
               past + t, "], got ", shape_str(attention_mask->shape()));
    mask = reshape(ne(*attention_mask, zeros({}, attention_mask->dtype(), device_)), {b, 1, 1, past + t});
  }
  if (options.segments) {
    const Tensor& seg = *options.segments;
    WICK_CHECK(cache == nullptr, "forward: segments (packed rows) cannot be used with a KV cache");
    WICK_CHECK(seg.shape() == Shape({b, t}), "forward: segments must be [", b, ", ", t, "], got ",
               shape_str(seg.shape()));
    Tensor same = eq(reshape(seg, {b, 1, t, 1}), reshape(seg, {b, 1, 1, t}));
    mask = mask ? where(*mask, same, zeros({}, Dtype::Bool, device_)) : same;
  }
  RopeOptions rope_opts;
  rope_opts.inv_freq = inv_freq;
  Tensor x = embed_rows(ids);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (!options.checkpoint_layers || cache != nullptr || !grad_enabled()) {
      x = layer_forward(i, std::move(x), pos, mask, rope_opts, cache, past, lora);
      continue;
    }
    // Checkpointed: the layer's input and its adapter tensors are the segment's inputs; the closure
    // owns copies of everything else it needs, since the backward runs it again later.
    std::vector<Tensor> inputs{x};
    std::vector<std::pair<std::string, LoraDelta>> adapted;
    if (lora != nullptr)
      for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
        if (auto it = lora->find(module_name(i, p)); it != lora->end()) {
          adapted.emplace_back(it->first, it->second);
          inputs.push_back(it->second.a);
          inputs.push_back(it->second.b);
        }
    x = checkpoint(
        [this, i, pos, mask, rope_opts, past, adapted](const std::vector<Tensor>& in) {
          LoraDeltas local;
          for (size_t k = 0; k < adapted.size(); ++k) {
            LoraDelta d = adapted[k].second;
            d.a = in[1 + 2 * k];
            d.b = in[2 + 2 * k];
            local.emplace(adapted[k].first, std::move(d));
          }
          return layer_forward(i, in[0], pos, mask, rope_opts, nullptr, past, adapted.empty() ? nullptr : &local);
        },
        inputs);
  }
  if (cache) cache->length = past + t;
  x = rms_norm(x, final_norm, c.rms_norm_eps);
  if (options.final_hidden_states) return x;
  Tensor logits = lm_head_product(x);
  return options.logits_in_compute_dtype ? logits : astype(logits, Dtype::F32);
}

}  // namespace wick::models
