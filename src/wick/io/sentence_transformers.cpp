// sentence-transformers folder files → SentenceTransformersConfig.
#include "wick/io/sentence_transformers.h"

#include <filesystem>

#include "wick/base/error.h"
#include "wick/io/json_fields.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;
using detail::JsonFields;
using detail::read_json_file;

constexpr const char* kPooling = "sentence_transformers.models.Pooling";

void read_pooling(const std::string& path, SentenceTransformersConfig& c) {
  auto j = read_json_file(path);
  JsonFields f(j, path);
  c.word_embedding_dimension = f.integer("word_embedding_dimension");
  c.include_prompt = f.boolean("include_prompt").value_or(true);
  // The concatenation order of sentence_transformers.models.Pooling.forward.
  const std::pair<const char*, const char*> modes[] = {
      {"pooling_mode_cls_token", "cls"},
      {"pooling_mode_max_tokens", "max"},
      {"pooling_mode_mean_tokens", "mean"},
      {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
      {"pooling_mode_weightedmean_tokens", "weightedmean"},
      {"pooling_mode_lasttoken", "lasttoken"},
  };
  for (const auto& [key, mode] : modes) {
    if (f.boolean(key).value_or(false)) c.pooling_modes.push_back(mode);
  }
  if (c.pooling_modes.empty()) {
    // Pooling(pooling_mode="mean") style configs name the mode instead.
    if (auto mode = f.string("pooling_mode")) c.pooling_modes.push_back(*mode);
  }
  if (c.pooling_modes.empty()) fail(path, ": no pooling mode is switched on");
}

}  // namespace

std::optional<SentenceTransformersConfig> load_sentence_transformers_config(const std::string& dir) {
  fs::path root(dir);
  fs::path modules_path = root / "modules.json";
  if (!fs::exists(modules_path)) return std::nullopt;
  SentenceTransformersConfig c;
  auto modules = read_json_file(modules_path.string());
  if (!modules.is_array()) fail(modules_path.string(), ": expected a list of modules");
  for (size_t i = 0; i < modules.size(); ++i) {
    JsonFields m(modules[i], str_cat(modules_path.string(), ": module ", i));
    SentenceTransformersModule mod;
    mod.idx = m.integer("idx").value_or(int64_t(i));
    mod.name = m.string("name").value_or("");
    mod.path = m.string("path").value_or("");
    auto type = m.string("type");
    if (!type) fail(m.source(), ": missing field 'type'");
    mod.type = *type;
    c.modules.push_back(mod);
  }

  for (const auto& mod : c.modules) {
    if (mod.type == kPooling) {
      read_pooling((root / mod.path / "config.json").string(), c);
    } else if (mod.type == "sentence_transformers.models.Normalize") {
      c.normalize = true;
    } else if (mod.type == "sentence_transformers.models.Dense") {
      c.has_dense = true;
    }
  }

  fs::path sbert = root / "sentence_bert_config.json";
  if (fs::exists(sbert)) {
    auto j = read_json_file(sbert.string());
    JsonFields f(j, sbert.string());
    c.max_seq_length = f.integer("max_seq_length");
    c.do_lower_case = f.boolean("do_lower_case");
  }

  fs::path st = root / "config_sentence_transformers.json";
  if (fs::exists(st)) {
    auto j = read_json_file(st.string());
    JsonFields f(j, st.string());
    if (auto prompts = f.object("prompts")) {
      for (const auto& [name, text] : f.raw("prompts")->items()) {
        if (!text.is_string()) prompts->wrong_type(name, "a string");
        c.prompts[name] = text.get<std::string>();
      }
    }
    c.default_prompt_name = f.string("default_prompt_name");
    c.similarity_fn_name = f.string("similarity_fn_name");
  }
  return c;
}

}  // namespace wick::io
