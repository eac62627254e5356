// Sampling options on the command line, completed from the model's defaults.
#include "wick/cli/sampling_options.h"

#include <random>

#include "wick/cli/validators.h"
#include "wick/models/sampling_defaults.h"

namespace wick::cli {

SamplingFlags add_sampling_options(CLI::App* cmd, models::GenerateOptions& g) {
  SamplingFlags f;
  f.max_tokens = cmd->add_option("-n,--max-tokens", g.max_tokens, "the most tokens to generate")
                     ->check(number_in<int64_t>(0, 1 << 20));
  f.temperature = cmd->add_option("--temperature", g.sampling.temperature,
                                  "0: greedy (default: the model's generation_config.json; greedy without one)")
                      ->check(number_in(0.0, 100.0))
                      ->default_str("");
  f.top_k = cmd->add_option("--top-k", g.sampling.top_k, "keep the k most likely tokens (0: off; default: the model's)")
                ->check(non_negative())
                ->default_str("");
  f.top_p = cmd->add_option("--top-p", g.sampling.top_p, "nucleus sampling mass (1: off; default: the model's)")
                ->check(number_in(0.0, 1.0, /*open_low=*/true))
                ->default_str("");
  f.min_p = cmd->add_option("--min-p", g.sampling.min_p,
                            "drop tokens below min_p x the top probability (0: off; default: the model's)")
                ->check(number_in(0.0, 1.0))
                ->default_str("");
  f.repetition_penalty = cmd->add_option("--repetition-penalty", g.sampling.repetition_penalty,
                                         "transformers' repetition penalty (1: off; default: the model's)")
                             ->check(positive())
                             ->default_str("");
  f.seed = cmd->add_option("--seed", g.sampling.seed, "seed of the sampler (default: random)")->default_str("");
  cmd->add_option("--stop", g.stop, "stop string (repeatable)");
  return f;
}

void resolve_sampling(const SamplingFlags& flags, const std::optional<io::GenerationConfig>& generation,
                      models::GenerateOptions& options) {
  models::SamplingOptions defaults = models::sampling_defaults(generation);
  models::SamplingOptions& s = options.sampling;
  if (flags.temperature->count() == 0) s.temperature = defaults.temperature;
  if (flags.top_k->count() == 0) s.top_k = defaults.top_k;
  if (flags.top_p->count() == 0) s.top_p = defaults.top_p;
  if (flags.min_p->count() == 0) s.min_p = defaults.min_p;
  if (flags.repetition_penalty->count() == 0) s.repetition_penalty = defaults.repetition_penalty;
  if (flags.max_tokens->count() == 0 && generation && generation->max_new_tokens && *generation->max_new_tokens > 0)
    options.max_tokens = *generation->max_new_tokens;
  if (flags.seed->count() == 0) s.seed = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
}

}  // namespace wick::cli
