// UTF-8 text helpers with Python's str semantics.
#include "wick/chat/jinja_text.h"

#include <cctype>

namespace wick::chat::jinja {

std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) {  // invalid byte: keep it as U+FFFD like a lenient decoder
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_encode(const std::vector<char32_t>& cps) {
  std::string out;
  for (char32_t cp : cps) utf8_append(out, cp);
  return out;
}

int64_t utf8_length(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_unicode_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {

// Decodes the code point that ends at `end` (exclusive); returns its first byte's index.
size_t prev_code_point(std::string_view s, size_t end, char32_t& cp) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  auto cps = utf8_decode(s.substr(start, end - start));
  cp = cps.empty() ? 0 : cps[0];
  return start;
}

size_t next_code_point(std::string_view s, size_t start, char32_t& cp) {
  size_t end = start + 1;
  while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
  auto cps = utf8_decode(s.substr(start, end - start));
  cp = cps.empty() ? 0 : cps[0];
  return end;
}

}  // namespace

size_t leading_space_bytes(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    size_t next = next_code_point(s, i, cp);
    if (!is_unicode_space(cp)) break;
    i = next;
  }
  return i;
}

size_t trailing_space_bytes(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    char32_t cp;
    size_t start = prev_code_point(s, end, cp);
    if (!is_unicode_space(cp)) break;
    end = start;
  }
  return s.size() - end;
}

std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars) {
  if (chars == nullptr) {
    if (left) s.remove_prefix(leading_space_bytes(s));
    if (right) s.remove_suffix(trailing_space_bytes(s));
    return std::string(s);
  }
  auto set = utf8_decode(*chars);
  auto cps = utf8_decode(s);
  auto in_set = [&](char32_t c) {
    for (char32_t x : set)
      if (x == c) return true;
    return false;
  };
  size_t begin = 0, end = cps.size();
  if (left)
    while (begin < end && in_set(cps[begin])) ++begin;
  if (right)
    while (end > begin && in_set(cps[end - 1])) --end;
  return utf8_encode(std::vector<char32_t>(cps.begin() + begin, cps.begin() + end));
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep == nullptr) {  // runs of whitespace, no empty parts
    size_t i = leading_space_bytes(s);
    while (i < s.size()) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.emplace_back(s.substr(i));  // Python keeps the remainder's trailing whitespace
        return parts;
      }
      size_t j = i;
      while (j < s.size()) {
        char32_t cp;
        size_t next = next_code_point(s, j, cp);
        if (is_unicode_space(cp)) break;
        j = next;
      }
      parts.emplace_back(s.substr(i, j - i));
      i = j + leading_space_bytes(s.substr(j));
    }
    return parts;
  }
  if (sep->empty()) eval_fail("empty separator");
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    size_t at = s.find(*sep, start);
    if (at == std::string_view::npos) break;
    parts.emplace_back(s.substr(start, at - start));
    start = at + sep->size();
  }
  parts.emplace_back(s.substr(start));
  return parts;
}

std::vector<std::string> py_splitlines(std::string_view s) {
  std::vector<std::string> lines;
  auto cps = utf8_decode(s);
  std::vector<char32_t> line;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
               c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      line.push_back(c);
      continue;
    }
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    lines.push_back(utf8_encode(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(utf8_encode(line));
  return lines;
}

namespace {

// Case pairs of the scripts chat text mostly uses (Latin, Greek, Cyrillic, Armenian, fullwidth),
// as Python's str.upper/lower map them; a few characters expand or are special-cased below.
struct CaseRange {
  char32_t first, last;  // the upper-case code points of the range
  int delta;             // lower = upper + delta; 0 means alternating pairs (upper, upper + 1)
};

constexpr CaseRange kCaseRanges[] = {
    {0x41, 0x5A, 32},       {0xC0, 0xD6, 32},       {0xD8, 0xDE, 32},       {0x100, 0x12E, 0},
    {0x132, 0x136, 0},      {0x139, 0x147, 0},      {0x14A, 0x176, 0},      {0x179, 0x17D, 0},
    {0x370, 0x372, 0},      {0x376, 0x376, 0},      {0x3D8, 0x3EE, 0},      {0x386, 0x386, 38},     {0x388, 0x38A, 37},     {0x38C, 0x38C, 64},     {0x38E, 0x38F, 63},
    {0x391, 0x3A1, 32},     {0x3A3, 0x3AB, 32},     {0x400, 0x40F, 80},     {0x410, 0x42F, 32},
    {0x460, 0x480, 0},      {0x48A, 0x4BE, 0},      {0x4C1, 0x4CD, 0},      {0x4D0, 0x52E, 0},
    {0x531, 0x556, 48},     {0x1E00, 0x1E94, 0},    {0x1EA0, 0x1EFE, 0},    {0xFF21, 0xFF3A, 32},
};

bool in_pair_range(const CaseRange& r, char32_t upper) {
  return upper >= r.first && upper <= r.last && (r.delta != 0 || (upper - r.first) % 2 == 0);
}

char32_t lower_cp(char32_t c) {
  if (c == 0x178) return 0xFF;
  for (const auto& r : kCaseRanges)
    if (in_pair_range(r, c)) return c + static_cast<char32_t>(r.delta == 0 ? 1 : r.delta);
  return c;
}

char32_t upper_cp(char32_t c) {
  switch (c) {
    case 0xFF: return 0x178;
    case 0xB5: return 0x39C;
    case 0x131: return 'I';
    case 0x17F: return 'S';
    case 0x3C2: return 0x3A3;
    default: break;
  }
  for (const auto& r : kCaseRanges) {
    char32_t upper = c - static_cast<char32_t>(r.delta == 0 ? 1 : r.delta);
    if (c >= static_cast<char32_t>(r.delta == 0 ? 1 : r.delta) && in_pair_range(r, upper)) return upper;
  }
  return c;
}

bool is_cased(char32_t c) { return lower_cp(c) != c || upper_cp(c) != c || c == 0xDF || c == 0x138 || c == 0x149; }

void append_upper(std::string& out, char32_t c) {
  if (c == 0xDF) {
    out += "SS";
  } else if (c == 0x149) {  // ŉ -> ʼN
    utf8_append(out, 0x2BC);
    out += 'N';
  } else {
    utf8_append(out, upper_cp(c));
  }
}

// Lower-cases cps[i]; Σ becomes final ς at the end of a word, as Python does.
void append_lower(std::string& out, const std::vector<char32_t>& cps, size_t i) {
  char32_t c = cps[i];
  if (c == 0x3A3) {
    bool after_letter = i > 0 && is_cased(cps[i - 1]);
    bool before_letter = i + 1 < cps.size() && is_cased(cps[i + 1]);
    utf8_append(out, after_letter && !before_letter ? 0x3C2 : 0x3C3);
  } else if (c == 0x130) {  // İ -> i + combining dot above
    out += 'i';
    utf8_append(out, 0x307);
  } else {
    utf8_append(out, lower_cp(c));
  }
}

}  // namespace

std::string py_upper(std::string_view s) {
  std::string out;
  for (char32_t c : utf8_decode(s)) append_upper(out, c);
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out;
  auto cps = utf8_decode(s);
  for (size_t i = 0; i < cps.size(); ++i) append_lower(out, cps, i);
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  auto cps = utf8_decode(s);
  bool prev_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (prev_cased) append_lower(out, cps, i);
    else if (cps[i] == 0xDF) out += "Ss";  // title case of ß
    else utf8_append(out, upper_cp(cps[i]));
    prev_cased = is_cased(cps[i]);
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  auto cps = utf8_decode(s);
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i > 0) append_lower(out, cps, i);
    else if (cps[i] == 0xDF) out += "Ss";
    else utf8_append(out, upper_cp(cps[i]));
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  std::string out;
  auto cps = utf8_decode(s);
  bool word_start = true;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    bool separator = is_unicode_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) utf8_append(out, c);
    else if (word_start) append_upper(out, c);
    else append_lower(out, cps, i);
    word_start = separator;
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string py_replace(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character
    auto cps = utf8_decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t at = s.find(from, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(to);
    start = at + from.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

}  // namespace wick::chat::jinja
