// The sampling options shared by `generate` and `chat`, and how what a user leaves out is filled
// in: from the model's generation_config.json as transformers does (a GGUF: greedy), the same
// defaults `wick serve` uses; the seed is random unless --seed is given.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

#include "wick/io/hf_config.h"
#include "wick/models/generate.h"

namespace wick::cli {

struct SamplingFlags {
  CLI::Option *max_tokens, *temperature, *top_k, *top_p, *min_p, *repetition_penalty, *seed;
};

// -n/--max-tokens, --temperature, --top-k, --top-p, --min-p, --repetition-penalty, --seed, --stop.
SamplingFlags add_sampling_options(CLI::App* cmd, models::GenerateOptions& options);

// Fills the options the command line left out from `generation` (the model's
// generation_config.json; none for a GGUF) and draws a seed when none was given.
void resolve_sampling(const SamplingFlags& flags, const std::optional<io::GenerationConfig>& generation,
                      models::GenerateOptions& options);

}  // namespace wick::cli
