// `wick logits`: the logits of token ids (with an optional LoRA adapter), as JSON
// {"logits": [batch][seq][vocab]} — for comparing with other implementations.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "wick/cli/commands.h"
#include "wick/cli/runtime_options.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"

namespace wick::cli {

namespace {

struct LogitsOptions {
  std::string model, ids_json, adapter;
  RuntimeOptions runtime;
};

void run_logits(const LogitsOptions& o) {
  std::ifstream in(o.ids_json);
  WICK_CHECK(in.good(), "--ids-json: cannot open ", o.ids_json);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  WICK_CHECK(j.is_object() && j.contains("input_ids") && j["input_ids"].is_array() && !j["input_ids"].empty(), o.ids_json,
             ": expected {\"input_ids\": [[...], ...]}");
  std::vector<std::vector<int64_t>> rows;
  try {
    rows = j["input_ids"].get<std::vector<std::vector<int64_t>>>();
  } catch (const nlohmann::json::exception& e) {
    fail(o.ids_json, ": input_ids must be a list of lists of integers (", e.what(), ")");
  }
  size_t width = rows[0].size();
  WICK_CHECK(width > 0, o.ids_json, ": empty sequences");
  std::vector<int64_t> flat;
  for (size_t i = 0; i < rows.size(); ++i) {
    WICK_CHECK(rows[i].size() == width, o.ids_json, ": row ", i, " has ", rows[i].size(), " ids, row 0 has ", width);
    flat.insert(flat.end(), rows[i].begin(), rows[i].end());
  }
  models::LoadedDecoder loaded = models::load_decoder(o.model, o.runtime.load_options(false));
  for (int64_t id : flat)
    WICK_CHECK(id >= 0 && id < loaded.model.config().vocab_size, o.ids_json, ": token id ", id,
               " is outside the vocabulary of ", loaded.model.config().vocab_size);
  std::optional<lora::Adapter> adapter;
  models::LoraDeltas deltas;
  if (!o.adapter.empty()) {
    adapter = lora::Adapter::load(o.adapter, loaded.model);
    deltas = adapter->deltas();
  }
  NoGradGuard no_grad;
  Tensor ids = Tensor::from_vector(flat, {int64_t(rows.size()), int64_t(width)}, loaded.model.device());
  Tensor logits = loaded.model.forward(ids, nullptr, std::nullopt, std::nullopt, adapter ? &deltas : nullptr);
  std::vector<float> v = logits.to_vector<float>();
  int64_t vocab = logits.shape(2);
  // Written by hand: a nested JSON value of a whole vocabulary per position would be slow.
  std::cout << "{\"logits\": [";
  for (size_t b = 0; b < rows.size(); ++b) {
    std::cout << (b ? ", [" : "[");
    for (size_t t = 0; t < width; ++t) {
      std::cout << (t ? ", [" : "[");
      const float* row = v.data() + (b * width + t) * vocab;
      for (int64_t k = 0; k < vocab; ++k) std::cout << (k ? ", " : "") << nlohmann::json(row[k]).dump();
      std::cout << "]";
    }
    std::cout << "]";
  }
  std::cout << "]}\n";
}

}  // namespace

void register_logits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "Print the logits of token ids as JSON");
  cmd->add_option("-m,--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--ids-json", o->ids_json, "a file holding {\"input_ids\": [[...], ...]}")->required();
  cmd->add_option("--adapter", o->adapter, "a PEFT LoRA adapter folder");
  add_runtime_options(cmd, o->runtime);
  add_quantized_base_option(cmd, o->runtime);
  cmd->callback([o] { run_logits(*o); });
}

}  // namespace wick::cli
