// Tokenizers and chat templates from folders, tokenizer.json files and GGUF metadata.
#include "wick/cli/model_files.h"

#include <filesystem>
#include <fstream>

#include "wick/core/error.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/model_source.h"
#include "wick/models/gguf_tokenizer.h"

namespace wick::cli {

namespace fs = std::filesystem;

namespace {

// A tokenizer.json, or a folder: taken as given; anything else goes through the model resolver
// (GGUF file, Hub id in the cache).
std::string resolve(const std::string& path) {
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".json") return path;
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "tokenizer.json")) return path;
  return io::resolve_model_source(path).path;
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

tok::Tokenizer load_tokenizer(const std::string& path) {
  std::string p = resolve(path);
  if (fs::is_regular_file(p) && is_gguf_file(p)) return models::tokenizer_from_gguf(io::GgufFile::open(p));
  return tok::Tokenizer::from_file(p);
}

chat::ChatTemplateConfig load_chat_template(const std::string& path) {
  std::string p = resolve(path);
  if (fs::is_regular_file(p) && is_gguf_file(p)) {
    io::GgufFile file = io::GgufFile::open(p);
    io::GgufTokenizerData d = io::gguf_tokenizer_data(file);
    WICK_CHECK(d.chat_template.has_value(), p, ": the GGUF metadata has no tokenizer.chat_template");
    chat::ChatTemplateConfig config;
    config.chat_template = *d.chat_template;
    auto token = [&](const std::optional<int64_t>& id) -> std::optional<std::string> {
      if (id) return d.tokens.at(size_t(*id));
      return std::nullopt;
    };
    config.options.bos_token = token(d.bos_token_id);
    config.options.eos_token = token(d.eos_token_id);
    return config;
  }
  fs::path config = fs::is_directory(p) ? fs::path(p) : fs::path(p).parent_path() / "tokenizer_config.json";
  return chat::load_chat_template_config(config.string());
}

}  // namespace wick::cli
