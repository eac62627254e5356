// Pre-tokenizer implementations with the semantics of HF tokenizers' pre_tokenizers module.
#include "wick/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <array>
#include <functional>

#include "wick/tokenizer/regex.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

struct ByteTable {
  std::array<std::string, 256> to_char;
  std::array<int, 0x200> to_byte;
  ByteTable() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      append_utf8(to_char[b], cp);
      to_byte[cp] = b;
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

std::vector<Span> spans_from_matches(const std::vector<std::pair<size_t, size_t>>& matches, size_t size) {
  std::vector<Span> spans;
  if (size == 0) return {{0, 0, false}};
  size_t prev = 0;
  for (auto [s, e] : matches) {
    if (prev != s) spans.push_back({prev, s, false});
    spans.push_back({s, e, true});
    prev = e;
  }
  if (prev != size) spans.push_back({prev, size, false});
  return spans;
}

std::vector<Span> spans_from_predicate(const std::string& text, const std::function<bool(char32_t)>& pred) {
  std::vector<std::pair<size_t, size_t>> matches;
  for (size_t i = 0; i < text.size();) {
    size_t start = i;
    if (pred(next_code_point(text, i))) matches.emplace_back(start, i);
  }
  return spans_from_matches(matches, text.size());
}

void invert(std::vector<Span>& spans) {
  for (auto& s : spans) s.is_match = !s.is_match;
}

SplitBehavior behavior_from_json(const json& j, const std::string& where) {
  std::string b = require_string(j, "behavior", where);
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  fail(where, ".behavior: unknown split behavior '", b, "'");
}

// Applies `fn` (piece -> spans) to every piece with one behavior.
template <typename Fn>
void split_all(std::vector<Piece>& pieces, SplitBehavior behavior, Fn fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (const Piece& p : pieces) split_piece(p, fn(p.text), behavior, out);
  pieces = std::move(out);
}

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex_) regex_ = std::make_unique<Regex>(kGpt2Pattern);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_)
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(p.text.begin(), ' ');
    if (use_regex_) split_all(pieces, SplitBehavior::Isolated, [&](const std::string& t) {
        return spans_from_matches(regex_->find_all(t), t.size());
      });
    const ByteTable& table = byte_table();
    for (Piece& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char b : p.text) mapped += table.to_char[b];
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
  std::unique_ptr<Regex> regex_;
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(Regex regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, behavior_, [&](const std::string& t) {
      auto spans = spans_from_matches(regex_.find_all(t), t.size());
      if (invert_) invert(spans);
      return spans;
    });
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    size_t i = 0;
    replacement_cp_ = next_code_point(replacement_, i);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& p : pieces) {
      std::string out;
      for (char ch : p.text) {
        if (ch == ' ') {
          out += replacement_;
        } else {
          out.push_back(ch);
        }
      }
      bool starts = out.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_start)))
        out.insert(0, replacement_);
      p.text = std::move(out);
    }
    if (split_) split_all(pieces, SplitBehavior::MergedWithNext, [&](const std::string& t) {
        return spans_from_predicate(t, [&](char32_t c) { return c == replacement_cp_; });
      });
  }

 private:
  std::string replacement_;
  char32_t replacement_cp_;
  PrependScheme scheme_;
  bool split_;
};

class PredicateSplit : public PreTokenizer {
 public:
  PredicateSplit(std::function<bool(char32_t)> pred, SplitBehavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, behavior_, [&](const std::string& t) { return spans_from_predicate(t, pred_); });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

// Rust-regex `\w+|[^\w\s]+` (word runs and symbol runs; whitespace dropped), HF's Whitespace.
class WhitespacePre : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, SplitBehavior::Removed, [](const std::string& t) {
      std::vector<std::pair<size_t, size_t>> matches;
      int run = 0;  // 0 none, 1 word, 2 symbol
      for (size_t i = 0; i < t.size();) {
        size_t start = i;
        char32_t c = next_code_point(t, i);
        int kind = is_word_char(c) ? 1 : is_whitespace(c) ? 0 : 2;
        if (kind != 0 && kind == run) {
          matches.back().second = i;
        } else if (kind != 0) {
          matches.emplace_back(start, i);
        }
        run = kind;
      }
      auto spans = spans_from_matches(matches, t.size());
      invert(spans);
      return spans;
    });
  }
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : items_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

}  // namespace

int char_to_byte(char32_t c) { return c < 0x200 ? byte_table().to_byte[c] : -1; }

void split_piece(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior, std::vector<Piece>& out) {
  // (start, end, remove) after applying the behavior, as HF NormalizedString::split does.
  struct Cut {
    size_t start, end;
    bool remove;
  };
  std::vector<Cut> cuts;
  cuts.reserve(spans.size());
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const Span& s : spans) cuts.push_back({s.start, s.end, false});
      break;
    case SplitBehavior::Removed:
      for (const Span& s : spans) cuts.push_back({s.start, s.end, s.is_match});
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const Span& s : spans) {
        if (s.is_match == prev && !cuts.empty()) {
          cuts.back().end = s.end;
        } else {
          cuts.push_back({s.start, s.end, false});
        }
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const Span& s : spans) {
        if (s.is_match && !prev && !cuts.empty()) {
          cuts.back().end = s.end;
        } else {
          cuts.push_back({s.start, s.end, false});
        }
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !prev && !cuts.empty()) {
          cuts.back().start = it->start;
        } else {
          cuts.push_back({it->start, it->end, false});
        }
        prev = it->is_match;
      }
      std::reverse(cuts.begin(), cuts.end());
      break;
    }
  }
  for (const Cut& c : cuts) {
    if (c.remove || c.end == c.start) continue;
    out.push_back({piece.text.substr(c.start, c.end - c.start), piece.at_start && c.start == 0});
  }
}

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const json& j, const std::string& where) {
  std::string type = type_of(j, where);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(value_or(j, "add_prefix_space", true, where), value_or(j, "use_regex", true, where));
  if (type == "Split") {
    Regex regex = pattern_from_json(require_field(j, "pattern", where), where + ".pattern");
    return std::make_unique<SplitPre>(std::move(regex), behavior_from_json(j, where), value_or(j, "invert", false, where));
  }
  if (type == "Metaspace") {
    std::string replacement = value_or<std::string>(j, "replacement", "\u2581", where);
    WICK_CHECK(!replacement.empty(), where, ".replacement: expected one character, got an empty string");
    PrependScheme scheme = PrependScheme::Always;
    if (j.contains("prepend_scheme")) {
      std::string s = require_string(j, "prepend_scheme", where);
      if (s == "always") {
        scheme = PrependScheme::Always;
      } else if (s == "first") {
        scheme = PrependScheme::First;
      } else if (s == "never") {
        scheme = PrependScheme::Never;
      } else {
        fail(where, ".prepend_scheme: unknown value '", s, "'");
      }
    } else if (!value_or(j, "add_prefix_space", true, where)) {
      scheme = PrependScheme::Never;
    }
    return std::make_unique<Metaspace>(replacement, scheme, value_or(j, "split", true, where));
  }
  if (type == "Digits") {
    if (value_or(j, "individual_digits", false, where))
      return std::make_unique<PredicateSplit>(is_numeric, SplitBehavior::Isolated);
    return std::make_unique<PredicateSplit>(is_numeric, SplitBehavior::Contiguous);
  }
  if (type == "Punctuation") {
    SplitBehavior b = j.contains("behavior") ? behavior_from_json(j, where) : SplitBehavior::Isolated;
    return std::make_unique<PredicateSplit>(is_punctuation, b);
  }
  if (type == "WhitespaceSplit") return std::make_unique<PredicateSplit>(is_whitespace, SplitBehavior::Removed);
  if (type == "Whitespace") return std::make_unique<WhitespacePre>();
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> items;
    items.push_back(std::make_unique<PredicateSplit>(is_whitespace, SplitBehavior::Removed));
    items.push_back(std::make_unique<PredicateSplit>(is_punctuation, SplitBehavior::Isolated));
    return std::make_unique<Sequence>(std::move(items));
  }
  if (type == "Sequence") {
    const json& list = require_field(j, "pretokenizers", where);
    WICK_CHECK(list.is_array(), where, ".pretokenizers: expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (size_t i = 0; i < list.size(); ++i)
      items.push_back(from_json(list[i], str_cat(where, ".pretokenizers[", i, "]")));
    return std::make_unique<Sequence>(std::move(items));
  }
  fail(where, ": unknown pre-tokenizer type '", type, "' (supported: ByteLevel, Split, Metaspace, Digits, ",
       "Punctuation, Whitespace, WhitespaceSplit, BertPreTokenizer, Sequence)");
}

}  // namespace wick::tok
