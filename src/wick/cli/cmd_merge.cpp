// `wick merge`: folds a LoRA adapter into its base model and writes a complete Hugging Face folder
// (weights, config with the special token ids, tokenizer, tokenizer_config.json with the chat
// template, generation_config.json) that transformers and wick load without the adapter, or, for
// --out FILE.gguf, a GGUF file that llama.cpp loads (with the base GGUF's tokenizer, or a folder's
// byte-level BPE tokenizer converted).
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "wick/cli/commands.h"
#include "wick/cli/runtime_options.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/model_source.h"
#include "wick/io/safetensors.h"
#include "wick/lora/adapter.h"
#include "wick/models/decoder_save.h"
#include "wick/models/gguf_tokenizer.h"

namespace wick::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct MergeOptions {
  std::string model, adapter, out, dtype = "base", device = "auto";
};

bool is_gguf_path(const std::string& path) { return fs::path(path).extension() == ".gguf"; }

// The dtype the base keeps its weights in: a GGUF's float type, bf16 for a quantized one; a
// folder's config.json torch_dtype, else its embeddings' dtype.
std::string base_dtype(const io::ModelSource& src) {
  if (src.format == io::ModelFormat::kGguf) {
    io::GgufFile file = io::GgufFile::open(src.path);
    bool f16 = false, bf16 = false;
    for (const io::GgufTensor& t : file.tensors()) {
      if (t.shape.size() < 2) continue;  // norms are f32 whatever the file type
      if (t.type == ggml::GgmlType::F16) f16 = true;
      else if (t.type == ggml::GgmlType::BF16) bf16 = true;
      else if (t.type != ggml::GgmlType::F32) return "bf16";  // quantized
    }
    return bf16 ? "bf16" : (f16 ? "f16" : "f32");
  }
  io::ModelConfig config = io::load_model_config(src.path + "/config.json");
  if (config.torch_dtype == "bfloat16") return "bf16";
  if (config.torch_dtype == "float16") return "f16";
  if (config.torch_dtype == "float32") return "f32";
  io::SafeTensors weights = io::SafeTensors::open_dir(src.path);
  io::FileDtype d = weights.get("model.embed_tokens.weight").dtype;
  return d == io::FileDtype::BF16 ? "bf16" : (d == io::FileDtype::F16 ? "f16" : "f32");
}

void write_json(const fs::path& path, const json& j) { io::write_text_atomic(path.string(), j.dump(2) + "\n"); }

json ids_json(const std::vector<int64_t>& ids) { return ids.size() == 1 ? json(ids.front()) : json(ids); }

// A GGUF base's tokenizer as Hugging Face files: tokenizer.json, tokenizer_config.json (special
// tokens, chat template) and generation_config.json (the stop ids; greedy, as wick runs a GGUF).
models::SpecialTokenIds write_gguf_tokenizer_files(const io::GgufFile& file, const models::LoadedDecoder& loaded,
                                                   const fs::path& out) {
  io::GgufTokenizerData d = io::gguf_tokenizer_data(file);
  models::SpecialTokenIds ids{d.bos_token_id, {}, d.padding_token_id};
  for (int32_t id : loaded.eos_ids) ids.eos.push_back(id);
  io::write_text_atomic((out / "tokenizer.json").string(), models::tokenizer_json_from_gguf(file).dump(2) + "\n");
  json config = json::object();
  auto token = [&](const char* key, const std::optional<int64_t>& id) {
    if (id && *id >= 0 && size_t(*id) < d.tokens.size()) config[key] = d.tokens[size_t(*id)];
  };
  token("bos_token", d.bos_token_id);
  token("eos_token", d.eos_token_id);
  token("unk_token", d.unknown_token_id);
  token("pad_token", d.padding_token_id);
  if (d.add_bos_token) config["add_bos_token"] = *d.add_bos_token;
  if (d.add_eos_token) config["add_eos_token"] = *d.add_eos_token;
  if (d.chat_template) config["chat_template"] = *d.chat_template;
  config["clean_up_tokenization_spaces"] = false;
  config["model_max_length"] = loaded.model.config().max_position_embeddings;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  write_json(out / "tokenizer_config.json", config);
  json generation = json::object();
  if (ids.bos) generation["bos_token_id"] = *ids.bos;
  if (!ids.eos.empty()) generation["eos_token_id"] = ids_json(ids.eos);
  if (ids.pad) generation["pad_token_id"] = *ids.pad;
  write_json(out / "generation_config.json", generation);
  return ids;
}

// A folder base's tokenizer and generation files, copied; its special token ids, from config.json.
models::SpecialTokenIds copy_folder_files(const std::string& base, const models::LoadedDecoder& loaded, const fs::path& out) {
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json",
                        "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt"})
    if (fs::exists(fs::path(base) / f)) {
      std::error_code ec;
      fs::copy_file(fs::path(base) / f, out / f, fs::copy_options::overwrite_existing, ec);
      WICK_CHECK(!ec, "merge: cannot copy ", f, " into ", out.string(), ": ", ec.message());
    }
  io::ModelConfig config = io::load_model_config(base + "/config.json");
  models::SpecialTokenIds ids;
  if (!config.bos_token_ids.empty()) ids.bos = config.bos_token_ids.front();
  ids.eos = config.eos_token_ids;
  ids.pad = config.pad_token_id;
  if (!fs::exists(out / "generation_config.json") && !loaded.eos_ids.empty()) {
    json generation = json::object();
    if (ids.bos) generation["bos_token_id"] = *ids.bos;
    generation["eos_token_id"] = ids_json(std::vector<int64_t>(loaded.eos_ids.begin(), loaded.eos_ids.end()));
    write_json(out / "generation_config.json", generation);
  }
  return ids;
}

void run_merge(const MergeOptions& o) {
  io::ModelSource src = io::resolve_model_source(o.model);
  bool gguf_base = src.format == io::ModelFormat::kGguf;
  std::string dtype_name = o.dtype == "base" ? base_dtype(src) : o.dtype;
  Dtype dtype = parse_dtype(dtype_name);
  RuntimeOptions runtime;
  runtime.device = o.device;
  runtime.dtype = "f32";  // merge in f32, round once when writing
  models::LoadedDecoder loaded = models::load_decoder(o.model, runtime.load_options(false));
  lora::Adapter adapter = lora::Adapter::load(o.adapter, loaded.model);
  models::DecoderModel merged = lora::merge(loaded.model, adapter);
  if (is_gguf_path(o.out)) {
    // A GGUF base's tokenizer keys are carried over as they are; a folder's tokenizer.json is converted.
    std::vector<std::pair<std::string, io::GgufValue>> tokenizer;
    if (gguf_base) {
      io::GgufFile file = io::GgufFile::open(src.path);
      for (const std::string& key : file.keys())
        if (key.rfind("tokenizer.", 0) == 0) tokenizer.emplace_back(key, file.get(key));
    } else {
      tokenizer = models::gguf_tokenizer_metadata(src.path);
    }
    std::string name = fs::path(o.out).stem().string();
    if (fs::path(o.out).has_parent_path()) fs::create_directories(fs::path(o.out).parent_path());
    models::save_decoder_gguf(merged, o.out, dtype, tokenizer, name);
  } else {
    fs::create_directories(o.out);
    models::SpecialTokenIds ids = gguf_base ? write_gguf_tokenizer_files(io::GgufFile::open(src.path), loaded, o.out)
                                            : copy_folder_files(src.path, loaded, o.out);
    models::save_decoder(merged, o.out, dtype, ids);
  }
  std::fprintf(stderr, "merged %zu modules into %s (%s)\n", adapter.modules().size(), o.out.c_str(), dtype_name.c_str());
}

}  // namespace

void register_merge(CLI::App& app) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "merge", "Merge a LoRA adapter into its base model (writes a Hugging Face folder, or a GGUF file)");
  cmd->add_option("-m,--model", o->model, "the base: model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--adapter", o->adapter, "the PEFT adapter folder")->required();
  cmd->add_option("-o,--out", o->out, "the folder to write, or FILE.gguf")->required();
  cmd->add_option("--dtype", o->dtype, "dtype of the written weights; base: the base's (bf16 for a quantized one)")
      ->check(CLI::IsMember({"base", "f32", "bf16", "f16"}))
      ->capture_default_str();
  cmd->add_option("--device", o->device, "where to merge: cpu, cuda, cuda:N or auto")->capture_default_str();
  cmd->callback([o] { run_merge(*o); });
}

}  // namespace wick::cli
