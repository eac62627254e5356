// Jinja lexer with jinja2's whitespace rules under trim_blocks=True, lstrip_blocks=True.
#include "wick/chat/jinja_lexer.h"

#include <algorithm>
#include <cctype>

#include "wick/base/error.h"
#include "wick/chat/jinja_text.h"

namespace wick::chat::jinja {

SourceText::SourceText(std::string_view raw) {
  // jinja2 splits on \r\n, \r and \n, rejoins with \n and drops one trailing newline
  // (keep_trailing_newline=False).
  text_.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      text_ += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      text_ += raw[i];
    }
  }
  if (!text_.empty() && text_.back() == '\n') text_.pop_back();
  line_starts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i)
    if (text_[i] == '\n') line_starts_.push_back(i + 1);
}

std::string SourceText::where(size_t offset) const {
  offset = std::min(offset, text_.size());
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  size_t line = static_cast<size_t>(it - line_starts_.begin());
  size_t start = line_starts_[line - 1];
  int64_t column = utf8_length(std::string_view(text_).substr(start, offset - start)) + 1;
  return str_cat("line ", line, ", column ", column);
}

void SourceText::fail(size_t offset, const std::string& message) const {
  wick::fail("chat template, ", where(offset), ": ", message);
}

namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's unicode-escape decoding of a string literal's body, as jinja2 applies it.
std::string decode_string_literal(std::string_view body, const SourceText& src, size_t offset) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out += body[i];
      continue;
    }
    char c = body[++i];
    auto hex = [&](size_t digits) {
      char32_t cp = 0;
      for (size_t k = 1; k <= digits; ++k) {
        if (i + k >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[i + k])))
          src.fail(offset, str_cat("truncated \\", c, " escape in string literal"));
        char h = static_cast<char>(std::tolower(static_cast<unsigned char>(body[i + k])));
        cp = cp * 16 + static_cast<char32_t>(h <= '9' ? h - '0' : h - 'a' + 10);
      }
      i += digits;
      utf8_append(out, cp);
    };
    switch (c) {
      case '\n': break;  // line continuation
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'a': out += '\a'; break;
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      default:
        if (c >= '0' && c <= '7') {
          char32_t cp = static_cast<char32_t>(c - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            cp = cp * 8 + static_cast<char32_t>(body[++i] - '0');
          utf8_append(out, cp);
        } else {  // unknown escapes stay as written
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const SourceText& src) : src_(src), s_(src.text()) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) lex_text();
    push(TokenType::Eof, "", s_.size());
    return std::move(tokens_);
  }

 private:
  void push(TokenType type, std::string value, size_t offset) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.offset = offset;
    tokens_.push_back(std::move(t));
  }

  // Text up to the next tag, with the tag's whitespace control applied to its end.
  void lex_text() {
    size_t tag = pos_;
    while (true) {
      tag = s_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= s_.size()) {
        push(TokenType::Data, s_.substr(pos_), pos_);
        pos_ = s_.size();
        return;
      }
      char k = s_[tag + 1];
      if (k == '{' || k == '%' || k == '#') break;
      ++tag;
    }
    char kind = s_[tag + 1];
    char sign = tag + 2 < s_.size() && (s_[tag + 2] == '-' || s_[tag + 2] == '+') ? s_[tag + 2] : 0;
    std::string text = s_.substr(pos_, tag - pos_);
    if (sign == '-') {
      text.resize(text.size() - trailing_space_bytes(text));
    } else if (sign != '+' && kind != '{') {
      lstrip(text);
    }
    if (!text.empty()) push(TokenType::Data, std::move(text), pos_);
    size_t open = tag;
    pos_ = tag + 2 + (sign ? 1 : 0);
    if (kind == '#') {
      lex_comment(open);
    } else if (kind == '%' && try_raw(open)) {
      // raw block handled
    } else {
      lex_tag(kind == '%', open);
    }
  }

  // lstrip_blocks: drop spaces and tabs between the start of the line and a block or comment tag.
  void lstrip(std::string& text) const {
    size_t line_start = text.rfind('\n');
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    if (line_start == 0 && !line_starting_) return;
    std::string_view tail = std::string_view(text).substr(line_start);
    if (!tail.empty() && leading_space_bytes(tail) == tail.size()) text.resize(line_start);
  }

  // After a block/comment end: `-` strips all following whitespace, `+` nothing, else one newline.
  void after_block_end(char sign) {
    if (sign == '-') {
      pos_ += leading_space_bytes(std::string_view(s_).substr(pos_));
    } else if (sign != '+' && pos_ < s_.size() && s_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > 0 && s_[pos_ - 1] == '\n';
  }

  void lex_comment(size_t open) {
    if (pos_ >= s_.size()) return;  // like jinja2, a bare "{#" ending the template is dropped
    size_t end = s_.find("#}", pos_);
    if (end == std::string::npos) src_.fail(open, "missing end of comment tag '#}'");
    char sign = end > pos_ && (s_[end - 1] == '-' || s_[end - 1] == '+') ? s_[end - 1] : 0;
    pos_ = end + 2;
    after_block_end(sign);
  }

  // `{% raw %}...{% endraw %}`: the body is text, untouched.
  bool try_raw(size_t open) {
    size_t p = pos_ + leading_space_bytes(std::string_view(s_).substr(pos_));
    if (s_.compare(p, 3, "raw") != 0 || (p + 3 < s_.size() && is_name_char(s_[p + 3]))) return false;
    p += 3;
    p += leading_space_bytes(std::string_view(s_).substr(p));
    bool strip = s_.compare(p, 3, "-%}") == 0;
    if (!strip && s_.compare(p, 2, "%}") != 0) return false;
    pos_ = p + (strip ? 3 : 2);
    if (strip) pos_ += leading_space_bytes(std::string_view(s_).substr(pos_));
    for (size_t search = pos_;;) {
      size_t tag = s_.find("{%", search);
      if (tag == std::string::npos) src_.fail(open, "missing end of raw directive");
      size_t q = tag + 2;
      char sign = q < s_.size() && (s_[q] == '-' || s_[q] == '+') ? s_[q] : 0;
      if (sign) ++q;
      q += leading_space_bytes(std::string_view(s_).substr(q));
      if (s_.compare(q, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      q += 6;
      q += leading_space_bytes(std::string_view(s_).substr(q));
      char end_sign = s_[q] == '-' || s_[q] == '+' ? s_[q] : 0;
      if (s_.compare(q + (end_sign ? 1 : 0), 2, "%}") != 0) src_.fail(tag, "malformed endraw tag");
      std::string text = s_.substr(pos_, tag - pos_);
      if (sign == '-') text.resize(text.size() - trailing_space_bytes(text));
      else if (sign != '+') lstrip(text);
      if (!text.empty()) push(TokenType::Data, std::move(text), pos_);
      pos_ = q + (end_sign ? 1 : 0) + 2;
      after_block_end(end_sign);
      return true;
    }
  }

  void lex_tag(bool block, size_t open) {
    push(block ? TokenType::BlockBegin : TokenType::VariableBegin, "", open);
    std::vector<char> balance;
    while (true) {
      pos_ += leading_space_bytes(std::string_view(s_).substr(pos_));
      if (pos_ >= s_.size()) src_.fail(open, block ? "unclosed '{%' tag (missing '%}')" : "unclosed '{{' (missing '}}')");
      if (balance.empty() && lex_tag_end(block)) return;
      size_t start = pos_;
      char c = s_[pos_];
      if (is_digit(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
        push(TokenType::Name, s_.substr(start, pos_ - start), start);
      } else if (c == '\'' || c == '"') {
        size_t i = pos_ + 1;
        while (i < s_.size() && s_[i] != c) i += s_[i] == '\\' ? 2 : 1;
        if (i >= s_.size()) src_.fail(start, "unterminated string literal");
        push(TokenType::String, decode_string_literal(std::string_view(s_).substr(pos_ + 1, i - pos_ - 1), src_, start),
             start);
        pos_ = i + 1;
      } else {
        lex_operator(balance);
      }
    }
  }

  bool lex_tag_end(bool block) {
    const char* close = block ? "%}" : "}}";
    char sign = 0;
    if ((s_[pos_] == '-' || (block && s_[pos_] == '+')) && s_.compare(pos_ + 1, 2, close) == 0) {
      sign = s_[pos_];
    } else if (s_.compare(pos_, 2, close) != 0) {
      return false;
    }
    push(block ? TokenType::BlockEnd : TokenType::VariableEnd, "", pos_);
    pos_ += 2 + (sign ? 1 : 0);
    if (block) {
      after_block_end(sign);
    } else {
      if (sign == '-') pos_ += leading_space_bytes(std::string_view(s_).substr(pos_));
      line_starting_ = pos_ > 0 && s_[pos_ - 1] == '\n';
    }
    return true;
  }

  void lex_number() {
    size_t start = pos_;
    auto digits = [&] {
      while (pos_ < s_.size() && (is_digit(s_[pos_]) || (s_[pos_] == '_' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1]))))
        ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
      ++pos_;
      digits();
      is_float = true;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
      if (p < s_.size() && is_digit(s_[p])) {
        pos_ = p;
        digits();
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = start; i < pos_; ++i)
      if (s_[i] != '_') text += s_[i];
    Token t;
    t.offset = start;
    t.value = text;
    if (is_float) {
      t.type = TokenType::Float;
      t.float_value = std::stod(text);
    } else {
      t.type = TokenType::Integer;
      try {
        t.int_value = std::stoll(text);
      } catch (const std::exception&) {
        src_.fail(start, "integer literal out of range: " + text);
      }
    }
    tokens_.push_back(std::move(t));
  }

  void lex_operator(std::vector<char>& balance) {
    static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two) {
      if (s_.compare(pos_, 2, op) == 0) {
        push(TokenType::Operator, op, pos_);
        pos_ += 2;
        return;
      }
    }
    char c = s_[pos_];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
      src_.fail(pos_, str_cat("unexpected character '", c, "'"));
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) src_.fail(pos_, str_cat("unexpected '", c, "'"));
      if (balance.back() != c) src_.fail(pos_, str_cat("unexpected '", c, "', expected '", balance.back(), "'"));
      balance.pop_back();
    }
    push(TokenType::Operator, std::string(1, c), pos_);
    ++pos_;
  }

  const SourceText& src_;
  const std::string& s_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const SourceText& source) { return Lexer(source).run(); }

}  // namespace wick::chat::jinja
