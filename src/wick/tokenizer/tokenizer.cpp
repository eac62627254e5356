// Tokenizer: loading tokenizer.json and the encode/decode pipelines.
#include "wick/tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "wick/tokenizer/added_vocabulary.h"
#include "wick/tokenizer/decoder.h"
#include "wick/tokenizer/model.h"
#include "wick/tokenizer/normalizer.h"
#include "wick/tokenizer/post_processor.h"
#include "wick/tokenizer/pre_tokenizer.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok {

namespace fs = std::filesystem;

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  WICK_CHECK(in, "tokenizer: cannot open '", path.string(), "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    fail(source, ": malformed JSON: ", e.what());
  }
}

// tokenizer_config.json writes special tokens as "text" or {"content": "text", ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Tokenizer Tokenizer::from_file(const fs::path& path) {
  WICK_CHECK(fs::exists(path), "tokenizer: '", path.string(), "' does not exist");
  fs::path file = path;
  if (fs::is_directory(path)) {
    file = path / "tokenizer.json";
    WICK_CHECK(fs::exists(file), "tokenizer: folder '", path.string(), "' has no tokenizer.json");
  }
  fs::path config_path = file.parent_path() / "tokenizer_config.json";
  std::string config = fs::exists(config_path) ? read_file(config_path) : std::string();
  return from_json_string(read_file(file), config, file.string());
}

Tokenizer Tokenizer::from_json_string(std::string_view tokenizer_json, std::string_view config_json,
                                      const std::string& source) {
  json j = parse_json(tokenizer_json, source);
  if (config_json.empty()) return from_json(j, nullptr, source);
  json config = parse_json(config_json, "tokenizer_config.json");
  return from_json(j, &config, source);
}

Tokenizer Tokenizer::from_json(const json& j, const json* config, const std::string& source) {
  return from_json(j, config, source, nullptr);
}

Tokenizer Tokenizer::from_json(const json& j, const json* config, const std::string& source,
                               std::unique_ptr<Model> model) {
  WICK_CHECK(j.is_object(), source, ": expected a JSON object at the top level");
  Tokenizer t;
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  t.model_ = model ? std::move(model) : Model::from_json(require_field(j, "model", source), source + ": model");
  if (present("normalizer")) t.normalizer_ = Normalizer::from_json(j["normalizer"], source + ": normalizer");
  if (present("pre_tokenizer")) t.pre_tokenizer_ = PreTokenizer::from_json(j["pre_tokenizer"], source + ": pre_tokenizer");
  if (present("post_processor"))
    t.post_processor_ = PostProcessor::from_json(j["post_processor"], source + ": post_processor");
  if (present("decoder")) t.decoder_ = Decoder::from_json(j["decoder"], source + ": decoder");
  if (present("truncation") && j["truncation"].contains("max_length") && !j["truncation"]["max_length"].is_null()) {
    const json& max_length = j["truncation"]["max_length"];
    WICK_CHECK(max_length.is_number_unsigned(), source,
               ": truncation.max_length: expected a non-negative integer, got ", max_length.dump());
    t.truncation_max_length_ = max_length.get<size_t>();
  }

  t.added_ = std::make_unique<AddedVocabulary>();
  if (present("added_tokens")) {
    const json& list = j["added_tokens"];
    WICK_CHECK(list.is_array(), source, ": added_tokens: expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string where = str_cat(source, ": added_tokens[", i, "]");
      const json& a = list[i];
      AddedToken tok;
      const json& id = require_field(a, "id", where);
      WICK_CHECK(id.is_number_integer(), where, ".id: expected an integer");
      tok.content = require_string(a, "content", where);
      // As HF does on loading: a token already in the vocabulary keeps that id (the stored id is only
      // checked there), a new one takes the next free id.
      if (auto known = t.token_to_id(tok.content)) {
        tok.id = *known;
      } else {
        tok.id = std::max(t.model_->id_end(), t.added_->id_end());
      }
      tok.single_word = value_or(a, "single_word", false, where);
      tok.lstrip = value_or(a, "lstrip", false, where);
      tok.rstrip = value_or(a, "rstrip", false, where);
      tok.normalized = value_or(a, "normalized", true, where);
      tok.special = value_or(a, "special", false, where);
      t.added_->add(std::move(tok));
    }
  }
  t.added_->build(t.normalizer_.get());

  if (auto unk = t.model_->unk_token()) t.unk_id_ = t.token_to_id(*unk);
  if (config) {
    auto id_of = [&](const char* key) -> std::optional<int32_t> {
      auto tok = config_token(*config, key);
      return tok ? t.token_to_id(*tok) : std::nullopt;
    };
    t.bos_id_ = id_of("bos_token");
    t.eos_id_ = id_of("eos_token");
    t.pad_id_ = id_of("pad_token");
    if (auto unk = id_of("unk_token")) t.unk_id_ = unk;
  }
  return t;
}

void Tokenizer::encode_piece(const std::string& text, bool at_start, std::vector<int32_t>& ids) const {
  std::vector<Piece> pieces{{text, at_start}};
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
  for (const Piece& p : pieces) model_->tokenize(p.text, ids);
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_special_tokens) const {
  std::string owned;
  if (!is_valid_utf8(input)) {
    owned = to_valid_utf8(input);
    input = owned;
  }
  std::vector<int32_t> ids;
  // Added tokens that match the raw text first, then (after normalization) the normalized ones.
  for (const TextSpan& raw : added_->split(input, false)) {
    if (raw.added_id >= 0) {
      ids.push_back(raw.added_id);
      continue;
    }
    std::string text(input.substr(raw.start, raw.end - raw.start));
    if (normalizer_) normalizer_->normalize(text);
    if (text.empty()) continue;
    for (const TextSpan& span : added_->split(text, true)) {
      if (span.added_id >= 0) {
        ids.push_back(span.added_id);
      } else if (span.end > span.start) {
        encode_piece(text.substr(span.start, span.end - span.start), raw.start == 0 && span.start == 0, ids);
      }
    }
  }
  if (add_special_tokens && post_processor_) post_processor_->process(ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* a = added_->by_id(id)) {
      if (!(skip_special_tokens && a->special)) tokens.push_back(a->content);
    } else if (const std::string* s = model_->id_to_token(id)) {
      if (skip_special_tokens) {
        auto added = added_->find(*s);
        if (added && added_->by_id(*added)->special) continue;
      }
      tokens.push_back(*s);
    }
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  decoder_->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_->find(token)) return id;
  return model_->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = added_->by_id(id)) return a->content;
  if (const std::string* s = model_->id_to_token(id)) return *s;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return std::max(model_->id_end(), added_->id_end()); }

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = added_->by_id(id);
  return a && a->special;
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

// The text the ids after read_offset_ add to the context ids_[prefix_offset_, read_offset_), or
// nothing when the context's text is not a prefix of the longer decode.
std::optional<std::string> StreamingDecoder::new_text() const {
  auto begin = ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_);
  std::string prefix = tokenizer_->decode({begin, ids_.begin() + static_cast<std::ptrdiff_t>(read_offset_)}, skip_special_);
  std::string text = tokenizer_->decode({begin, ids_.end()}, skip_special_);
  if (text.size() <= prefix.size() || text.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return text.substr(prefix.size());
}

std::string StreamingDecoder::step(int32_t id) {
  ids_.push_back(id);
  std::optional<std::string> piece = new_text();
  // Hold back while the newest bytes do not yet form whole characters (U+FFFD at the end).
  if (!piece || (piece->size() >= 3 && piece->compare(piece->size() - 3, 3, "\xEF\xBF\xBD") == 0)) return {};
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  // Keep the id vector short: drop what no future window can see.
  if (prefix_offset_ > 64) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return *piece;
}

std::string StreamingDecoder::finish() {
  if (read_offset_ >= ids_.size()) return {};
  std::optional<std::string> piece = new_text();
  prefix_offset_ = read_offset_ = ids_.size();
  return piece.value_or(std::string());
}

}  // namespace wick::tok
