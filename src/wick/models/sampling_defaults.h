// The sampling a model asks for when a request names none, read from its generation_config.json as
// transformers reads it: greedy unless the file sets do_sample (then its temperature, top_k (50 when
// absent, transformers' default), top_p and min_p); its repetition_penalty either way. A model
// without the file (a GGUF) generates greedily unless asked otherwise.
#pragma once

#include <optional>
#include <string>

#include "wick/io/hf_config.h"
#include "wick/models/sampler.h"

namespace wick::models {

SamplingOptions sampling_defaults(const std::optional<io::GenerationConfig>& config);

// The generation_config.json of a model folder; none for a model file or a folder without one.
std::optional<io::GenerationConfig> find_generation_config(const std::string& model_path);

}  // namespace wick::models
