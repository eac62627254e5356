// PCRE2 wrapper: JIT-compiled when possible, falling back to the interpreter on JIT stack limits.
#include "wick/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "wick/base/error.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// HF tokenizers compiles patterns with Oniguruma, whose \s is Unicode White_Space and whose \w is
// Letter|Mark|Nd|Pc. PCRE2 with UCP differs (\s adds U+180E, \w takes all of N and no marks), so
// those escapes are spelled out as explicit classes.
std::string to_pcre2_pattern(const std::string& p) {
  static const std::string kSpace = R"(\t\n\x0B\f\r\x{85}\p{Z})";
  static const std::string kWord = R"(\p{L}\p{M}\p{Nd}\p{Pc})";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      ++i;
      if (e == 's' || e == 'w') {
        const std::string& set = e == 's' ? kSpace : kWord;
        out += in_class ? set : "[" + set + "]";
      } else if ((e == 'S' || e == 'W') && !in_class) {
        out += "[^" + (e == 'S' ? kSpace : kWord) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ']' is a literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out.append(p, i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern), code_(std::make_shared<Code>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  std::string translated = to_pcre2_pattern(pattern);
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    fail("regex '", pattern, "' does not compile at offset ", offset, ": ", reinterpret_cast<const char*>(message));
  }
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex Regex::literal(std::string_view literal) {
  std::string pattern;
  for (char ch : literal) {
    auto b = static_cast<unsigned char>(ch);
    if (b < 0x80 && !std::isalnum(b)) pattern.push_back('\\');
    pattern.push_back(ch);
  }
  return Regex(pattern);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), &pcre2_match_data_free);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), start, 0, data.get(), nullptr)
                        : PCRE2_ERROR_JIT_STACKLIMIT;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      fail("regex '", pattern_, "' failed to match: ", reinterpret_cast<const char*>(message));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
    size_t s = ov[0], e = ov[1];
    matches.emplace_back(s, e);
    if (e == s) {
      if (e >= text.size()) break;
      start = e + utf8_sequence_length(static_cast<unsigned char>(text[e]));
    } else {
      start = e;
    }
  }
  return matches;
}

// A {"String": s} or {"Regex": r} pattern of tokenizer.json.
Regex pattern_from_json(const json& j, const std::string& where) {
  WICK_CHECK(j.is_object(), where, ": expected {\"String\": ...} or {\"Regex\": ...}");
  if (j.contains("String")) return Regex::literal(require_string(j, "String", where));
  if (j.contains("Regex")) return Regex(require_string(j, "Regex", where));
  fail(where, ": expected {\"String\": ...} or {\"Regex\": ...}, got ", j.dump());
}

}  // namespace wick::tok
