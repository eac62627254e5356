// LoRA adapters with PEFT's semantics and file format: A [r, in] (Kaiming-uniform), B [out, r]
// (zeros), scale alpha / r (or alpha / sqrt(r) with rsLoRA), saved as adapter_config.json +
// adapter_model.safetensors with PEFT's tensor names.
#pragma once

#include <string>
#include <vector>

#include "wick/models/decoder.h"

namespace wick::lora {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.0;  // in [0, 1); applied in training only
  bool use_rslora = false;
  // Projection names ("q_proj", ...); {"all-linear"} means all seven.
  std::vector<std::string> target_modules{"q_proj", "v_proj"};
  double scale() const;
};

class Adapter {
 public:
  // A new adapter over `base`: A drawn Kaiming-uniform (bound 1/sqrt(in), as PEFT) from a
  // generator of its own seeded with `seed` (the same seed, the same adapter; the default
  // generator is neither reseeded nor advanced), B zero, in f32 on the base's device.
  static Adapter init(const models::DecoderModel& base, const LoraConfig& config, uint64_t seed);
  // A PEFT adapter folder; every tensor is checked against the base model's shapes.
  static Adapter load(const std::string& dir, const models::DecoderModel& base);
  // Writes adapter_config.json and adapter_model.safetensors (atomically) into `dir`.
  void save(const std::string& dir, const std::string& base_model_name = "") const;

  const LoraConfig& config() const { return config_; }
  // Module names (HF form) in a fixed order: by layer, then q, k, v, o, gate, up, down.
  const std::vector<std::string>& modules() const { return modules_; }
  // [A0, B0, A1, B1, ...] in module order.
  const std::vector<Tensor>& parameters() const { return params_; }
  void set_parameters(std::vector<Tensor> params);
  // The updates for the model's forward, with `params` in place of the adapter's own (for tracing
  // gradients); none given: the adapter's own.
  models::LoraDeltas deltas(const std::vector<Tensor>* params = nullptr) const;
  // The updates of a training forward: deltas(&params) with PEFT's LoRA dropout (config().dropout)
  // on the input of each module's A; module i draws its mask from fold_in(key, i), so a step with
  // the same key replays the same masks.
  models::LoraDeltas training_deltas(const std::vector<Tensor>& params, RandomKey key) const;

 private:
  LoraConfig config_;
  std::vector<std::string> modules_;
  std::vector<Tensor> params_;
};

// A copy of `base` with each adapted projection's weight replaced by W + scale * B A (computed in
// f32, stored in the base's dtype; quantized weights become dense in the model's dtype): the
// merged model needs no adapter at run time.
models::DecoderModel merge(const models::DecoderModel& base, const Adapter& adapter);

// The seven projections of a decoder layer, in order.
const std::vector<std::string>& decoder_projections();

}  // namespace wick::lora
