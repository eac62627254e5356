// SmolLM2-135M-Instruct Q4_1 (fetched by scripts/fetch-models.sh) through the inference runtime
// against transformers' greedy tokens on the same dequantized weights
// (tests/data/models/smollm2_greedy_golden.json), for the CPU and CUDA runner tests alike.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wick/models/decoder.h"
#include "wick/models/weights.h"
#include "wick/runtime/decoder_runner.h"
#include "wick/runtime/generator.h"

namespace wick::testing {

inline std::string smollm2_q4_1_path() {
  return std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// The model with its projections and embedding kept as the file's blocks (multiplied through 8-bit
// activations on the CPU when `int8_activations`).
inline models::DecoderModel load_smollm2_with_blocks(Device device, bool int8_activations = false) {
  models::WeightStorage storage;
  storage.keep_file_blocks = true;
  storage.keep_embedding_blocks = true;
  storage.int8_activations = int8_activations ? models::Int8Activations::kAll : models::Int8Activations::kNone;
  return models::DecoderModel::load_gguf(smollm2_q4_1_path(), device, Dtype::F32, storage);
}

// Every golden case batched together (4 rows) equals transformers' greedy tokens.
inline void expect_runtime_matches_smollm2_golden(models::DecoderModel& model) {
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/models/smollm2_greedy_golden.json");
  nlohmann::json golden = nlohmann::json::parse(in);
  runtime::RunnerOptions o;
  o.max_batch = 4;
  o.max_context = 256;
  runtime::DecoderRunner runner(model, o);
  std::vector<runtime::GenerationJob> jobs;
  std::vector<std::vector<int32_t>> want;
  for (const auto& c : golden["cases"]) {
    runtime::GenerationJob job;
    job.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    want.push_back(c["greedy_ids"].get<std::vector<int32_t>>());
    job.options.max_tokens = int64_t(want.back().size());
    job.options.sampling.temperature = 0;
    jobs.push_back(job);
  }
  auto results = runtime::generate(runner, nullptr, jobs);
  for (size_t i = 0; i < jobs.size(); ++i) EXPECT_EQ(results[i].ids, want[i]) << "case " << i;
}

}  // namespace wick::testing
