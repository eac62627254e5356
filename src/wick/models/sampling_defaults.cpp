// Default sampling from generation_config.json, with transformers' semantics.
#include "wick/models/sampling_defaults.h"

namespace wick::models {

SamplingOptions sampling_defaults(const std::optional<io::GenerationConfig>& config) {
  SamplingOptions s;
  s.temperature = 0;
  if (!config) return s;
  if (config->repetition_penalty) s.repetition_penalty = *config->repetition_penalty;
  if (config->top_p) s.top_p = *config->top_p;
  if (config->min_p) s.min_p = *config->min_p;
  if (config->top_k) s.top_k = *config->top_k;
  if (config->do_sample.value_or(false)) {
    s.temperature = config->temperature.value_or(1.0);
    if (!config->top_k) s.top_k = 50;
  }
  return s;
}

}  // namespace wick::models
