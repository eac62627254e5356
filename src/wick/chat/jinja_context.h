// Evaluation state of one render: variable scopes, loop control flow and the template source
// (for error positions).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wick/chat/jinja_lexer.h"
#include "wick/chat/jinja_value.h"

namespace wick::chat::jinja {

class Context {
 public:
  enum class Flow { Normal, Break, Continue };

  Context(const SourceText& source, const ValueDict& variables);

  // The innermost binding of `name`, or Undefined ("'name' is undefined").
  Value lookup(std::string_view name) const;
  // Binds `name` in the innermost scope (loop bodies and macros have their own).
  void assign(const std::string& name, Value value);
  void push_scope();
  void pop_scope();

  const SourceText& source() const { return source_; }
  Flow flow = Flow::Normal;
  int call_depth = 0;  // guards against runaway macro recursion

 private:
  const SourceText& source_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
};

// Pushes a scope for the lifetime of the guard.
class ScopeGuard {
 public:
  explicit ScopeGuard(Context& ctx) : ctx_(ctx) { ctx_.push_scope(); }
  ~ScopeGuard() { ctx_.pop_scope(); }
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  Context& ctx_;
};

}  // namespace wick::chat::jinja
