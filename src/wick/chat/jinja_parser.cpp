// Jinja parser following jinja2's parser.py: statements (for/if/set/macro/call/filter/
// break/continue/generation) and expressions from conditional down to primaries.
#include "wick/chat/jinja_parser.h"

#include <set>

#include "wick/base/error.h"

namespace wick::chat::jinja {

namespace {

template <typename T>
std::unique_ptr<T> node(size_t offset) {
  auto n = std::make_unique<T>();
  n->offset = offset;
  return n;
}

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Eof: return "end of template";
    case TokenType::Data: return "template text";
    case TokenType::BlockBegin: return "'{%'";
    case TokenType::BlockEnd: return "'%}'";
    case TokenType::VariableBegin: return "'{{'";
    case TokenType::VariableEnd: return "'}}'";
    case TokenType::String: return "string literal";
    default: return "'" + t.value + "'";
  }
}

class Parser {
 public:
  Parser(const SourceText& src, const std::vector<Token>& tokens) : src_(src), t_(tokens) {}

  Body parse_template() {
    Body body = subparse({});
    if (cur().type != TokenType::Eof) fail("unexpected '" + cur().value + "'");
    return body;
  }

 private:
  // ----- token cursor -----
  const Token& cur() const { return t_[i_]; }
  const Token& peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  const Token& advance() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op) const { return cur().type == TokenType::Operator && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::Name && cur().value == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  [[noreturn]] void fail(const std::string& msg) const { src_.fail(cur().offset, msg); }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(str_cat("expected '", op, "', got ", describe(cur())));
  }
  const Token& expect(TokenType type, const char* what) {
    if (cur().type != type) fail(str_cat("expected ", what, ", got ", describe(cur())));
    return advance();
  }
  std::string expect_name() { return expect(TokenType::Name, "a name").value; }

  // Bounds recursion on hostile input like "((((((..." or "------...".
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > 256) p.fail("expression nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // ----- statements -----
  Body subparse(const std::set<std::string>& end_tags) {
    Body body;
    while (true) {
      const Token& tok = cur();
      if (tok.type == TokenType::Eof) return body;
      if (tok.type == TokenType::Data) {
        auto text = node<TextStmt>(tok.offset);
        text->text = tok.value;
        body.push_back(std::move(text));
        advance();
      } else if (tok.type == TokenType::VariableBegin) {
        advance();
        auto out = node<OutputStmt>(tok.offset);
        out->expr = parse_tuple(true, {});
        expect(TokenType::VariableEnd, "'}}'");
        body.push_back(std::move(out));
      } else if (tok.type == TokenType::BlockBegin) {
        advance();
        if (cur().type == TokenType::Name && end_tags.count(cur().value)) return body;
        body.push_back(parse_statement(tok.offset));
      } else {
        fail("unexpected " + describe(tok));
      }
    }
  }

  // Parses a body up to one of `end_tags`; leaves the cursor on the end tag's name.
  Body parse_body(const std::set<std::string>& end_tags, const std::string& opener, size_t opened_at) {
    skip_op(":");
    expect(TokenType::BlockEnd, "'%}'");
    Body body = subparse(end_tags);
    if (cur().type == TokenType::Eof) {
      std::string names;
      for (const auto& n : end_tags) names += (names.empty() ? "'" : " or '") + n + "'";
      src_.fail(opened_at, str_cat("unclosed '", opener, "' block: reached the end of the template looking for ",
                                   names));
    }
    return body;
  }

  void end_tag(const char* name) {
    if (!skip_name(name)) fail(str_cat("expected '", name, "'"));
    expect(TokenType::BlockEnd, "'%}'");
  }

  StmtPtr parse_statement(size_t offset) {
    DepthGuard guard(*this);
    if (cur().type != TokenType::Name) fail("tag name expected");
    const std::string tag = cur().value;
    if (tag == "for") return parse_for(offset);
    if (tag == "if") return parse_if(offset);
    if (tag == "set") return parse_set(offset);
    if (tag == "macro") return parse_macro(offset);
    if (tag == "call") return parse_call_block(offset);
    if (tag == "filter") return parse_filter_block(offset);
    if (tag == "generation") {
      advance();
      auto block = node<BlockStmt>(offset);
      block->body = parse_body({"endgeneration"}, "generation", offset);
      end_tag("endgeneration");
      return block;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
      advance();
      auto stmt = node<LoopControlStmt>(offset);
      stmt->is_break = tag == "break";
      expect(TokenType::BlockEnd, "'%}'");
      return stmt;
    }
    if (tag.rfind("end", 0) == 0 || tag == "else" || tag == "elif")
      fail("unexpected '" + tag + "' tag (no open block it could close)");
    fail("unknown tag '" + tag + "'");
  }

  StmtPtr parse_for(size_t offset) {
    advance();
    auto stmt = node<ForStmt>(offset);
    do {
      stmt->targets.push_back(expect_name());
    } while (skip_op(","));
    if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
    stmt->iterable = parse_tuple(false, {"recursive"});
    if (skip_name("if")) stmt->condition = parse_expression(true);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    ++loop_depth_;
    stmt->body = parse_body({"endfor", "else"}, "for", offset);
    --loop_depth_;
    if (skip_name("else")) stmt->otherwise = parse_body({"endfor"}, "for", offset);
    end_tag("endfor");
    return stmt;
  }

  StmtPtr parse_if(size_t offset) {
    advance();
    auto stmt = node<IfStmt>(offset);
    while (true) {
      ExprPtr test = parse_tuple(false, {});
      Body body = parse_body({"elif", "else", "endif"}, "if", offset);
      stmt->branches.emplace_back(std::move(test), std::move(body));
      if (skip_name("elif")) continue;
      if (skip_name("else")) stmt->otherwise = parse_body({"endif"}, "if", offset);
      break;
    }
    end_tag("endif");
    return stmt;
  }

  StmtPtr parse_set(size_t offset) {
    advance();
    auto stmt = node<SetStmt>(offset);
    stmt->targets.push_back(expect_name());
    if (skip_op(".")) {
      stmt->namespace_attr = expect_name();
    } else {
      while (skip_op(",")) stmt->targets.push_back(expect_name());
    }
    if (skip_op("=")) {
      stmt->value = parse_tuple(true, {});
      expect(TokenType::BlockEnd, "'%}'");
      return stmt;
    }
    if (skip_op("|")) stmt->filter = parse_filter(nullptr);
    stmt->body = parse_body({"endset"}, "set", offset);
    end_tag("endset");
    return stmt;
  }

  void parse_signature(MacroStmt& macro) {
    expect_op("(");
    while (!is_op(")")) {
      if (!macro.params.empty()) expect_op(",");
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) {
        p.default_value = parse_expression(true);
      } else if (!macro.params.empty() && macro.params.back().default_value) {
        fail("non-default argument follows default argument");
      }
      macro.params.push_back(std::move(p));
    }
    expect_op(")");
  }

  StmtPtr parse_macro(size_t offset) {
    advance();
    auto stmt = node<MacroStmt>(offset);
    stmt->name = expect_name();
    parse_signature(*stmt);
    int saved = loop_depth_;
    loop_depth_ = 0;
    stmt->body = parse_body({"endmacro"}, "macro", offset);
    loop_depth_ = saved;
    end_tag("endmacro");
    return stmt;
  }

  StmtPtr parse_call_block(size_t offset) {
    advance();
    auto stmt = node<CallBlockStmt>(offset);
    stmt->caller.name = "caller";
    stmt->caller.offset = offset;
    if (is_op("(")) parse_signature(stmt->caller);
    stmt->call = parse_expression(true);
    if (dynamic_cast<CallExpr*>(stmt->call.get()) == nullptr) src_.fail(stmt->call->offset, "expected a call");
    stmt->caller.body = parse_body({"endcall"}, "call", offset);
    end_tag("endcall");
    return stmt;
  }

  StmtPtr parse_filter_block(size_t offset) {
    advance();
    auto stmt = node<FilterBlockStmt>(offset);
    stmt->filter = parse_filter(nullptr);
    if (is_op("|")) fail("chained filters in a filter block are not supported");
    stmt->body = parse_body({"endfilter"}, "filter", offset);
    end_tag("endfilter");
    return stmt;
  }

  // ----- expressions -----
  bool is_tuple_end(const std::set<std::string>& extra_end) const {
    const Token& t = cur();
    if (t.type == TokenType::VariableEnd || t.type == TokenType::BlockEnd || t.type == TokenType::Eof) return true;
    if (t.type == TokenType::Operator && t.value == ")") return true;
    return t.type == TokenType::Name && extra_end.count(t.value) > 0;
  }

  ExprPtr parse_tuple(bool with_condexpr, const std::set<std::string>& extra_end, bool explicit_parens = false) {
    size_t offset = cur().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression, got " + describe(cur()));
    }
    auto tuple = node<ListExpr>(offset);
    tuple->items = std::move(items);
    tuple->tuple = true;
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    size_t offset = cur().offset;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto cond = node<CondExpr>(offset);
      cond->then = std::move(expr);
      cond->test = parse_or();
      if (skip_name("else")) cond->otherwise = parse_condexpr();
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, size_t offset) {
    auto b = node<BinaryExpr>(offset);
    b->op = op;
    b->left = std::move(left);
    b->right = std::move(right);
    return b;
  }

  ExprPtr parse_or() {
    size_t offset = cur().offset;
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary("or", std::move(left), parse_and(), offset);
    return left;
  }

  ExprPtr parse_and() {
    size_t offset = cur().offset;
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary("and", std::move(left), parse_not(), offset);
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto n = node<UnaryExpr>(advance().offset);
      n->op = "not";
      n->operand = parse_not();
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    size_t offset = cur().offset;
    ExprPtr first = parse_math1();
    std::vector<std::pair<std::string, ExprPtr>> rest;
    while (true) {
      std::string op;
      if (cur().type == TokenType::Operator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == ">" ||
           cur().value == "<=" || cur().value == ">=")) {
        op = advance().value;
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && peek().type == TokenType::Name && peek().value == "in") {
        advance();
        advance();
        op = "not in";
      } else {
        break;
      }
      rest.emplace_back(op, parse_math1());
    }
    if (rest.empty()) return first;
    auto cmp = node<CompareExpr>(offset);
    cmp->first = std::move(first);
    cmp->rest = std::move(rest);
    return cmp;
  }

  ExprPtr parse_math1() {
    size_t offset = cur().offset;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = advance().value;
      left = binary(op, std::move(left), parse_concat(), offset);
    }
    return left;
  }

  ExprPtr parse_concat() {
    size_t offset = cur().offset;
    ExprPtr left = parse_math2();
    while (skip_op("~")) left = binary("~", std::move(left), parse_math2(), offset);
    return left;
  }

  ExprPtr parse_math2() {
    size_t offset = cur().offset;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = advance().value;
      left = binary(op, std::move(left), parse_pow(), offset);
    }
    return left;
  }

  ExprPtr parse_pow() {
    size_t offset = cur().offset;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary("**", std::move(left), parse_unary(true), offset);
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    size_t offset = cur().offset;
    ExprPtr expr;
    if (is_op("-") || is_op("+")) {
      auto u = node<UnaryExpr>(offset);
      u->op = advance().value;
      u->operand = parse_unary(false);
      expr = std::move(u);
    } else {
      expr = parse_primary();
    }
    expr = parse_postfix(std::move(expr));
    if (with_filter) expr = parse_filter_expr(std::move(expr));
    return expr;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    size_t offset = tok.offset;
    if (tok.type == TokenType::Name) {
      advance();
      auto lit = node<LiteralExpr>(offset);
      if (tok.value == "true" || tok.value == "True") {
        lit->value = Value::boolean(true);
      } else if (tok.value == "false" || tok.value == "False") {
        lit->value = Value::boolean(false);
      } else if (tok.value == "none" || tok.value == "None") {
        lit->value = Value::none();
      } else {
        auto name = node<NameExpr>(offset);
        name->name = tok.value;
        return name;
      }
      return lit;
    }
    if (tok.type == TokenType::String) {
      std::string s;
      while (cur().type == TokenType::String) s += advance().value;  // adjacent literals concatenate
      auto lit = node<LiteralExpr>(offset);
      lit->value = Value::string(std::move(s));
      return lit;
    }
    if (tok.type == TokenType::Integer || tok.type == TokenType::Float) {
      advance();
      auto lit = node<LiteralExpr>(offset);
      lit->value = tok.type == TokenType::Integer ? Value::integer(tok.int_value) : Value::number(tok.float_value);
      return lit;
    }
    if (skip_op("(")) {
      ExprPtr inner = parse_tuple(true, {}, true);
      expect_op(")");
      return inner;
    }
    if (skip_op("[")) {
      auto list = node<ListExpr>(offset);
      while (!is_op("]")) {
        if (!list->items.empty()) expect_op(",");
        if (is_op("]")) break;
        list->items.push_back(parse_expression(true));
      }
      expect_op("]");
      return list;
    }
    if (skip_op("{")) {
      auto dict = node<DictExpr>(offset);
      while (!is_op("}")) {
        if (!dict->items.empty()) expect_op(",");
        if (is_op("}")) break;
        ExprPtr key = parse_expression(true);
        expect_op(":");
        dict->items.emplace_back(std::move(key), parse_expression(true));
      }
      expect_op("}");
      return dict;
    }
    fail("unexpected " + describe(tok));
  }

  ExprPtr parse_postfix(ExprPtr expr) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        expr = parse_subscript(std::move(expr));
      } else if (is_op("(")) {
        expr = parse_call(std::move(expr));
      } else {
        return expr;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr expr) {
    while (true) {
      if (is_op("|")) {
        advance();
        expr = parse_filter(std::move(expr));
      } else if (is_name("is")) {
        expr = parse_test(std::move(expr));
      } else if (is_op("(")) {
        expr = parse_call(std::move(expr));
      } else {
        return expr;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object) {
    size_t offset = cur().offset;
    if (skip_op(".")) {
      if (cur().type == TokenType::Integer) {
        auto item = node<GetItemExpr>(offset);
        auto key = node<LiteralExpr>(cur().offset);
        key->value = Value::integer(advance().int_value);
        item->object = std::move(object);
        item->key = std::move(key);
        return item;
      }
      auto attr = node<GetAttrExpr>(offset);
      attr->object = std::move(object);
      attr->name = expect_name();
      return attr;
    }
    expect_op("[");
    ExprPtr start, stop, step;
    bool slice = false;
    if (!is_op(":")) start = parse_expression(true);
    if (skip_op(":")) {
      slice = true;
      if (!is_op("]") && !is_op(":")) stop = parse_expression(true);
      if (skip_op(":") && !is_op("]")) step = parse_expression(true);
    }
    expect_op("]");
    if (!slice) {
      auto item = node<GetItemExpr>(offset);
      item->object = std::move(object);
      item->key = std::move(start);
      return item;
    }
    auto s = node<SliceExpr>(offset);
    s->object = std::move(object);
    s->start = std::move(start);
    s->stop = std::move(stop);
    s->step = std::move(step);
    return s;
  }

  ArgExprs parse_call_args() {
    ArgExprs args;
    expect_op("(");
    bool need_comma = false;
    while (!is_op(")")) {
      if (need_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == "=") {
        std::string name = advance().value;
        advance();
        args.keyword.emplace_back(name, parse_expression(true));
      } else {
        if (!args.keyword.empty()) fail("positional argument follows keyword argument");
        args.positional.push_back(parse_expression(true));
      }
      need_comma = true;
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto call = node<CallExpr>(cur().offset);
    call->callee = std::move(callee);
    call->args = parse_call_args();
    return call;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == TokenType::Name) {
      advance();
      name += "." + advance().value;
    }
    return name;
  }

  std::unique_ptr<FilterExpr> parse_filter(ExprPtr input) {
    size_t offset = cur().offset;
    auto f = node<FilterExpr>(offset);
    f->input = std::move(input);
    f->name = dotted_name();
    if (is_op("(")) f->args = parse_call_args();
    return f;
  }

  ExprPtr parse_test(ExprPtr input) {
    advance();  // `is`
    auto t = node<TestExpr>(cur().offset);
    t->input = std::move(input);
    t->negated = skip_name("not");
    t->name = dotted_name();
    if (is_op("(")) {
      t->args = parse_call_args();
    } else if ((cur().type == TokenType::Name || cur().type == TokenType::String || cur().type == TokenType::Integer ||
                cur().type == TokenType::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
      t->args.positional.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  const SourceText& src_;
  const std::vector<Token>& t_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
};

}  // namespace

Body parse(const SourceText& source, const std::vector<Token>& tokens) { return Parser(source, tokens).parse_template(); }

}  // namespace wick::chat::jinja
