// Attribute/item/slice access with Python's str and dict methods, and the template globals
// (range, namespace, dict, raise_exception, strftime_now) transformers defines.
#include "wick/chat/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "wick/chat/jinja_text.h"

namespace wick::chat::jinja {

namespace {

// How jinja2's Undefined names an object: "'dict object'", "'None'".
std::string object_repr(const Value& v) {
  if (v.is_none()) return "'None'";
  std::string out = "'";  // built by appending: `"'" + std::string` trips GCC 12's -Wrestrict
  out += v.type_name();
  out += " object'";
  return out;
}

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(object_repr(obj) + " has no attribute '" + name + "'");
}

const std::string* optional_string(const CallArgs& args, size_t index, std::string_view name) {
  const Value* v = args.get(index, name);
  if (v == nullptr || v->is_none()) return nullptr;
  if (!v->is_string()) eval_fail("argument '", name, "' must be a string, not ", v->type_name());
  return &v->as_string();
}

std::string required_string(const CallArgs& args, size_t index, std::string_view name) {
  const std::string* s = optional_string(args, index, name);
  if (s == nullptr) eval_fail("missing required argument '", name, "'");
  return *s;
}

int64_t optional_int(const CallArgs& args, size_t index, std::string_view name, int64_t fallback) {
  const Value* v = args.get(index, name);
  if (v == nullptr || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) eval_fail("argument '", name, "' must be an integer, not ", v->type_name());
  return v->as_int();
}

Value string_list(const std::vector<std::string>& parts) {
  ValueList out;
  for (const auto& p : parts) out.push_back(Value::string(p));
  return Value::list(std::move(out));
}

// startswith/endswith accept a string or a tuple of strings.
bool affix_match(const std::string& s, const Value& arg, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) eval_fail("startswith/endswith arguments must be strings, not ", a.type_name());
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (arg.is_list()) {
    for (const auto& a : arg.as_list())
      if (one(a)) return true;
    return false;
  }
  return one(arg);
}

// str.format with {}, {0} and {name} fields (no format specs).
std::string python_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) eval_fail("single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!") != std::string::npos) eval_fail("format specs in str.format are not supported");
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < args.positional.size() ? &args.positional[auto_index++] : nullptr;
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t k = std::stoul(field);
        v = k < args.positional.size() ? &args.positional[k] : nullptr;
      } else {
        v = args.get_keyword(field);
      }
      if (v == nullptr) eval_fail("format field '{", field, "}' has no matching argument");
      out += v->str();
      i = close;
    } else if (c == '}') {
      eval_fail("single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name, const CallArgs& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value::string(py_strip(s, name != "rstrip", name != "lstrip", optional_string(a, 0, "chars")));
  if (name == "split") return string_list(py_split(s, optional_string(a, 0, "sep"), optional_int(a, 1, "maxsplit", -1)));
  if (name == "splitlines") return string_list(py_splitlines(s));
  if (name == "startswith" || name == "endswith") {
    const Value* arg = a.get(0, "prefix");
    if (arg == nullptr) eval_fail(name, "() takes at least 1 argument");
    return Value::boolean(affix_match(s, *arg, name == "startswith"));
  }
  if (name == "upper") return Value::string(py_upper(s));
  if (name == "lower") return Value::string(py_lower(s));
  if (name == "title") return Value::string(py_title(s));
  if (name == "capitalize") return Value::string(py_capitalize(s));
  if (name == "replace")
    return Value::string(
        py_replace(s, required_string(a, 0, "old"), required_string(a, 1, "new"), optional_int(a, 2, "count", -1)));
  if (name == "format") return Value::string(python_format(s, a));
  if (name == "find" || name == "rfind" || name == "count") {
    std::string sub = required_string(a, 0, "sub");
    if (name == "count") {
      if (sub.empty()) return Value::integer(utf8_length(s) + 1);
      int64_t n = 0;
      for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return Value::integer(n);
    }
    size_t at = name == "find" ? s.find(sub) : s.rfind(sub);
    return Value::integer(at == std::string::npos ? -1 : utf8_length(std::string_view(s).substr(0, at)));
  }
  if (name == "join") {
    const Value* items = a.get(0, "iterable");
    if (items == nullptr) eval_fail("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const auto& item : items->iterate()) {
      if (!item.is_string()) eval_fail("sequence item: expected str instance, ", item.type_name(), " found");
      if (!first) out += s;
      first = false;
      out += item.as_string();
    }
    return Value::string(out);
  }
  if (name == "partition" || name == "rpartition") {
    std::string sep = required_string(a, 0, "sep");
    size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    ValueList parts;
    if (at == std::string::npos) {
      parts = name == "partition" ? ValueList{Value::string(s), Value::string(""), Value::string("")}
                                  : ValueList{Value::string(""), Value::string(""), Value::string(s)};
    } else {
      parts = {Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))};
    }
    return Value::list(std::move(parts), true);
  }
  auto all_of = [&](auto pred) {
    if (s.empty()) return Value::boolean(false);
    for (char c : s)
      if (!pred(static_cast<unsigned char>(c))) return Value::boolean(false);
    return Value::boolean(true);
  };
  if (name == "isdigit") return all_of([](unsigned char c) { return std::isdigit(c) != 0; });
  if (name == "isalpha") return all_of([](unsigned char c) { return std::isalpha(c) != 0 || c >= 0x80; });
  if (name == "isalnum") return all_of([](unsigned char c) { return std::isalnum(c) != 0 || c >= 0x80; });
  if (name == "isspace") return Value::boolean(!s.empty() && leading_space_bytes(s) == s.size());
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (char ch : s) {
      auto c = static_cast<unsigned char>(ch);
      if (std::islower(c)) {
        if (name == "isupper") return Value::boolean(false);
        cased = true;
      } else if (std::isupper(c)) {
        if (name == "islower") return Value::boolean(false);
        cased = true;
      }
    }
    return Value::boolean(cased);
  }
  eval_fail("'str' object has no attribute '", name, "'");
}

bool is_string_method(const std::string& name) {
  static const char* names[] = {"strip",      "lstrip",    "rstrip", "split",   "splitlines", "startswith",
                                "endswith",   "upper",     "lower",  "title",   "capitalize", "replace",
                                "format",     "find",      "rfind",  "count",   "join",       "partition",
                                "rpartition", "isdigit",   "isalpha", "isalnum", "isspace",   "islower",
                                "isupper"};
  for (const char* n : names)
    if (name == n) return true;
  return false;
}

Value dict_method(const Value& d, const std::string& name, const CallArgs& a) {
  const auto& items = d.as_dict().items;
  if (name == "items") {
    ValueList out;
    for (const auto& [k, v] : items) out.push_back(Value::list({k, v}, true));
    return Value::list(std::move(out));
  }
  if (name == "keys" || name == "values") {
    ValueList out;
    for (const auto& [k, v] : items) out.push_back(name == "keys" ? k : v);
    return Value::list(std::move(out));
  }
  if (name == "get") {
    const Value* key = a.get(0, "key");
    if (key == nullptr) eval_fail("get() takes at least 1 argument");
    const Value* found = d.as_dict().find(*key);
    if (found != nullptr) return *found;
    const Value* fallback = a.get(1, "default");
    return fallback ? *fallback : Value::none();
  }
  eval_fail("'dict' object has no attribute '", name, "'");
}

bool is_dict_method(const std::string& name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_string() && is_string_method(name)) {
    std::string s = object.as_string();
    return Value::function("str." + name, [s, name](const CallArgs& a) { return string_method(s, name, a); });
  }
  if (object.is_dict()) {
    if (is_dict_method(name))
      return Value::function("dict." + name, [object, name](const CallArgs& a) { return dict_method(object, name, a); });
    const Value* found = object.as_dict().find(std::string_view(name));
    return found ? *found : missing_attribute(object, name);
  }
  if (object.is_namespace()) {
    const Value* found = object.namespace_dict().find(std::string_view(name));
    return found ? *found : missing_attribute(object, name);
  }
  return missing_attribute(object, name);
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_generator()) return Value::undefined("'generator object' has no element " + key.repr());
  if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t n = object.length();
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined(object_repr(object) + " has no element " + std::to_string(key.as_int()));
    if (object.is_list()) return object.as_list()[static_cast<size_t>(i)];
    return object.iterate()[static_cast<size_t>(i)];
  }
  if (object.is_dict()) {
    const Value* found = object.as_dict().find(key);
    if (found != nullptr) return *found;
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(object_repr(object) + " has no element " + key.repr());
}

Value get_slice(const Value& object, const Value& start_v, const Value& stop_v, const Value& step_v) {
  // jinja2 compiles a slice to a plain Python subscript, so unlike `x[i]` a bad one raises.
  if (object.is_dict()) eval_fail("unhashable type: 'slice'");
  if ((!object.is_list() && !object.is_string()) || object.is_generator())
    eval_fail("'", object.type_name(), "' object is not subscriptable");
  auto as_index = [](const Value& v, const char* what) {
    if (!v.is_int() && !v.is_bool()) eval_fail("slice ", what, " must be an integer or None, not ", v.type_name());
    return v.as_int();
  };
  const int64_t n = object.length();
  const int64_t step = step_v.is_none() ? 1 : as_index(step_v, "step");
  if (step == 0) eval_fail("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t fallback, const char* what) {
    if (v.is_none()) return fallback;
    int64_t i = as_index(v, what);
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t start = clamp(start_v, step > 0 ? 0 : n - 1, "start");
  int64_t stop = clamp(stop_v, step > 0 ? n : -1, "stop");
  std::vector<size_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(static_cast<size_t>(i));
  if (object.is_list()) {
    ValueList out;
    for (size_t i : picks) out.push_back(object.as_list()[i]);
    return Value::list(std::move(out), object.is_tuple());
  }
  auto cps = utf8_decode(object.as_string());
  std::vector<char32_t> out;
  for (size_t i : picks) out.push_back(cps[i]);
  return Value::string(utf8_encode(out));
}

ValueDict make_globals() {
  ValueDict g;
  g.set(Value::string("range"), Value::function("range", [](const CallArgs& a) {
          if (a.positional.empty() || a.positional.size() > 3) eval_fail("range expected 1 to 3 arguments");
          for (const auto& v : a.positional)
            if (!v.is_int() && !v.is_bool()) eval_fail("range() arguments must be integers, not ", v.type_name());
          int64_t start = 0, stop = 0, step = 1;
          if (a.positional.size() == 1) {
            stop = a.positional[0].as_int();
          } else {
            start = a.positional[0].as_int();
            stop = a.positional[1].as_int();
            if (a.positional.size() == 3) step = a.positional[2].as_int();
          }
          if (step == 0) eval_fail("range() arg 3 must not be zero");
          ValueList out;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (out.size() >= 100000) eval_fail("range too big, the sandbox allows at most 100000 items");
            out.push_back(Value::integer(i));
          }
          return Value::list(std::move(out));
        }));
  auto dict_from_args = [](const CallArgs& a) {
    ValueDict d;
    if (!a.positional.empty()) {
      if (a.positional.size() > 1 || !a.positional[0].is_dict()) eval_fail("expected at most one mapping argument");
      d = a.positional[0].as_dict();
    }
    for (const auto& [k, v] : a.keyword) d.set(Value::string(k), v);
    return d;
  };
  g.set(Value::string("namespace"), Value::function("namespace", [dict_from_args](const CallArgs& a) {
          ValueDict d = dict_from_args(a);
          for (const auto& [k, v] : d.items)
            if (k.is_string() && !k.as_string().empty() && k.as_string()[0] == '_')
              eval_fail("chat templates cannot store underscore-prefixed attributes on a namespace");
          return Value::new_namespace(std::move(d));
        }));
  g.set(Value::string("dict"),
        Value::function("dict", [dict_from_args](const CallArgs& a) { return Value::dict(dict_from_args(a)); }));
  g.set(Value::string("raise_exception"), Value::function("raise_exception", [](const CallArgs& a) -> Value {
          eval_fail(a.positional.empty() ? std::string("raise_exception called") : a.positional[0].str());
        }));
  g.set(Value::string("strftime_now"), Value::function("strftime_now", [](const CallArgs& a) {
          if (a.positional.empty() || !a.positional[0].is_string()) eval_fail("strftime_now expects a format string");
          std::time_t now = std::time(nullptr);
          std::tm local{};
          localtime_r(&now, &local);
          char buf[512];
          size_t n = std::strftime(buf, sizeof(buf), a.positional[0].as_string().c_str(), &local);
          return Value::string(std::string(buf, n));
        }));
  return g;
}

}  // namespace wick::chat::jinja
