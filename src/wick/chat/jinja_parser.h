// Jinja parser: tokens to a statement tree, with jinja2's grammar and operator precedence.
// Syntax errors (unclosed blocks, unknown tags/filters/tests, stray tokens) name line and column.
#pragma once

#include <vector>

#include "wick/chat/jinja_ast.h"
#include "wick/chat/jinja_lexer.h"

namespace wick::chat::jinja {

Body parse(const SourceText& source, const std::vector<Token>& tokens);

}  // namespace wick::chat::jinja
