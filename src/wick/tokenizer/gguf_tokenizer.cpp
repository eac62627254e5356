// Tokenizer::from_gguf: builds a tokenizer.json from GGUF metadata (all but its BPE model's vocabulary
// and merges, from which the model is built directly; gguf_tokenizer_json writes them in), following
// transformers' integrations/ggml.py (vocabulary, merges from scores, control tokens as special added tokens,
// byte fallback) and the split regex that llama.cpp picks from tokenizer.ggml.pre. Where transformers'
// converter departs from the tokenizer.json the model ships (it drops the SentencePiece decoder's
// leading-space Strip, and uses the GPT-2 regex for Llama 3), the shipped tokenizer.json wins, so a
// GGUF tokenizes like the Hugging Face folder it was converted from.
#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "wick/tokenizer/json_util.h"
#include "wick/tokenizer/gguf_tokenizer_json.h"
#include "wick/tokenizer/model.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::tok {
namespace {

const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

json split_then_byte_level(const char* pattern) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            byte_level(false)}}};
}

// BOS/EOS around the sequence when the GGUF asks for them.
json template_processing(const GgufTokenizerData& d) {
  json single = json::array(), specials = json::object();
  auto add = [&](const std::optional<int32_t>& id, const char* what) {
    WICK_CHECK(id && *id >= 0 && static_cast<size_t>(*id) < d.tokens.size(), "gguf tokenizer: add_", what,
               "_token is set but tokenizer.ggml.", what, "_token_id is missing or out of range");
    const std::string& tok = d.tokens[static_cast<size_t>(*id)];
    single.push_back({{"SpecialToken", {{"id", tok}, {"type_id", 0}}}});
    specials[tok] = {{"id", tok}, {"ids", {*id}}, {"tokens", {tok}}};
  };
  if (d.add_bos) add(d.bos_id, "bos");
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (d.add_eos) add(d.eos_id, "eos");
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", json::array()}, {"special_tokens", specials}};
}

// SentencePiece BPE GGUFs carry scores instead of merges: every split of a token into two vocabulary
// pieces is a merge, ordered by the merged token's score (GGUFTokenizerSkeleton in transformers).
std::vector<std::pair<std::string, std::string>> merges_from_scores(const GgufTokenizerData& d) {
  WICK_CHECK(d.scores.size() == d.tokens.size(), "gguf tokenizer: llama model needs tokenizer.ggml.scores (",
             d.scores.size(), ") for every token (", d.tokens.size(), ")");
  std::unordered_map<std::string, float> score;
  for (size_t i = 0; i < d.tokens.size(); ++i) score[d.tokens[i]] = d.scores[i];
  struct Merge {
    std::string left, right;
    float score;
  };
  std::vector<Merge> merges;
  std::unordered_set<std::string> seen;
  for (size_t t = 0; t < d.tokens.size(); ++t) {
    const std::string& tok = d.tokens[t];
    if (!seen.insert(tok).second) continue;  // the Python dict keeps one entry per token
    std::vector<Merge> local;
    for (size_t cut = 1; cut < tok.size(); ++cut) {
      if ((static_cast<unsigned char>(tok[cut]) & 0xC0) == 0x80) continue;  // Python slices characters
      std::string l = tok.substr(0, cut), r = tok.substr(cut);
      if (score.count(l) && score.count(r)) local.push_back({l, r, score[tok]});
    }
    std::stable_sort(local.begin(), local.end(), [&](const Merge& a, const Merge& b) {
      float al = score[a.left], bl = score[b.left];
      if (al != bl) return al > bl;
      return score[a.right] > score[b.right];
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (Merge& m : merges) out.emplace_back(std::move(m.left), std::move(m.right));
  return out;
}

const char* const kModelWhere = "gguf tokenizer: model";

// The tokenizer.json of the metadata but for its model's vocab and merges, which are returned apart
// (merges in rank order): a vocabulary of 150k tokens as JSON costs more than the rest of loading.
struct TokenizerParts {
  json t;
  std::vector<std::pair<std::string, std::string>> merges;
};

TokenizerParts tokenizer_parts(const GgufTokenizerData& d) {
  WICK_CHECK(!d.tokens.empty(), "gguf tokenizer: tokenizer.ggml.tokens is empty");
  WICK_CHECK(d.token_types.empty() || d.token_types.size() == d.tokens.size(), "gguf tokenizer: tokenizer.ggml.token_type has ",
             d.token_types.size(), " entries for ", d.tokens.size(), " tokens");
  TokenizerParts parts;
  json& t = parts.t;

  // Every top-level field the Hugging Face tokenizers library expects, so transformers loads the file.
  t = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", json::array()},
       {"normalizer", nullptr}, {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", nullptr}};
  auto add_token = [&](size_t id, bool special) {
    t["added_tokens"].push_back({{"id", static_cast<int32_t>(id)}, {"content", d.tokens[id]}, {"single_word", false},
                                 {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", special}});
  };
  for (size_t i = 0; i < d.token_types.size(); ++i) {
    int type = d.token_types[i];
    bool is_unk = d.model == "llama" && d.unk_id && static_cast<size_t>(*d.unk_id) == i;
    if (type == 3 || is_unk) {
      add_token(i, true);  // control tokens are special
    } else if (type == 4) {
      add_token(i, false);  // user-defined tokens are matched in text but decoded
    }
  }

  if (d.model == "gpt2") {
    parts.merges.reserve(d.merges.size());
    const std::string where = kModelWhere;
    for (size_t i = 0; i < d.merges.size(); ++i) parts.merges.push_back(split_merge(d.merges[i], where, i));
    t["model"] = {{"type", "BPE"}, {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false}};
    const std::string& pre = d.pre;
    if (pre == "qwen2") {
      t["normalizer"] = {{"type", "NFC"}};
      t["pre_tokenizer"] = split_then_byte_level(kQwen2Pattern);
    } else if (pre == "llama-bpe" || pre == "llama3") {
      t["model"]["ignore_merges"] = true;
      t["pre_tokenizer"] = split_then_byte_level(kLlama3Pattern);
    } else if (pre == "smollm") {
      t["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
    } else if (pre == "default" || pre == "gpt2" || pre == "gpt-2" || pre == "phi-2" || pre.empty()) {
      t["pre_tokenizer"] = byte_level(true);
    } else {
      fail("gguf tokenizer: unsupported tokenizer.ggml.pre '", pre,
           "' (supported: default, gpt2, gpt-2, phi-2, qwen2, llama-bpe, llama3, smollm)");
    }
    t["decoder"] = byte_level(true);
  } else if (d.model == "llama") {
    std::optional<std::string> unk;
    if (d.unk_id) {
      WICK_CHECK(*d.unk_id >= 0 && static_cast<size_t>(*d.unk_id) < d.tokens.size(),
                 "gguf tokenizer: tokenizer.ggml.unknown_token_id ", *d.unk_id, " is out of range");
      unk = d.tokens[static_cast<size_t>(*d.unk_id)];
    }
    parts.merges = merges_from_scores(d);
    t["model"] = {{"type", "BPE"}, {"fuse_unk", true}, {"byte_fallback", true}};
    if (unk) t["model"]["unk_token"] = *unk;
    json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
    if (d.add_space_prefix) {
      t["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}, replace_space}}};
    } else {
      t["normalizer"] = replace_space;
    }
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (d.add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    t["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  } else {
    fail("gguf tokenizer: unsupported tokenizer.ggml.model '", d.model, "' (supported: gpt2, llama)");
  }
  if (d.add_bos || d.add_eos) t["post_processor"] = template_processing(d);
  return parts;
}

// The vocabulary: a token listed twice keeps its first id (as the Python dict of transformers' converter).
Vocab vocab_of(const GgufTokenizerData& d) {
  Vocab vocab;
  const std::string where = str_cat(kModelWhere, ".vocab");
  for (size_t i = 0; i < d.tokens.size(); ++i)
    if (!vocab.find(d.tokens[i])) vocab.add(d.tokens[i], static_cast<int32_t>(i), where);
  return vocab;
}

}  // namespace

nlohmann::json gguf_tokenizer_json(const GgufTokenizerData& d) {
  TokenizerParts parts = tokenizer_parts(d);
  json vocab = json::object();
  for (size_t i = 0; i < d.tokens.size(); ++i)
    if (!vocab.contains(d.tokens[i])) vocab[d.tokens[i]] = static_cast<int32_t>(i);
  json merges = json::array();
  if (d.model == "gpt2") {
    for (const std::string& m : d.merges) merges.push_back(m);  // as the GGUF stores them: "a b"
  } else {
    for (const auto& [left, right] : parts.merges) merges.push_back({left, right});
  }
  parts.t["model"]["vocab"] = std::move(vocab);
  parts.t["model"]["merges"] = std::move(merges);
  return parts.t;
}

Tokenizer Tokenizer::from_gguf(const GgufTokenizerData& d) {
  TokenizerParts parts = tokenizer_parts(d);
  std::unique_ptr<Model> model = Model::bpe(parts.t["model"], vocab_of(d), parts.merges, kModelWhere);
  Tokenizer tok = from_json(parts.t, nullptr, "gguf tokenizer", std::move(model));
  auto valid = [&](const std::optional<int32_t>& id) -> std::optional<int32_t> {
    if (id && *id >= 0 && static_cast<size_t>(*id) < d.tokens.size()) return id;
    return std::nullopt;
  };
  tok.bos_id_ = valid(d.bos_id);
  tok.eos_id_ = valid(d.eos_id);
  tok.pad_id_ = valid(d.pad_id);
  if (valid(d.unk_id)) tok.unk_id_ = valid(d.unk_id);
  return tok;
}

}  // namespace wick::tok
