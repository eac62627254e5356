// Values of the Jinja interpreter: Python's None/bool/int/float/str/list/tuple/dict plus jinja2's
// Undefined, namespace objects and callables, with Python's semantics for truth, equality, order
// and printing (str/repr), and conversion from/to JSON as Python's json module writes it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::chat::jinja {

class Value;
using ValueList = std::vector<Value>;

// Insertion-ordered mapping (Python dicts keep insertion order); small, so lookups are linear.
struct ValueDict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

// Arguments of a call: positional then keyword, as the template wrote them.
struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at `index` or named `name`, or nullptr when the caller gave neither.
  const Value* get(size_t index, std::string_view name) const;
  const Value* get_keyword(std::string_view name) const;
};

using NativeFunction = std::function<Value(const CallArgs&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };

  Value() = default;  // Undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  // markupsafe.Markup (from `|safe`, `|escape`): `+` with a plain str HTML-escapes the plain one.
  static Value markup(std::string s);
  static Value list(ValueList items, bool tuple = false);
  // What jinja2's map/select/reject/... return: iterable once, always truthy, no len(), not JSON.
  static Value generator(ValueList items);
  static Value dict(ValueDict d);
  static Value new_namespace(ValueDict d);
  static Value function(std::string name, NativeFunction fn);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_markup() const { return kind_ == Kind::String && b_; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const { return kind_ == Kind::List && flavor_ == Flavor::Tuple; }
  bool is_generator() const { return kind_ == Kind::List && flavor_ == Flavor::Generator; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Namespace; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }  // bool is an int in Python
  double as_double() const { return kind_ == Kind::Float ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return s_; }  // the string; for Undefined, its hint
  const ValueList& as_list() const { return *list_; }
  const ValueDict& as_dict() const { return *dict_; }
  ValueDict& namespace_dict() const { return *dict_; }  // namespaces are the one mutable object
  Value call(const CallArgs& args) const { return (*fn_)(args); }

  // Python's name of the type, as error messages print it ('dict object').
  std::string type_name() const;
  bool truthy() const;
  // Python `==` (1 == 1.0 == True; Undefined equals only Undefined).
  bool equals(const Value& other) const;
  // str(x) as `{{ x }}` prints it; Undefined prints as nothing.
  std::string str() const;
  // repr(x), as Python prints items inside a list or dict.
  std::string repr() const;
  // The items a `for` loop visits: list items, dict keys, string characters; Undefined: none.
  ValueList iterate() const;
  // Python's len(): characters of a string, items of a list or dict.
  int64_t length() const;

 private:
  enum class Flavor : uint8_t { List, Tuple, Generator };  // of a Kind::List value
  Kind kind_ = Kind::Undefined;
  Flavor flavor_ = Flavor::List;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<const NativeFunction> fn_;
};

// Python's repr() of a float: shortest round-trip digits, '1.0', '1e-05', '1e+16', 'inf', 'nan'.
std::string python_float_repr(double f);
// Python's repr() of a str: single quotes unless the text holds ' and no ", with Python's escapes.
std::string python_string_repr(std::string_view s);
// Python's `x < y` for numbers, strings and lists; fails for other kinds.
bool python_less(const Value& a, const Value& b);

// json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...), transformers'
// `tojson`. indent: None, an int (spaces) or a string. separators: None or a (item, key) pair.
struct JsonDumpOptions {
  bool indent = false;
  std::string indent_unit;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

}  // namespace wick::chat::jinja
