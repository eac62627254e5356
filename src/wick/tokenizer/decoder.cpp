// Decoder implementations with the semantics of HF tokenizers' decoders module.
#include "wick/tokenizer/decoder.h"

#include "wick/tokenizer/pre_tokenizer.h"
#include "wick/tokenizer/regex.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok {
namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t prev = 0, pos;
  while ((pos = s.find(from, prev)) != std::string::npos) {
    out.append(s, prev, pos - prev);
    out += to;
    prev = pos + from.size();
  }
  out.append(s, prev, std::string::npos);
  return out;
}

class ByteLevel : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      size_t mark = bytes.size();
      bool all_mapped = true;
      for (size_t i = 0; i < t.size();) {
        int b = char_to_byte(next_code_point(t, i));
        if (b < 0) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!all_mapped) bytes.resize(mark), bytes += t;
    }
    tokens.assign(1, to_valid_utf8(bytes));
  }
};

class Metaspace : public Decoder {
 public:
  Metaspace(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(tokens[i], replacement_, i == 0 && strip_first_ ? "" : " ");
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class ByteFallback : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
          std::isxdigit(static_cast<unsigned char>(t[4])))
        byte = std::stoi(t.substr(3, 2), nullptr, 16);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class Fuse : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class Strip : public Decoder {
 public:
  Strip(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
      for (size_t i = 0; i < t.size();) {
        size_t at = i;
        chars.emplace_back(at, next_code_point(t, i));
      }
      size_t cut_start = 0, cut_stop = 0;
      while (cut_start < start_ && cut_start < chars.size() && chars[cut_start].second == content_) ++cut_start;
      while (cut_stop < stop_ && cut_stop < chars.size() && chars[chars.size() - 1 - cut_stop].second == content_)
        ++cut_stop;
      if (cut_start + cut_stop >= chars.size()) {
        t.clear();
        continue;
      }
      size_t b = chars[cut_start].first;
      size_t e = cut_stop == 0 ? t.size() : chars[chars.size() - cut_stop].first;
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class Replace : public Decoder {
 public:
  Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      auto matches = pattern_.find_all(t);
      if (matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (auto [s, e] : matches) {
        out.append(t, prev, s - prev);
        out += content_;
        prev = e;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

std::string wordpiece_cleanup(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},          {" ,", ","},    {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : kRules) s = replace_all(s, from, to);
  return s;
}

class WordPiece : public Decoder {
 public:
  WordPiece(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(t.begin(), ' ');
        }
      }
      if (cleanup_) t = wordpiece_cleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// Replaces the end-of-word suffix by a space (by nothing on the last token).
class BpeDecoder : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class Sequence : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

char32_t single_char(const std::string& s, const std::string& where) {
  size_t i = 0;
  WICK_CHECK(!s.empty(), where, ": expected one character, got an empty string");
  char32_t c = next_code_point(s, i);
  WICK_CHECK(i == s.size(), where, ": expected one character, got '", s, "'");
  return c;
}

}  // namespace

std::unique_ptr<Decoder> Decoder::from_json(const json& j, const std::string& where) {
  std::string type = type_of(j, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "Metaspace") {
    bool strip_first = value_or(j, "add_prefix_space", true, where);
    if (j.contains("prepend_scheme")) strip_first = require_string(j, "prepend_scheme", where) != "never";
    return std::make_unique<Metaspace>(value_or<std::string>(j, "replacement", "\u2581", where), strip_first);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Strip")
    return std::make_unique<Strip>(single_char(require_string(j, "content", where), where + ".content"),
                                   value_or<size_t>(j, "start", 0, where), value_or<size_t>(j, "stop", 0, where));
  if (type == "Replace")
    return std::make_unique<Replace>(pattern_from_json(require_field(j, "pattern", where), where + ".pattern"),
                                     require_string(j, "content", where));
  if (type == "WordPiece")
    return std::make_unique<WordPiece>(value_or<std::string>(j, "prefix", "##", where), value_or(j, "cleanup", true, where));
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(value_or<std::string>(j, "suffix", "</w>", where));
  if (type == "Sequence") {
    const json& list = require_field(j, "decoders", where);
    WICK_CHECK(list.is_array(), where, ".decoders: expected an array");
    std::vector<std::unique_ptr<Decoder>> items;
    for (size_t i = 0; i < list.size(); ++i) items.push_back(from_json(list[i], str_cat(where, ".decoders[", i, "]")));
    return std::make_unique<Sequence>(std::move(items));
  }
  fail(where, ": unknown decoder type '", type, "' (supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, ",
       "Replace, WordPiece, BPEDecoder, Sequence)");
}

}  // namespace wick::tok
