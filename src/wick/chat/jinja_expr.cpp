// Evaluation of Jinja expressions with Python's operator semantics.
#include <cmath>
#include <cstdint>

#include "wick/chat/jinja_ast.h"
#include "wick/chat/jinja_builtins.h"
#include "wick/chat/jinja_context.h"
#include "wick/chat/jinja_text.h"

namespace wick::chat::jinja {

namespace {

[[noreturn]] void fail_undefined(const Value& v) {
  eval_fail(v.as_string().empty() ? std::string("undefined value") : v.as_string());
}

void require_defined(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
}

[[noreturn]] void fail_operands(const std::string& op, const Value& a, const Value& b) {
  eval_fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
}

// Python ints are unbounded; ours are 64-bit, so overflow is an error rather than a wrong number.
[[noreturn]] void fail_overflow() { eval_fail("integer overflow (template integers are 64-bit)"); }
int64_t add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fail_overflow();
  return r;
}
int64_t sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) fail_overflow();
  return r;
}
int64_t mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail_overflow();
  return r;
}

int64_t floor_div(int64_t a, int64_t b) {
  if (a == INT64_MIN && b == -1) fail_overflow();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

Value repeat(const Value& seq, int64_t times) {
  const int64_t unit = seq.is_string() ? static_cast<int64_t>(seq.as_string().size()) : seq.length();
  if (times > 0 && unit > 0 && times > (int64_t{1} << 28) / unit) eval_fail("repetition result is too large");
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
  return Value::list(std::move(out), seq.is_tuple());
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  bool numbers = a.is_number() && b.is_number();
  bool any_float = a.is_float() || b.is_float();
  if (op == "+") {
    if (numbers) return any_float ? Value::number(a.as_double() + b.as_double()) : Value::integer(add(a.as_int(), b.as_int()));
    if (a.is_string() && b.is_string()) {
      if (!a.is_markup() && !b.is_markup()) return Value::string(a.as_string() + b.as_string());
      auto escaped = [](const Value& v) { return v.is_markup() ? v.as_string() : html_escape(v.as_string()); };
      return Value::markup(escaped(a) + escaped(b));
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple() && !a.is_generator() && !b.is_generator()) {
      ValueList out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(out), a.is_tuple());
    }
    if (a.is_string() || b.is_string())
      eval_fail("can only concatenate str (not \"", (a.is_string() ? b : a).type_name(), "\") to str");
    fail_operands(op, a, b);
  }
  if (op == "*") {
    if (numbers) return any_float ? Value::number(a.as_double() * b.as_double()) : Value::integer(mul(a.as_int(), b.as_int()));
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
    fail_operands(op, a, b);
  }
  if (!numbers) fail_operands(op, a, b);
  if (op == "-") return any_float ? Value::number(a.as_double() - b.as_double()) : Value::integer(sub(a.as_int(), b.as_int()));
  if (op == "/") {
    if (b.as_double() == 0) eval_fail("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0) eval_fail(op == "%" ? "modulo by zero" : "integer division or modulo by zero");
    if (!any_float) {
      int64_t q = floor_div(a.as_int(), b.as_int());
      return Value::integer(op == "//" ? q : sub(a.as_int(), mul(q, b.as_int())));
    }
    double x = a.as_double(), y = b.as_double();
    if (op == "//") return Value::number(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::number(m);
  }
  if (op == "**") {
    if (!any_float && b.as_int() >= 0) {
      int64_t result = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {  // by squaring: a huge exponent must not hang
        if (e & 1) result = mul(result, base);
        if (e > 1) base = mul(base, base);
      }
      return Value::integer(result);
    }
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  eval_fail("unknown operator ", op);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string())
        eval_fail("'in <string>' requires string as left operand, not ", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const auto& x : container.as_list())
        if (x.equals(item)) return true;
      return false;
    case Value::Kind::Dict: return container.as_dict().find(item) != nullptr;
    case Value::Kind::Undefined: return false;
    default: eval_fail("argument of type '", container.type_name(), "' is not iterable");
  }
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a.equals(b);
  if (op == "!=") return !a.equals(b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  require_defined(a);
  require_defined(b);
  if (op == "<") return python_less(a, b);
  if (op == ">") return python_less(b, a);
  if (op == "<=") return python_less(a, b) || a.equals(b);
  if (op == ">=") return python_less(b, a) || a.equals(b);
  eval_fail("unknown comparison ", op);
}

}  // namespace

Value Expr::eval(Context& ctx) const {
  try {
    return evaluate(ctx);
  } catch (const EvalError& e) {
    ctx.source().fail(offset, e.what());
  }
}

CallArgs ArgExprs::eval(Context& ctx) const {
  CallArgs args;
  for (const auto& e : positional) args.positional.push_back(e->eval(ctx));
  for (const auto& [name, e] : keyword) args.keyword.emplace_back(name, e->eval(ctx));
  return args;
}

Value LiteralExpr::evaluate(Context&) const { return value; }

Value NameExpr::evaluate(Context& ctx) const { return ctx.lookup(name); }

Value ListExpr::evaluate(Context& ctx) const {
  ValueList values;
  for (const auto& e : items) values.push_back(e->eval(ctx));
  return Value::list(std::move(values), tuple);
}

Value DictExpr::evaluate(Context& ctx) const {
  ValueDict d;
  for (const auto& [k, v] : items) d.set(k->eval(ctx), v->eval(ctx));
  return Value::dict(std::move(d));
}

Value GetAttrExpr::evaluate(Context& ctx) const {
  Value obj = object->eval(ctx);
  require_defined(obj);
  return get_attribute(obj, name);
}

Value GetItemExpr::evaluate(Context& ctx) const {
  Value obj = object->eval(ctx);
  require_defined(obj);
  return get_item(obj, key->eval(ctx));
}

Value SliceExpr::evaluate(Context& ctx) const {
  Value obj = object->eval(ctx);
  require_defined(obj);
  auto part = [&](const ExprPtr& e) { return e ? e->eval(ctx) : Value::none(); };
  return get_slice(obj, part(start), part(stop), part(step));
}

Value CallExpr::evaluate(Context& ctx) const {
  Value fn = callee->eval(ctx);
  require_defined(fn);
  if (!fn.is_function()) eval_fail("'", fn.type_name(), "' object is not callable");
  return fn.call(args.eval(ctx));
}

Value FilterExpr::apply(Context& ctx, const Value& input_value) const {
  try {
    return apply_filter(name, input_value, args.eval(ctx));
  } catch (const EvalError& e) {
    ctx.source().fail(offset, e.what());
  }
}

Value FilterExpr::evaluate(Context& ctx) const { return apply(ctx, input->eval(ctx)); }

Value TestExpr::evaluate(Context& ctx) const {
  Value v = input->eval(ctx);
  return Value::boolean(apply_test(name, v, args.eval(ctx)) != negated);
}

Value UnaryExpr::evaluate(Context& ctx) const {
  Value v = operand->eval(ctx);
  if (op == "not") return Value::boolean(!v.truthy());
  require_defined(v);
  if (!v.is_number()) eval_fail("bad operand type for unary ", op, ": '", v.type_name(), "'");
  if (op == "+") return v.is_float() ? v : Value::integer(v.as_int());
  return v.is_float() ? Value::number(-v.as_double()) : Value::integer(sub(0, v.as_int()));
}

Value BinaryExpr::evaluate(Context& ctx) const {
  Value a = left->eval(ctx);
  if (op == "and") return a.truthy() ? right->eval(ctx) : a;
  if (op == "or") return a.truthy() ? a : right->eval(ctx);
  Value b = right->eval(ctx);
  if (op == "~") return Value::string(a.str() + b.str());
  return arithmetic(op, a, b);
}

Value CompareExpr::evaluate(Context& ctx) const {
  Value a = first->eval(ctx);
  for (const auto& [op, e] : rest) {
    Value b = e->eval(ctx);
    if (!compare(op, a, b)) return Value::boolean(false);
    a = std::move(b);
  }
  return Value::boolean(true);
}

Value CondExpr::evaluate(Context& ctx) const {
  if (test->eval(ctx).truthy()) return then->eval(ctx);
  if (otherwise) return otherwise->eval(ctx);
  return Value::undefined("the inline if-expression on " + ctx.source().where(offset) +
                          " evaluated to false and no else section was defined.");
}

}  // namespace wick::chat::jinja
