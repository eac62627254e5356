// Jinja lexer: splits a template into text and tag tokens the way jinja2's lexer does with
// transformers' settings (trim_blocks, lstrip_blocks, `-`/`+` whitespace control, no kept trailing
// newline), and maps byte offsets back to line/column for error messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wick::chat::jinja {

// The template text with newlines normalised to "\n" (as jinja2 does) and a line index.
class SourceText {
 public:
  explicit SourceText(std::string_view raw);
  const std::string& text() const { return text_; }
  // "line L, column C" of a byte offset (1-based; columns count characters).
  std::string where(size_t offset) const;
  [[noreturn]] void fail(size_t offset, const std::string& message) const;

 private:
  std::string text_;
  std::vector<size_t> line_starts_;
};

enum class TokenType { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof };

struct Token {
  TokenType type = TokenType::Eof;
  std::string value;  // text, name, decoded string literal or operator
  size_t offset = 0;  // byte offset in SourceText::text()
  int64_t int_value = 0;
  double float_value = 0;
};

std::vector<Token> tokenize(const SourceText& source);

}  // namespace wick::chat::jinja
