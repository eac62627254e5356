// `wick info PATH`: what a model file or folder holds — architecture, sizes, parameter count,
// tensor dtypes, tokenizer kind and whether a chat template is present.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "wick/cli/commands.h"
#include "wick/core/error.h"
#include "wick/io/ggml_quants.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/hf_config.h"
#include "wick/io/model_source.h"
#include "wick/io/safetensors.h"

namespace wick::cli {

namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

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
    types[std::string(io::ggml_type_name(t.type))]++;
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

void add_safetensors(json& out, const io::SafeTensors& st) {
  int64_t params = 0;
  std::map<std::string, int64_t> types;
  for (const std::string& name : st.names()) {
    const io::TensorView& t = st.get(name);
    params += t.numel();
    types[std::string(io::file_dtype_name(t.dtype))]++;
  }
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

}  // namespace

void register_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("info", "Describe a model: a folder, a .gguf or .safetensors file, or ORG/NAME");
  cmd->add_option("path", *path, "the model")->required();
  cmd->add_flag("--json", *as_json, "print one JSON object");
  cmd->callback([path, as_json] {
    io::ModelSource src = io::resolve_model_source(*path);
    json out;
    if (src.format == io::ModelFormat::kGguf) {
      out = gguf_info(src.path);
    } else if (src.format == io::ModelFormat::kHfFolder) {
      out = folder_info(src.path);
    } else {
      out["format"] = "safetensors file";
      add_safetensors(out, io::SafeTensors::open(src.path));
    }
    out["path"] = src.path;
    if (*as_json) {
      std::cout << out.dump(1) << "\n";
      return;
    }
    for (const auto& [key, value] : out.items())
      std::cout << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
  });
}

}  // namespace wick::cli
