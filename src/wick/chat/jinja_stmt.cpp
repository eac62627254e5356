// Rendering of Jinja statements and the evaluation Context (scopes follow jinja2: `for` bodies
// and macros get their own scope per call/iteration, `if` does not).
#include "wick/chat/jinja_ast.h"
#include "wick/chat/jinja_builtins.h"
#include "wick/chat/jinja_context.h"
#include "wick/chat/jinja_text.h"

namespace wick::chat::jinja {

Context::Context(const SourceText& source, const ValueDict& variables) : source_(source) {
  scopes_.emplace_back();
  for (const auto& [k, v] : variables.items) scopes_.back()[k.as_string()] = v;
}

Value Context::lookup(std::string_view name) const {
  std::string key(name);
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto found = it->find(key);
    if (found != it->end()) return found->second;
  }
  return Value::undefined("'" + key + "' is undefined");
}

void Context::assign(const std::string& name, Value value) { scopes_.back()[name] = std::move(value); }

void Context::push_scope() { scopes_.emplace_back(); }

void Context::pop_scope() { scopes_.pop_back(); }

void render_body(const Body& body, Context& ctx, std::string& out) {
  for (const auto& stmt : body) {
    stmt->render(ctx, out);
    if (ctx.flow != Context::Flow::Normal) return;
  }
}

void TextStmt::render(Context&, std::string& out) const { out += text; }

void OutputStmt::render(Context& ctx, std::string& out) const { out += expr->eval(ctx).str(); }

void IfStmt::render(Context& ctx, std::string& out) const {
  for (const auto& [test, body] : branches) {
    if (test->eval(ctx).truthy()) {
      render_body(body, ctx, out);
      return;
    }
  }
  render_body(otherwise, ctx, out);
}

namespace {

void assign_targets(Context& ctx, const std::vector<std::string>& targets, const Value& value, const SourceText& src,
                    size_t offset) {
  if (targets.size() == 1) {
    ctx.assign(targets[0], value);
    return;
  }
  ValueList items;
  try {
    items = value.iterate();
  } catch (const EvalError& e) {
    src.fail(offset, e.what());
  }
  if (items.size() != targets.size())
    src.fail(offset, str_cat("cannot unpack ", items.size(), " values into ", targets.size(), " names"));
  for (size_t i = 0; i < targets.size(); ++i) ctx.assign(targets[i], items[i]);
}

// The `loop` variable of one iteration.
Value loop_object(const ValueList& items, size_t i) {
  const auto n = static_cast<int64_t>(items.size());
  const auto k = static_cast<int64_t>(i);
  ValueDict loop;
  loop.set(Value::string("index"), Value::integer(k + 1));
  loop.set(Value::string("index0"), Value::integer(k));
  loop.set(Value::string("revindex"), Value::integer(n - k));
  loop.set(Value::string("revindex0"), Value::integer(n - k - 1));
  loop.set(Value::string("first"), Value::boolean(k == 0));
  loop.set(Value::string("last"), Value::boolean(k == n - 1));
  loop.set(Value::string("length"), Value::integer(n));
  loop.set(Value::string("depth"), Value::integer(1));
  loop.set(Value::string("depth0"), Value::integer(0));
  if (i > 0) loop.set(Value::string("previtem"), items[i - 1]);
  if (i + 1 < items.size()) loop.set(Value::string("nextitem"), items[i + 1]);
  loop.set(Value::string("cycle"), Value::function("cycle", [k](const CallArgs& args) {
             if (args.positional.empty()) eval_fail("no items for cycling given");
             return args.positional[static_cast<size_t>(k) % args.positional.size()];
           }));
  return Value::dict(std::move(loop));
}

}  // namespace

void ForStmt::render(Context& ctx, std::string& out) const {
  Value seq = iterable->eval(ctx);
  ValueList all;
  try {
    all = seq.iterate();
  } catch (const EvalError& e) {
    ctx.source().fail(iterable->offset, e.what());
  }
  ValueList items;
  if (condition) {
    for (const auto& item : all) {
      ScopeGuard scope(ctx);
      assign_targets(ctx, targets, item, ctx.source(), offset);
      if (condition->eval(ctx).truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) {
    render_body(otherwise, ctx, out);
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    ScopeGuard scope(ctx);
    ctx.assign("loop", loop_object(items, i));
    assign_targets(ctx, targets, items[i], ctx.source(), offset);
    render_body(body, ctx, out);
    if (ctx.flow == Context::Flow::Break) {
      ctx.flow = Context::Flow::Normal;
      break;
    }
    ctx.flow = Context::Flow::Normal;
  }
}

void SetStmt::render(Context& ctx, std::string& out) const {
  Value v;
  if (value) {
    v = value->eval(ctx);
  } else {
    std::string captured;
    render_body(body, ctx, captured);
    v = Value::string(std::move(captured));
    if (filter) v = filter->apply(ctx, v);
  }
  if (!namespace_attr.empty()) {
    Value ns = ctx.lookup(targets[0]);
    if (!ns.is_namespace()) ctx.source().fail(offset, "cannot assign attribute on non-namespace object");
    ns.namespace_dict().set(Value::string(namespace_attr), std::move(v));
    return;
  }
  assign_targets(ctx, targets, v, ctx.source(), offset);
}

Value MacroStmt::make_callable(Context& ctx) const {
  return Value::function(name, [this, &ctx](const CallArgs& args) {
    if (ctx.call_depth > 64) eval_fail("macro '", name, "' recursed too deeply");
    if (args.positional.size() > params.size() && params.size() > 0)
      eval_fail("macro '", name, "' takes not more than ", params.size(), " argument(s)");
    ScopeGuard scope(ctx);
    ++ctx.call_depth;
    for (size_t i = 0; i < params.size(); ++i) {
      const Value* given = args.get(i, params[i].name);
      if (given != nullptr) {
        ctx.assign(params[i].name, *given);
      } else if (params[i].default_value) {
        ctx.assign(params[i].name, params[i].default_value->eval(ctx));
      } else {
        ctx.assign(params[i].name, Value::undefined("parameter '" + params[i].name + "' was not provided"));
      }
    }
    ValueList varargs(args.positional.begin() + static_cast<std::ptrdiff_t>(std::min(params.size(), args.positional.size())),
                      args.positional.end());
    ctx.assign("varargs", Value::list(std::move(varargs)));
    ValueDict kwargs;
    for (const auto& [k, v] : args.keyword) {
      bool is_param = k == "caller";
      for (const auto& p : params) is_param = is_param || p.name == k;
      if (!is_param) kwargs.set(Value::string(k), v);
    }
    ctx.assign("kwargs", Value::dict(std::move(kwargs)));
    if (const Value* caller = args.get_keyword("caller")) ctx.assign("caller", *caller);
    std::string out;
    auto saved_flow = ctx.flow;
    ctx.flow = Context::Flow::Normal;
    render_body(body, ctx, out);
    ctx.flow = saved_flow;
    --ctx.call_depth;
    return Value::string(std::move(out));
  });
}

void MacroStmt::render(Context& ctx, std::string&) const { ctx.assign(name, make_callable(ctx)); }

void CallBlockStmt::render(Context& ctx, std::string& out) const {
  const auto& call_expr = static_cast<const CallExpr&>(*call);
  Value fn = call_expr.callee->eval(ctx);
  if (!fn.is_function()) ctx.source().fail(call->offset, "'" + fn.type_name() + "' object is not callable");
  CallArgs args = call_expr.args.eval(ctx);
  args.keyword.emplace_back("caller", caller.make_callable(ctx));
  try {
    out += fn.call(args).str();
  } catch (const EvalError& e) {
    ctx.source().fail(offset, e.what());
  }
}

void FilterBlockStmt::render(Context& ctx, std::string& out) const {
  std::string captured;
  render_body(body, ctx, captured);
  out += filter->apply(ctx, Value::string(std::move(captured))).str();
}

void LoopControlStmt::render(Context& ctx, std::string&) const {
  ctx.flow = is_break ? Context::Flow::Break : Context::Flow::Continue;
}

void BlockStmt::render(Context& ctx, std::string& out) const {
  ScopeGuard scope(ctx);  // transformers renders it as a call block, whose assignments stay inside
  render_body(body, ctx, out);
}

}  // namespace wick::chat::jinja
