// `wick info PATH`: what a model file or folder holds — architecture, sizes, parameter count,
// tensor dtypes, tokenizer kind and whether a chat template is present — or what a PEFT LoRA
// adapter folder (or a training checkpoint) holds: its base, rank, alpha, targets and parameters.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/base/ggml_quants.h"
#include "wick/cli/commands.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/hf_config.h"
#include "wick/io/model_source.h"
#include "wick/io/safetensors.h"

namespace wick::cli {

namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

bool is_encoder(const io::ModelConfig& c) { return c.model_type == "bert" || c.model_type == "mpnet"; }

void add_config(json& out, const io::ModelConfig& c) {
  out["architecture"] = c.model_type;
  out["hidden_size"] = c.hidden_size;
  out["intermediate_size"] = c.intermediate_size;
  out["layers"] = c.num_hidden_layers;
  out["attention_heads"] = c.num_attention_heads;
  out["kv_heads"] = c.num_key_value_heads;
  out["head_dim"] = c.head_dim;
  out["vocab_size"] = c.vocab_size;
  out["context_length"] = c.max_position_embeddings;
  if (is_encoder(c)) return;  // learned positions: no RoPE, no lm_head to tie
  out["rope_theta"] = c.rope_theta;
  if (c.rope_scaling) out["rope_scaling"] = c.rope_scaling->rope_type;
  out["tie_word_embeddings"] = c.tie_word_embeddings;
}

json gguf_info(const std::string& path) {
  io::GgufFile file = io::GgufFile::open(path);
  json out;
  out["format"] = "gguf v" + std::to_string(file.version());
  if (const auto* name = file.find("general.name"); name && name->is_string()) out["name"] = name->as_string("general.name");
  add_config(out, io::model_config_from_gguf(file));
  int64_t params = 0;
  std::map<std::string, int64_t> types;
  for (const io::GgufTensor& t : file.tensors()) {
    params += t.numel();
    types[std::string(ggml::ggml_type_name(t.type))]++;
  }
  out["tensors"] = file.tensors().size();
  out["parameters"] = params;
  out["tensor_types"] = types;
  io::GgufTokenizerData tok = io::gguf_tokenizer_data(file);
  out["tokenizer"] = tok.model + (tok.pre.empty() ? "" : " (pre-tokenizer " + tok.pre + ")");
  out["tokenizer_vocab"] = tok.tokens.size();
  out["chat_template"] = tok.chat_template.has_value();
  return out;
}

// Buffers a checkpoint may carry besides the weights (BERT's position_ids): integer tensors.
bool is_buffer(const io::TensorView& t) {
  using D = io::FileDtype;
  for (D d : {D::BOOL, D::U8, D::I8, D::I16, D::U16, D::I32, D::U32, D::I64, D::U64})
    if (t.dtype == d) return true;
  return false;
}

void add_safetensors(json& out, const io::SafeTensors& st) {
  int64_t params = 0, buffers = 0;
  std::map<std::string, int64_t> types;
  for (const std::string& name : st.names()) {
    const io::TensorView& t = st.get(name);
    if (is_buffer(t)) ++buffers;
    else params += t.numel();
    types[std::string(io::file_dtype_name(t.dtype))]++;
  }
  if (buffers > 0) out["buffers"] = buffers;
  out["tensors"] = st.size();
  out["parameters"] = params;
  out["tensor_types"] = types;
}

json folder_info(const std::string& dir) {
  json out;
  out["format"] = "huggingface folder";
  add_config(out, io::load_model_config(dir + "/config.json"));
  add_safetensors(out, io::SafeTensors::open_dir(dir));
  fs::path tj = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tj)) {
    std::ifstream in(tj);
    json t = json::parse(in, nullptr, false);
    out["tokenizer"] = t.is_object() && t.contains("model") && t["model"].contains("type") ? t["model"]["type"] : "unknown";
  } else {
    out["tokenizer"] = "none";
  }
  bool chat = false;
  if (fs::exists(fs::path(dir) / "tokenizer_config.json"))
    chat = io::load_tokenizer_config(dir + "/tokenizer_config.json").chat_template.has_value();
  out["chat_template"] = chat || fs::exists(fs::path(dir) / "chat_template.jinja");
  return out;
}

// One JSON object, or "key: value" lines; a failed write (a full disk) is an error.
void print_info(const json& out, bool as_json) {
  std::string text;
  if (as_json) {
    text = out.dump(1) + "\n";
  } else {
    for (const auto& [key, value] : out.items())
      text += key + ": " + (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
  }
  WICK_CHECK(std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0,
             "info: writing to standard output failed: ", std::strerror(errno));
}

bool is_adapter_folder(const std::string& path) {
  return fs::is_directory(path) && fs::exists(fs::path(path) / "adapter_config.json") &&
         !fs::exists(fs::path(path) / "config.json");
}

json adapter_info(const std::string& dir) {
  std::string config_path = dir + "/adapter_config.json";
  std::ifstream in(config_path);
  json c = json::parse(in, nullptr, false);
  WICK_CHECK(c.is_object(), config_path, ": not a JSON object");
  json out;
  out["format"] = "peft adapter (" + c.value("peft_type", std::string("unknown type")) + ")";
  out["base_model"] = c.contains("base_model_name_or_path") && c["base_model_name_or_path"].is_string()
                          ? c["base_model_name_or_path"]
                          : json("unknown");
  for (const char* key : {"r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules", "task_type"})
    if (c.contains(key)) out[key] = c[key];
  if (c.contains("r") && c["r"].is_number() && c.contains("lora_alpha") && c["lora_alpha"].is_number()) {
    double r = c["r"].get<double>(), alpha = c["lora_alpha"].get<double>();
    out["scale"] = c.value("use_rslora", false) ? alpha / std::sqrt(r) : alpha / r;
  }
  io::SafeTensors st = io::SafeTensors::open(dir + "/adapter_model.safetensors");
  int64_t modules = 0;
  for (const std::string& name : st.names())
    if (name.find(".lora_A.") != std::string::npos) ++modules;
  out["modules"] = modules;
  add_safetensors(out, st);
  fs::path state = fs::path(dir) / "trainer_state.json";
  if (fs::exists(state)) {
    std::ifstream s(state);
    json j = json::parse(s, nullptr, false);
    if (j.is_object() && j.contains("step")) out["checkpoint_step"] = j["step"];
  }
  return out;
}

}  // namespace

void register_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("info", "Describe a model: a folder, a .gguf or .safetensors file, or ORG/NAME");
  cmd->add_option("path", *path, "the model")->required();
  cmd->add_flag("--json", *as_json, "print one JSON object");
  cmd->callback([path, as_json] {
    json out;
    if (is_adapter_folder(*path)) {
      out = adapter_info(*path);
      out["path"] = *path;
      print_info(out, *as_json);
      return;
    }
    io::ModelSource src = io::resolve_model_source(*path);
    if (src.format == io::ModelFormat::kGguf) {
      out = gguf_info(src.path);
    } else if (src.format == io::ModelFormat::kHfFolder) {
      out = folder_info(src.path);
    } else {
      out["format"] = "safetensors file";
      add_safetensors(out, io::SafeTensors::open(src.path));
    }
    out["path"] = src.path;
    print_info(out, *as_json);
  });
}

}  // namespace wick::cli
