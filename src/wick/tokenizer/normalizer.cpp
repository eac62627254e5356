// Normalizer implementations with the semantics of HF tokenizers' normalizers module.
#include "wick/tokenizer/normalizer.h"

#include <vector>

#include "wick/tokenizer/regex.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok {
namespace {

template <typename Keep>
std::string filter_chars(const std::string& s, Keep keep) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = next_code_point(s, i);
    if (keep(c)) out.append(s, start, i - start);
  }
  return out;
}

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override { text = normalize_unicode(text, form_); }

 private:
  NormalForm form_;
};

class Lowercase : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = lowercase(text); }
};

class StripAccents : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    text = filter_chars(text, [](char32_t c) { return !is_mark(c); });
  }
};

class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t i = begin;
        if (!is_whitespace(next_code_point(text, i))) break;
        begin = i;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t s = end - 1;
        while (s > begin && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
        size_t i = s;
        if (!is_whitespace(next_code_point(text, i))) break;
        end = s;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace : public Normalizer {
 public:
  Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    auto matches = pattern_.find_all(text);
    if (matches.empty()) return;
    std::string out;
    size_t prev = 0;
    for (auto [s, e] : matches) {
      out.append(text, prev, s - prev);
      out += content_;
      prev = e;
    }
    out.append(text, prev, std::string::npos);
    text = std::move(out);
  }

 private:
  Regex pattern_;
  std::string content_;
};

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text), chinese_(handle_chinese_chars), strip_accents_(strip_accents), lowercase_(lowercase) {}
  void normalize(std::string& text) const override {
    if (clean_text_) {
      std::string out;
      out.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        size_t start = i;
        char32_t c = next_code_point(text, i);
        bool control = c != '\t' && c != '\n' && c != '\r' && is_other(c);
        if (c == 0 || c == 0xFFFD || control) continue;
        if (is_whitespace(c)) {
          out.push_back(' ');
        } else {
          out.append(text, start, i - start);
        }
      }
      text = std::move(out);
    }
    if (chinese_) {
      std::string out;
      out.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        size_t start = i;
        char32_t c = next_code_point(text, i);
        if (is_chinese_char(c)) out.push_back(' ');
        out.append(text, start, i - start);
        if (is_chinese_char(c)) out.push_back(' ');
      }
      text = std::move(out);
    }
    if (strip_accents_) {
      text = normalize_unicode(text, NormalForm::NFD);
      text = filter_chars(text, [](char32_t c) { return !is_mark_nonspacing(c); });
    }
    if (lowercase_) text = lowercase(text);
  }

 private:
  bool clean_text_, chinese_, strip_accents_, lowercase_;
};

class Sequence : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> items) : items_(std::move(items)) {}
  void normalize(std::string& text) const override {
    for (const auto& n : items_) n->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

std::unique_ptr<Normalizer> Normalizer::from_json(const json& j, const std::string& where) {
  std::string type = type_of(j, where);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Strip")
    return std::make_unique<Strip>(value_or(j, "strip_left", true, where), value_or(j, "strip_right", true, where));
  if (type == "Prepend") return std::make_unique<Prepend>(require_string(j, "prepend", where));
  if (type == "Replace")
    return std::make_unique<Replace>(pattern_from_json(require_field(j, "pattern", where), where + ".pattern"),
                                     require_string(j, "content", where));
  if (type == "BertNormalizer") {
    bool lower = value_or(j, "lowercase", true, where);
    auto it = j.find("strip_accents");
    bool strip = (it == j.end() || it->is_null()) ? lower : value_or(j, "strip_accents", lower, where);
    return std::make_unique<BertNormalizer>(value_or(j, "clean_text", true, where),
                                            value_or(j, "handle_chinese_chars", true, where), strip, lower);
  }
  if (type == "Sequence") {
    const json& list = require_field(j, "normalizers", where);
    WICK_CHECK(list.is_array(), where, ".normalizers: expected an array");
    std::vector<std::unique_ptr<Normalizer>> items;
    for (size_t i = 0; i < list.size(); ++i)
      items.push_back(from_json(list[i], str_cat(where, ".normalizers[", i, "]")));
    return std::make_unique<Sequence>(std::move(items));
  }
  fail(where, ": unknown normalizer type '", type, "' (supported: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, ",
       "Strip, Prepend, Replace, BertNormalizer, Sequence)");
}

}  // namespace wick::tok
