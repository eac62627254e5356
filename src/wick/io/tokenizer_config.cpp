// tokenizer_config.json → TokenizerConfig (special tokens, chat template, bos/eos flags).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "wick/base/error.h"
#include "wick/io/hf_config.h"
#include "wick/io/json_fields.h"

namespace wick::io {
namespace {

using detail::JsonFields;
using nlohmann::json;

// A special token is either "text" or an AddedToken dict whose `content` is the text.
std::optional<std::string> special_token(const JsonFields& f, const std::string& key) {
  const json* v = f.raw(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    auto it = v->find("content");
    if (it != v->end() && it->is_string()) return it->get<std::string>();
  }
  f.wrong_type(key, "a string or an AddedToken object with a string 'content'");
}

void parse_chat_template(const JsonFields& f, TokenizerConfig& t) {
  const json* v = f.raw("chat_template");
  if (v == nullptr) return;
  if (v->is_string()) {
    t.chat_template = v->get<std::string>();
    return;
  }
  if (!v->is_array()) f.wrong_type("chat_template", "a string or a list of {name, template}");
  for (const json& entry : *v) {
    auto name = entry.find("name");
    auto text = entry.find("template");
    if (!entry.is_object() || name == entry.end() || text == entry.end() || !name->is_string() ||
        !text->is_string())
      f.wrong_type("chat_template", "a string or a list of {name, template}");
    t.named_chat_templates[name->get<std::string>()] = text->get<std::string>();
  }
  auto def = t.named_chat_templates.find("default");
  if (def != t.named_chat_templates.end()) t.chat_template = def->second;
}

void parse_added_tokens(const JsonFields& f, TokenizerConfig& t) {
  auto decoder = f.object("added_tokens_decoder");
  if (!decoder) return;
  const json& obj = *f.raw("added_tokens_decoder");
  for (const auto& [key, value] : obj.items()) {
    AddedTokenInfo a;
    try {
      size_t used = 0;
      a.id = std::stoll(key, &used);
      if (used != key.size()) throw std::invalid_argument(key);
    } catch (const std::exception&) {
      fail(f.source(), ": added_tokens_decoder: key '", key, "' is not a token id");
    }
    JsonFields tok(value, str_cat(f.source(), ": added_tokens_decoder[", key, "]"));
    auto content = tok.string("content");
    if (!content) fail(tok.source(), ": missing field 'content'");
    a.content = *content;
    a.special = tok.boolean("special").value_or(false);
    a.lstrip = tok.boolean("lstrip").value_or(false);
    a.rstrip = tok.boolean("rstrip").value_or(false);
    a.normalized = tok.boolean("normalized").value_or(false);
    a.single_word = tok.boolean("single_word").value_or(false);
    t.added_tokens.push_back(std::move(a));
  }
  std::sort(t.added_tokens.begin(), t.added_tokens.end(),
            [](const AddedTokenInfo& a, const AddedTokenInfo& b) { return a.id < b.id; });
}

}  // namespace

TokenizerConfig parse_tokenizer_config(const json& config, const std::string& source) {
  JsonFields f(config, source);
  TokenizerConfig t;
  t.bos_token = special_token(f, "bos_token");
  t.eos_token = special_token(f, "eos_token");
  t.unk_token = special_token(f, "unk_token");
  t.pad_token = special_token(f, "pad_token");
  t.sep_token = special_token(f, "sep_token");
  t.cls_token = special_token(f, "cls_token");
  t.mask_token = special_token(f, "mask_token");
  parse_chat_template(f, t);
  t.add_bos_token = f.boolean("add_bos_token");
  t.add_eos_token = f.boolean("add_eos_token");
  if (const json* v = f.raw("model_max_length")) {
    if (!v->is_number()) f.wrong_type("model_max_length", "a number");
    double d = v->get<double>();
    // transformers' VERY_LARGE_INTEGER (int(1e30)) means "no limit".
    if (d < 1e18) t.model_max_length = f.integer("model_max_length");
  }
  t.clean_up_tokenization_spaces = f.boolean("clean_up_tokenization_spaces");
  t.do_lower_case = f.boolean("do_lower_case");
  t.tokenizer_class = f.string("tokenizer_class").value_or("");
  parse_added_tokens(f, t);
  return t;
}

TokenizerConfig load_tokenizer_config(const std::string& path) {
  TokenizerConfig t = parse_tokenizer_config(detail::read_json_file(path), path);
  if (!t.chat_template) {
    // transformers >= 4.43 may save the template next to the config instead of inside it.
    auto jinja = std::filesystem::path(path).parent_path() / "chat_template.jinja";
    std::ifstream in(jinja, std::ios::binary);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      t.chat_template = text.str();
    }
  }
  return t;
}

}  // namespace wick::io
