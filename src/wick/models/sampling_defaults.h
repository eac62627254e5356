// The sampling a model asks for when a request names none, read from its generation_config.json as
// transformers reads it: greedy unless the file sets do_sample (then its temperature, top_k (50 when
// absent, transformers' default), top_p and min_p); its repetition_penalty either way. A model
// without the file (a GGUF) generates greedily unless asked otherwise.
#pragma once

#include <optional>

#include "wick/io/hf_config.h"
#include "wick/models/sampler.h"

namespace wick::models {

// `config`: a model's generation_config.json (LoadedDecoder::generation); none for a GGUF.
SamplingOptions sampling_defaults(const std::optional<io::GenerationConfig>& config);

}  // namespace wick::models
