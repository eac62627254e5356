// LoRA adapters: creation, PEFT-format load and save.
#include "wick/lora/adapter.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/weights.h"

namespace wick::lora {

namespace {

const std::string kPrefix = "base_model.model.";

// [out, in] of a decoder projection.
std::pair<int64_t, int64_t> projection_shape(const models::DecoderConfig& c, const std::string& p) {
  int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim, f = c.intermediate_size;
  if (p == "q_proj") return {q, h};
  if (p == "k_proj" || p == "v_proj") return {kv, h};
  if (p == "o_proj") return {h, q};
  if (p == "gate_proj" || p == "up_proj") return {f, h};
  if (p == "down_proj") return {h, f};
  fail("lora: unknown target module '", p, "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear)");
}

std::vector<std::string> resolve_targets(const std::vector<std::string>& targets) {
  WICK_CHECK(!targets.empty(), "lora: no target modules given");
  if (targets.size() == 1 && targets[0] == "all-linear") return decoder_projections();
  std::vector<std::string> out;
  for (const std::string& p : decoder_projections())
    if (std::find(targets.begin(), targets.end(), p) != targets.end()) out.push_back(p);
  for (const std::string& t : targets)
    WICK_CHECK(std::find(out.begin(), out.end(), t) != out.end(), "lora: unknown target module '", t,
               "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear)");
  return out;
}

}  // namespace

const std::vector<std::string>& decoder_projections() {
  static const std::vector<std::string> p{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return p;
}

double LoraConfig::scale() const { return use_rslora ? alpha / std::sqrt(double(r)) : alpha / double(r); }

Adapter Adapter::init(const models::DecoderModel& base, const LoraConfig& config, uint64_t seed) {
  const models::DecoderConfig& c = base.config();
  WICK_CHECK(config.r > 0, "lora: rank must be positive, got ", config.r);
  WICK_CHECK(config.dropout >= 0 && config.dropout < 1, "lora: dropout must be in [0, 1), got ", config.dropout);
  Adapter a;
  a.config_ = config;
  a.config_.target_modules = resolve_targets(config.target_modules);
  // A's come from a generator of the adapter's own: the seed alone fixes them (they are the draws
  // of a default generator just seeded with it), and the process's random streams are untouched.
  Generator generator(seed);
  for (int64_t layer = 0; layer < c.num_layers; ++layer)
    for (const std::string& p : a.config_.target_modules) {
      auto [out, in] = projection_shape(c, p);
      WICK_CHECK(config.r <= std::min(out, in), "lora: rank ", config.r, " is larger than ", p, " [", out, ", ", in, "]");
      double bound = 1.0 / std::sqrt(double(in));
      a.modules_.push_back(models::DecoderModel::module_name(layer, p.c_str()));
      a.params_.push_back(uniform({config.r, in}, -bound, bound, Dtype::F32, base.device(), generator));
      a.params_.push_back(zeros({out, config.r}, Dtype::F32, base.device()));
    }
  return a;
}

Adapter Adapter::load(const std::string& dir, const models::DecoderModel& base) {
  std::string config_path = dir + "/adapter_config.json";
  std::ifstream in(config_path);
  WICK_CHECK(in.good(), "lora: cannot open ", config_path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  WICK_CHECK(j.is_object(), config_path, ": not a JSON object");
  auto number = [&](const char* key, double fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    WICK_CHECK(j[key].is_number(), config_path, ": ", key, " must be a number");
    return j[key].get<double>();
  };
  WICK_CHECK(j.value("peft_type", "LORA") == "LORA", config_path, ": peft_type '", j.value("peft_type", ""),
             "' is not LORA");
  WICK_CHECK(!j.value("use_dora", false), config_path, ": DoRA adapters are not supported");
  LoraConfig cfg;
  cfg.r = int64_t(number("r", 8));
  cfg.alpha = number("lora_alpha", 8);
  cfg.dropout = number("lora_dropout", 0);
  WICK_CHECK(cfg.dropout >= 0 && cfg.dropout < 1, config_path, ": lora_dropout must be in [0, 1), got ", cfg.dropout);
  cfg.use_rslora = j.value("use_rslora", false);
  cfg.target_modules.clear();
  if (j.contains("target_modules") && j["target_modules"].is_array())
    for (const auto& t : j["target_modules"]) cfg.target_modules.push_back(t.get<std::string>());
  else if (j.contains("target_modules") && j["target_modules"].is_string())
    cfg.target_modules.push_back(j["target_modules"].get<std::string>());
  cfg.target_modules = resolve_targets(cfg.target_modules);

  io::SafeTensors file = io::SafeTensors::open(dir + "/adapter_model.safetensors");
  const models::DecoderConfig& c = base.config();
  Adapter a;
  a.config_ = cfg;
  for (int64_t layer = 0; layer < c.num_layers; ++layer)
    for (const std::string& p : cfg.target_modules) {
      std::string module = models::DecoderModel::module_name(layer, p.c_str());
      auto [out, in] = projection_shape(c, p);
      std::string name_a = kPrefix + module + ".lora_A.weight", name_b = kPrefix + module + ".lora_B.weight";
      // Adapters for another base model fail here, naming the tensor and both shapes.
      a.params_.push_back(models::load_weight(file, name_a, {cfg.r, in}, Dtype::F32, base.device()));
      a.params_.push_back(models::load_weight(file, name_b, {out, cfg.r}, Dtype::F32, base.device()));
      a.modules_.push_back(module);
    }
  return a;
}

void Adapter::save(const std::string& dir, const std::string& base_model_name) const {
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = base_model_name;
  j["r"] = config_.r;
  j["lora_alpha"] = config_.alpha;
  j["lora_dropout"] = config_.dropout;
  j["use_rslora"] = config_.use_rslora;
  j["target_modules"] = config_.target_modules;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["modules_to_save"] = nullptr;
  j["use_dora"] = false;
  std::string text = j.dump(2);
  io::write_text_atomic(dir + "/adapter_config.json", text);

  std::vector<std::vector<float>> data;
  std::vector<io::TensorToWrite> tensors;
  for (size_t i = 0; i < modules_.size(); ++i)
    for (int which = 0; which < 2; ++which) {
      const Tensor& t = params_[2 * i + which];
      data.push_back(t.to_vector<float>());
    }
  for (size_t i = 0; i < modules_.size(); ++i)
    for (int which = 0; which < 2; ++which) {
      const Tensor& t = params_[2 * i + which];
      const auto& d = data[2 * i + which];
      tensors.push_back({kPrefix + modules_[i] + (which ? ".lora_B.weight" : ".lora_A.weight"), io::FileDtype::F32,
                         t.shape(), d.data(), d.size() * sizeof(float)});
    }
  io::save_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
}

void Adapter::set_parameters(std::vector<Tensor> params) {
  WICK_CHECK(params.size() == params_.size(), "lora: expected ", params_.size(), " parameters, got ", params.size());
  for (size_t i = 0; i < params.size(); ++i)
    WICK_CHECK(params[i].shape() == params_[i].shape(), "lora: parameter ", i, " has shape ",
               shape_str(params[i].shape()), ", expected ", shape_str(params_[i].shape()));
  params_ = std::move(params);
}

models::LoraDeltas Adapter::deltas(const std::vector<Tensor>* params) const {
  const std::vector<Tensor>& p = params ? *params : params_;
  WICK_CHECK(p.size() == params_.size(), "lora: expected ", params_.size(), " parameters, got ", p.size());
  models::LoraDeltas out;
  for (size_t i = 0; i < modules_.size(); ++i) {
    models::LoraDelta& d = out[modules_[i]];
    d.a = p[2 * i];
    d.b = p[2 * i + 1];
    d.scale = config_.scale();
  }
  return out;
}

models::LoraDeltas Adapter::training_deltas(const std::vector<Tensor>& params, RandomKey key) const {
  models::LoraDeltas out = deltas(&params);
  if (config_.dropout == 0) return out;
  for (size_t i = 0; i < modules_.size(); ++i) {
    models::LoraDelta& d = out[modules_[i]];
    d.dropout = config_.dropout;
    d.dropout_key = fold_in(key, i);
  }
  return out;
}

models::DecoderModel merge(const models::DecoderModel& base, const Adapter& adapter) {
  models::DecoderModel merged = base;
  models::LoraDeltas deltas = adapter.deltas();
  for (int64_t i = 0; i < base.config().num_layers; ++i) {
    models::DecoderLayer& l = merged.layers[i];
    std::pair<const char*, models::LinearWeight*> slots[] = {
        {"q_proj", &l.q}, {"k_proj", &l.k}, {"v_proj", &l.v}, {"o_proj", &l.o},
        {"gate_proj", &l.gate}, {"up_proj", &l.up}, {"down_proj", &l.down}};
    for (auto [name, w] : slots) {
      auto it = deltas.find(models::DecoderModel::module_name(i, name));
      if (it == deltas.end()) continue;
      const models::LoraDelta& d = it->second;
      Tensor update = matmul(astype(d.b, Dtype::F32), astype(d.a, Dtype::F32)) * d.scale;
      // A quantized weight becomes dense in the model's dtype: the merged sum is not on its grid.
      Dtype dtype = w->is_quantized() ? base.dtype() : w->dense().dtype();
      *w = astype(w->to_dense(Dtype::F32) + to_device(update, w->device()), dtype);
    }
  }
  return merged;
}

}  // namespace wick::lora
