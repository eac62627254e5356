// Added-token matching with HF AddedVocabulary semantics (leftmost-longest, single_word, lstrip, rstrip).
#include "wick/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "wick/tokenizer/normalizer.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok {

void AddedVocabulary::add(AddedToken token) {
  WICK_CHECK(!token.content.empty(), "added token ", token.id, ": empty content");
  id_end_ = std::max(id_end_, token.id + 1);
  by_content_[token.content] = token.id;
  auto it = by_id_.find(token.id);
  if (it != by_id_.end()) {
    tokens_[it->second] = std::move(token);
  } else {
    by_id_[token.id] = tokens_.size();
    tokens_.push_back(std::move(token));
  }
}

void AddedVocabulary::build(const Normalizer* normalizer) {
  for (Matcher* m : {&raw_, &normalized_}) {
    *m = Matcher();
    m->contents.resize(tokens_.size());
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    Matcher& m = t.normalized ? normalized_ : raw_;
    std::string content = t.content;
    if (t.normalized && normalizer) normalizer->normalize(content);
    if (content.empty()) continue;
    m.contents[i] = content;
    m.by_first_byte[static_cast<unsigned char>(content[0])].push_back(i);
    m.empty = false;
  }
  for (Matcher* m : {&raw_, &normalized_})
    for (auto& list : m->by_first_byte)
      std::stable_sort(list.begin(), list.end(),
                       [&](size_t a, size_t b) { return m->contents[a].size() > m->contents[b].size(); });
}

namespace {

char32_t last_char(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return next_code_point(s, i);
}

char32_t first_char(std::string_view s) {
  size_t i = 0;
  return next_code_point(s, i);
}

}  // namespace

std::vector<TextSpan> AddedVocabulary::split(std::string_view text, bool normalized) const {
  const Matcher& m = normalized ? normalized_ : raw_;
  if (m.empty || text.empty()) return {{0, text.size(), -1}};
  std::vector<TextSpan> spans;
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // The leftmost position where some token matches, and the longest token there.
    size_t found = SIZE_MAX, match_len = 0;
    for (size_t i = pos; i < text.size() && found == SIZE_MAX; ++i) {
      for (size_t k : m.by_first_byte[static_cast<unsigned char>(text[i])]) {
        const std::string& c = m.contents[k];
        if (text.compare(i, c.size(), c) == 0) {
          found = k, match_len = c.size();
          pos = i;
          break;
        }
      }
    }
    if (found == SIZE_MAX) break;
    const AddedToken& tok = tokens_[found];
    size_t start = pos, stop = pos + match_len;
    pos = stop;  // the matcher continues after the raw match
    if (tok.single_word) {
      bool start_space = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      bool stop_space = stop == text.size() || !is_word_char(first_char(text.substr(stop)));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t p = s - 1;
        while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        size_t q = p;
        if (!is_whitespace(next_code_point(text, q))) break;
        s = p;
      }
      start = std::max(s, start_offset);
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t q = stop;
        if (!is_whitespace(next_code_point(text, q))) break;
        stop = q;
      }
    }
    if (start_offset < start) spans.push_back({start_offset, start, -1});
    spans.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset != text.size()) spans.push_back({start_offset, text.size(), -1});
  return spans;
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

}  // namespace wick::tok
