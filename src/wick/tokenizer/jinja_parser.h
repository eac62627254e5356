// Jinja parser: tokens to a statement tree, with jinja2's grammar and operator precedence.
// Syntax errors (unclosed blocks, unknown tags/filters/tests, stray tokens) name line and column.
#pragma once

#include <vector>

#include "wick/tokenizer/jinja_ast.h"
#include "wick/tokenizer/jinja_lexer.h"

namespace wick::tok::jinja {

Body parse(const SourceText& source, const std::vector<Token>& tokens);

}  // namespace wick::tok::jinja
