// A Hugging Face folder's byte-level BPE tokenizer as GGUF tokenizer.* metadata, as llama.cpp's
// converter writes it: tokens by id with their types, merges, the pre-tokenizer's name (recognised
// by comparing with the pre-tokenizers wick builds for each name), special ids and chat template.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/io/hf_config.h"
#include "wick/models/gguf_tokenizer.h"
#include "wick/tokenizer/gguf_tokenizer_json.h"

namespace wick::models {

namespace {

using json = nlohmann::json;

// What of a pre-tokenizer changes how text is split: each step's type and its pattern or flag.
std::string split_signature(const json& p) {
  if (p.is_null()) return "none";
  std::string type = p.value("type", "");
  if (type == "Sequence") {
    std::string s;
    for (const json& step : p["pretokenizers"]) s += split_signature(step) + ";";
    return s;
  }
  if (type == "Split") return "Split:" + p["pattern"].value("Regex", p["pattern"].value("String", ""));
  if (type == "Digits") return std::string("Digits:") + (p.value("individual_digits", false) ? "1" : "0");
  if (type == "ByteLevel") return std::string("ByteLevel:") + (p.value("use_regex", true) ? "1" : "0");
  return type;
}

// The llama.cpp pre-tokenizer name whose splitting this tokenizer.json does.
std::string pre_tokenizer_name(const json& tokenizer, const std::string& source) {
  std::string wanted = split_signature(tokenizer.value("pre_tokenizer", json()));
  for (const char* name : {"smollm", "qwen2", "llama-bpe", "gpt2"}) {
    tok::GgufTokenizerData probe;
    probe.model = "gpt2";
    probe.pre = name;
    probe.tokens = {"a"};
    if (split_signature(tok::gguf_tokenizer_json(probe)["pre_tokenizer"]) == wanted) return name;
  }
  fail(source, ": its pre-tokenizer matches none that GGUF names (smollm, qwen2, llama-bpe, gpt2)");
}

io::GgufValue string_array(const std::vector<std::string>& items) {
  io::GgufArray a{io::GgufValueType::STRING, {}};
  for (const std::string& s : items) a.items.push_back({io::GgufValueType::STRING, s});
  return {io::GgufValueType::ARRAY, std::move(a)};
}

io::GgufValue int32_array(const std::vector<int32_t>& items) {
  io::GgufArray a{io::GgufValueType::INT32, {}};
  for (int32_t v : items) a.items.push_back({io::GgufValueType::INT32, int64_t(v)});
  return {io::GgufValueType::ARRAY, std::move(a)};
}

io::GgufValue u32(int64_t v) { return {io::GgufValueType::UINT32, uint64_t(v)}; }

}  // namespace

std::vector<std::pair<std::string, io::GgufValue>> gguf_tokenizer_metadata(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string source = (fs::path(dir) / "tokenizer.json").string();
  std::ifstream in(source);
  WICK_CHECK(in.good(), dir, ": no tokenizer.json to write into the GGUF");
  json t = json::parse(in, nullptr, false);
  WICK_CHECK(t.is_object() && t.contains("model") && t["model"].is_object(), source, ": not a tokenizer.json");
  const json& model = t["model"];
  bool byte_level = t.contains("decoder") && t["decoder"].is_object() && t["decoder"].value("type", "") == "ByteLevel";
  WICK_CHECK(model.value("type", "") == "BPE" && byte_level, source,
             ": only byte-level BPE tokenizers (GPT-2 style: SmolLM2, Qwen2, Llama 3) can be written to a GGUF");
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  auto put = [&](int64_t id, const std::string& token, int32_t type) {
    WICK_CHECK(id >= 0 && id < (int64_t(1) << 24), source, ": token id ", id, " out of range");
    if (size_t(id) >= tokens.size()) {
      for (size_t i = tokens.size(); i <= size_t(id); ++i) tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.resize(tokens.size(), 5);  // unused, as llama.cpp's converter fills gaps
    }
    tokens[size_t(id)] = token;
    types[size_t(id)] = type;
  };
  for (const auto& [token, id] : model["vocab"].items()) put(id.get<int64_t>(), token, 1);
  if (t.contains("added_tokens"))
    for (const json& a : t["added_tokens"]) put(a["id"].get<int64_t>(), a["content"], a.value("special", false) ? 3 : 4);
  std::vector<std::string> merges;
  for (const json& m : model.value("merges", json::array()))
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());

  std::vector<std::pair<std::string, io::GgufValue>> meta{
      {"tokenizer.ggml.model", {io::GgufValueType::STRING, std::string("gpt2")}},
      {"tokenizer.ggml.pre", {io::GgufValueType::STRING, pre_tokenizer_name(t, source)}},
      {"tokenizer.ggml.tokens", string_array(tokens)},
      {"tokenizer.ggml.token_type", int32_array(types)},
      {"tokenizer.ggml.merges", string_array(merges)},
  };
  tok::Tokenizer tokenizer = tok::Tokenizer::from_file(dir);
  io::ModelConfig config = io::load_model_config((fs::path(dir) / "config.json").string());
  std::optional<int64_t> bos = tokenizer.bos_id(), eos = tokenizer.eos_id();
  if (!config.bos_token_ids.empty()) bos = config.bos_token_ids.front();
  if (!config.eos_token_ids.empty()) eos = config.eos_token_ids.front();
  if (bos) meta.emplace_back("tokenizer.ggml.bos_token_id", u32(*bos));
  if (eos) meta.emplace_back("tokenizer.ggml.eos_token_id", u32(*eos));
  if (tokenizer.unk_id()) meta.emplace_back("tokenizer.ggml.unknown_token_id", u32(*tokenizer.unk_id()));
  std::optional<int64_t> pad = config.pad_token_id;
  if (!pad && tokenizer.pad_id()) pad = *tokenizer.pad_id();
  if (pad) meta.emplace_back("tokenizer.ggml.padding_token_id", u32(*pad));
  // Whether encoding adds BOS: what the post-processor does to an empty text.
  std::vector<int32_t> specials = tokenizer.encode("", true);
  bool add_bos = bos && !specials.empty() && specials.front() == *bos;
  meta.emplace_back("tokenizer.ggml.add_bos_token", io::GgufValue{io::GgufValueType::BOOL, add_bos});
  fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    io::TokenizerConfig tc = io::load_tokenizer_config(config_path.string());
    if (tc.chat_template) meta.emplace_back("tokenizer.chat_template", io::GgufValue{io::GgufValueType::STRING, *tc.chat_template});
  }
  return meta;
}

}  // namespace wick::models
