// Jinja syntax tree: expressions evaluate to Values, statements append text to the output.
// Each node evaluates itself (jinja_expr.cpp, jinja_stmt.cpp); the parser (jinja_parser.cpp)
// builds them; the evaluation state is Context (jinja_context.h).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "wick/chat/jinja_value.h"

namespace wick::chat::jinja {

class Context;

// ----- expressions ---------------------------------------------------------------------------

struct Expr {
  size_t offset = 0;  // where the expression starts in the template, for error messages
  virtual ~Expr() = default;
  // Evaluates; errors name this node's line and column.
  Value eval(Context& ctx) const;

 protected:
  virtual Value evaluate(Context& ctx) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

// Call arguments as written: positional expressions then keyword ones.
struct ArgExprs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  CallArgs eval(Context& ctx) const;
};

struct LiteralExpr : Expr {
  Value value;
  Value evaluate(Context& ctx) const override;
};

struct NameExpr : Expr {
  std::string name;
  Value evaluate(Context& ctx) const override;
};

struct ListExpr : Expr {
  std::vector<ExprPtr> items;
  bool tuple = false;
  Value evaluate(Context& ctx) const override;
};

struct DictExpr : Expr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
  Value evaluate(Context& ctx) const override;
};

// `obj.name`: attribute first (methods), then item, as jinja2's getattr does.
struct GetAttrExpr : Expr {
  ExprPtr object;
  std::string name;
  Value evaluate(Context& ctx) const override;
};

// `obj[key]`: item first, then attribute.
struct GetItemExpr : Expr {
  ExprPtr object;
  ExprPtr key;
  Value evaluate(Context& ctx) const override;
};

// `obj[start:stop:step]`, any part optional.
struct SliceExpr : Expr {
  ExprPtr object, start, stop, step;
  Value evaluate(Context& ctx) const override;
};

struct CallExpr : Expr {
  ExprPtr callee;
  ArgExprs args;
  Value evaluate(Context& ctx) const override;
};

// `input | name(args)`; `input` is null inside `{% filter %}` blocks, which pass the body instead.
struct FilterExpr : Expr {
  ExprPtr input;
  std::string name;
  ArgExprs args;
  Value apply(Context& ctx, const Value& input_value) const;
  Value evaluate(Context& ctx) const override;
};

// `input is [not] name(args)`.
struct TestExpr : Expr {
  ExprPtr input;
  std::string name;
  bool negated = false;
  ArgExprs args;
  Value evaluate(Context& ctx) const override;
};

// `-x`, `+x`, `not x`.
struct UnaryExpr : Expr {
  std::string op;
  ExprPtr operand;
  Value evaluate(Context& ctx) const override;
};

// Arithmetic (+ - * / // % **), concatenation (~) and the short-circuit `and` / `or`.
struct BinaryExpr : Expr {
  std::string op;
  ExprPtr left, right;
  Value evaluate(Context& ctx) const override;
};

// `a < b <= c`, `==`, `!=`, `in`, `not in`: chained like Python.
struct CompareExpr : Expr {
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest;
  Value evaluate(Context& ctx) const override;
};

// `then if test else otherwise`; a missing else gives Undefined.
struct CondExpr : Expr {
  ExprPtr test, then, otherwise;
  Value evaluate(Context& ctx) const override;
};

// ----- statements ----------------------------------------------------------------------------

struct Stmt {
  size_t offset = 0;
  virtual ~Stmt() = default;
  virtual void render(Context& ctx, std::string& out) const = 0;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Renders statements in order, stopping early on break/continue.
void render_body(const Body& body, Context& ctx, std::string& out);

struct TextStmt : Stmt {
  std::string text;
  void render(Context& ctx, std::string& out) const override;
};

struct OutputStmt : Stmt {
  ExprPtr expr;
  void render(Context& ctx, std::string& out) const override;
};

struct IfStmt : Stmt {
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body otherwise;
  void render(Context& ctx, std::string& out) const override;
};

struct ForStmt : Stmt {
  std::vector<std::string> targets;  // `for a, b in ...` unpacks
  ExprPtr iterable;
  ExprPtr condition;  // `for x in xs if cond`, may be null
  Body body, otherwise;
  void render(Context& ctx, std::string& out) const override;
};

// `{% set a = e %}`, `{% set a, b = e %}`, `{% set ns.attr = e %}`, `{% set a %}body{% endset %}`.
struct SetStmt : Stmt {
  std::vector<std::string> targets;
  std::string namespace_attr;  // non-empty for `set ns.attr`, with targets = {ns}
  ExprPtr value;               // null for the block form
  Body body;
  std::unique_ptr<FilterExpr> filter;  // block form: `{% set a | upper %}`
  void render(Context& ctx, std::string& out) const override;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;
};

struct MacroStmt : Stmt {
  std::string name;
  std::vector<MacroParam> params;
  Body body;
  // The callable a macro (or a call block's `caller`) becomes, bound to `ctx`.
  Value make_callable(Context& ctx) const;
  void render(Context& ctx, std::string& out) const override;
};

// `{% call(args) macro(...) %}body{% endcall %}`: the body is passed to the macro as `caller`.
struct CallBlockStmt : Stmt {
  MacroStmt caller;
  ExprPtr call;
  void render(Context& ctx, std::string& out) const override;
};

struct FilterBlockStmt : Stmt {
  std::unique_ptr<FilterExpr> filter;
  Body body;
  void render(Context& ctx, std::string& out) const override;
};

// `{% break %}` / `{% continue %}` (the loopcontrols extension).
struct LoopControlStmt : Stmt {
  bool is_break = false;
  void render(Context& ctx, std::string& out) const override;
};

// `{% generation %}...{% endgeneration %}` (transformers' assistant-mask marker): the body,
// rendered in its own scope.
struct BlockStmt : Stmt {
  Body body;
  void render(Context& ctx, std::string& out) const override;
};

}  // namespace wick::chat::jinja
