// UTF-8 text helpers with Python's str semantics: code-point indexing, Unicode whitespace
// (str.strip/split), splitlines, case mapping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wick/base/error.h"

namespace wick::chat::jinja {

// An error raised while evaluating; the interpreter adds the template position and turns it into
// a wick::Error.
class EvalError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void eval_fail(const Args&... args) {
  throw EvalError(str_cat(args...));
}

std::vector<char32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(const std::vector<char32_t>& cps);
// Code points of `s` (Python's len()).
int64_t utf8_length(std::string_view s);

// Python's str.isspace() for one code point.
bool is_unicode_space(char32_t cp);
// Byte length of the whitespace (Python `\s`) that starts / ends `s`.
size_t leading_space_bytes(std::string_view s);
size_t trailing_space_bytes(std::string_view s);

std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars);
std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s);
// str.upper() / str.lower() for Latin, Greek, Cyrillic, Armenian and fullwidth letters (others
// are left as they are), with ß -> SS and Greek final sigma.
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
// str.title(): upper-case letters that follow an uncased character, lower-case the rest.
std::string py_title(std::string_view s);
// str.capitalize(): the first character upper-cased, the rest lower-cased.
std::string py_capitalize(std::string_view s);
// jinja2's `title` filter: each word (split at whitespace, '-', '(', '{', '[', '<') capitalised.
std::string jinja_title(std::string_view s);
// markupsafe.escape: & < > " ' as HTML entities.
std::string html_escape(std::string_view s);
std::string py_replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);

}  // namespace wick::chat::jinja
