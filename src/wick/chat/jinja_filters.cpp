// Jinja filters and tests with jinja2's semantics, plus transformers' `tojson`
// (json.dumps with ensure_ascii=False, no HTML escaping).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "wick/chat/jinja_builtins.h"
#include "wick/chat/jinja_text.h"

namespace wick::chat::jinja {

namespace {

using Filter = Value (*)(const Value& input, const CallArgs& args);
using Test = bool (*)(const Value& input, const CallArgs& args);

bool flag(const CallArgs& a, size_t index, std::string_view name, bool fallback) {
  const Value* v = a.get(index, name);
  return v == nullptr ? fallback : v->truthy();
}

const Value& required(const CallArgs& a, size_t index, std::string_view name) {
  const Value* v = a.get(index, name);
  if (v == nullptr) eval_fail("missing argument '", name, "'");
  return *v;
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = get_item(cur, numeric ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string string_of(const Value& v) { return v.str(); }

// Sort key: strings compare case-insensitively unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  return v.is_string() && !case_sensitive ? Value::string(py_lower(v.as_string())) : v;
}

ValueList sorted(ValueList items, bool reverse, bool case_sensitive, const Value* attribute) {
  auto key = [&](const Value& v) {
    return sort_key(attribute && !attribute->is_none() ? attribute_path(v, attribute->str()) : v, case_sensitive);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return reverse ? python_less(key(b), key(a)) : python_less(key(a), key(b));
  });
  return items;
}

Value f_abs(const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  if (v.is_number()) return Value::integer(std::llabs(v.as_int()));
  eval_fail("bad operand type for abs(): '", v.type_name(), "'");
}

Value f_attr(const Value& v, const CallArgs& a) { return get_attribute(v, required(a, 0, "name").str()); }

Value f_batch(const Value& v, const CallArgs& a) {
  int64_t n = required(a, 0, "linecount").as_int();
  if (n <= 0) eval_fail("batch size must be positive");
  const Value* fill = a.get(1, "fill_with");
  ValueList out, row;
  for (const auto& item : v.iterate()) {
    row.push_back(item);
    if (static_cast<int64_t>(row.size()) == n) {
      out.push_back(Value::list(std::move(row)));
      row.clear();
    }
  }
  if (!row.empty()) {
    if (fill && !fill->is_none())
      while (static_cast<int64_t>(row.size()) < n) row.push_back(*fill);
    out.push_back(Value::list(std::move(row)));
  }
  return Value::generator(std::move(out));
}

Value f_capitalize(const Value& v, const CallArgs&) {
  return Value::string(py_capitalize(string_of(v)));
}

Value f_default(const Value& v, const CallArgs& a) {
  bool boolean = flag(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.truthy())) {
    const Value* d = a.get(0, "default_value");
    return d ? *d : Value::string("");
  }
  return v;
}

Value f_dictsort(const Value& v, const CallArgs& a) {
  if (!v.is_dict()) eval_fail("dictsort expects a mapping, got ", v.type_name());
  bool case_sensitive = flag(a, 0, "case_sensitive", false);
  const Value* by = a.get(1, "by");
  bool by_value = by && by->str() == "value";
  bool reverse = flag(a, 2, "reverse", false);
  ValueList items;
  for (const auto& [k, item] : v.as_dict().items) items.push_back(Value::list({k, item}, true));
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const Value& kx = x.as_list()[by_value ? 1 : 0];
    const Value& ky = y.as_list()[by_value ? 1 : 0];
    return reverse ? python_less(sort_key(ky, case_sensitive), sort_key(kx, case_sensitive))
                   : python_less(sort_key(kx, case_sensitive), sort_key(ky, case_sensitive));
  });
  return Value::list(std::move(items));
}

Value f_escape(const Value& v, const CallArgs&) {
  return v.is_markup() ? v : Value::markup(html_escape(string_of(v)));
}
Value f_forceescape(const Value& v, const CallArgs&) { return Value::markup(html_escape(string_of(v))); }

Value f_first(const Value& v, const CallArgs&) {
  ValueList items = v.iterate();
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(const Value& v, const CallArgs&) {
  ValueList items = v.iterate();
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

bool parse_double(const std::string& text, double& out) {
  std::string s = py_strip(text, true, true, nullptr);
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

Value f_float(const Value& v, const CallArgs& a) {
  if (v.is_number()) return Value::number(v.as_double());
  double d = 0;
  if (v.is_string() && parse_double(v.as_string(), d)) return Value::number(d);
  const Value* fallback = a.get(0, "default");
  return fallback ? *fallback : Value::number(0.0);
}

Value f_int(const Value& v, const CallArgs& a) {
  if (v.is_float()) return Value::integer(static_cast<int64_t>(std::trunc(v.as_double())));
  if (v.is_number()) return Value::integer(v.as_int());
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), true, true, nullptr);
    char* end = nullptr;
    int64_t base = a.get(1, "base") ? a.get(1, "base")->as_int() : 10;
    long long i = s.empty() ? 0 : std::strtoll(s.c_str(), &end, static_cast<int>(base));
    if (!s.empty() && end == s.c_str() + s.size()) return Value::integer(i);
    double d = 0;
    if (parse_double(s, d)) return Value::integer(static_cast<int64_t>(std::trunc(d)));
  }
  const Value* fallback = a.get(0, "default");
  return fallback ? *fallback : Value::integer(0);
}

Value f_indent(const Value& v, const CallArgs& a) {
  if (!v.is_string()) eval_fail("unsupported operand type(s) for +=: '", v.type_name(), "' and 'str'");
  const Value* width = a.get(0, "width");
  std::string indention = width == nullptr ? "    " : width->is_string() ? width->as_string()
                                                                           : std::string(static_cast<size_t>(width->as_int()), ' ');
  bool first = flag(a, 1, "first", false);
  bool blank = flag(a, 2, "blank", false);
  std::vector<std::string> lines = py_splitlines(string_of(v) + "\n");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  return Value::string(first ? indention + rv : rv);
}

Value f_items(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) eval_fail("can only get item pairs from a mapping, not ", v.type_name());
  ValueList out;
  for (const auto& [k, item] : v.as_dict().items) out.push_back(Value::list({k, item}, true));
  return Value::generator(std::move(out));
}

Value f_join(const Value& v, const CallArgs& a) {
  const Value* sep = a.get(0, "d");
  const Value* attribute = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const auto& item : v.iterate()) {
    if (!first && sep) out += sep->str();
    first = false;
    out += (attribute && !attribute->is_none() ? attribute_path(item, attribute->str()) : item).str();
  }
  return Value::string(out);
}

Value f_length(const Value& v, const CallArgs&) { return Value::integer(v.length()); }
Value f_list(const Value& v, const CallArgs&) { return Value::list(v.iterate()); }
Value f_lower(const Value& v, const CallArgs&) { return Value::string(py_lower(string_of(v))); }
Value f_upper(const Value& v, const CallArgs&) { return Value::string(py_upper(string_of(v))); }
Value f_string(const Value& v, const CallArgs&) { return Value::string(string_of(v)); }
Value f_safe(const Value& v, const CallArgs&) { return Value::markup(string_of(v)); }
Value f_title(const Value& v, const CallArgs&) { return Value::string(jinja_title(string_of(v))); }

Value f_trim(const Value& v, const CallArgs& a) {
  const Value* chars = a.get(0, "chars");
  std::string set = chars && !chars->is_none() ? chars->str() : "";
  return Value::string(py_strip(string_of(v), true, true, chars && !chars->is_none() ? &set : nullptr));
}

Value f_replace(const Value& v, const CallArgs& a) {
  const Value* count = a.get(2, "count");
  return Value::string(py_replace(string_of(v), required(a, 0, "old").str(), required(a, 1, "new").str(),
                                  count && !count->is_none() ? count->as_int() : -1));
}

Value f_reverse(const Value& v, const CallArgs&) {
  if (v.is_string()) {
    auto cps = utf8_decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::string(utf8_encode(cps));
  }
  ValueList items = v.iterate();
  std::reverse(items.begin(), items.end());
  return v.is_generator() ? Value::list(std::move(items)) : Value::generator(std::move(items));  // reversed() iterator
}

Value f_round(const Value& v, const CallArgs& a) {
  if (!v.is_number()) eval_fail("round expects a number, got ", v.type_name());
  int64_t precision = a.get(0, "precision") ? a.get(0, "precision")->as_int() : 0;
  std::string method = a.get(1, "method") ? a.get(1, "method")->str() : "common";
  if (method != "common" && method != "floor" && method != "ceil") eval_fail("method must be common, ceil or floor");
  if (method == "common" && !v.is_float() && precision >= 0) return Value::integer(v.as_int());  // round(int, n) is int
  if (method == "common" && precision > 0) {
    // Python's round() works on the exact binary value, half to even; so does printf's %.*f.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), v.as_double());
    return Value::number(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  double r = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::nearbyint(x);
  return Value::number(r / scale);
}

Value f_sort(const Value& v, const CallArgs& a) {
  return Value::list(sorted(v.iterate(), flag(a, 0, "reverse", false), flag(a, 1, "case_sensitive", false),
                            a.get(2, "attribute")));
}

Value f_sum(const Value& v, const CallArgs& a) {
  const Value* attribute = a.get(0, "attribute");
  const Value* start = a.get(1, "start");
  Value total = start ? *start : Value::integer(0);
  for (const auto& item : v.iterate()) {
    Value x = attribute && !attribute->is_none() ? attribute_path(item, attribute->str()) : item;
    if (!x.is_number() || !total.is_number()) eval_fail("unsupported operand type(s) for +: '", total.type_name(), "' and '", x.type_name(), "'");
    total = total.is_float() || x.is_float() ? Value::number(total.as_double() + x.as_double())
                                             : Value::integer(total.as_int() + x.as_int());
  }
  return total;
}

Value min_max(const Value& v, const CallArgs& a, bool want_max) {
  ValueList items = v.iterate();
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  bool case_sensitive = flag(a, 0, "case_sensitive", false);
  const Value* attribute = a.get(1, "attribute");
  auto key = [&](const Value& x) {
    return sort_key(attribute && !attribute->is_none() ? attribute_path(x, attribute->str()) : x, case_sensitive);
  };
  const Value* best = &items[0];
  for (const auto& item : items)
    if (want_max ? python_less(key(*best), key(item)) : python_less(key(item), key(*best))) best = &item;
  return *best;
}
Value f_max(const Value& v, const CallArgs& a) { return min_max(v, a, true); }
Value f_min(const Value& v, const CallArgs& a) { return min_max(v, a, false); }

Value f_unique(const Value& v, const CallArgs& a) {
  bool case_sensitive = flag(a, 0, "case_sensitive", false);
  const Value* attribute = a.get(1, "attribute");
  ValueList out, seen;
  for (const auto& item : v.iterate()) {
    Value key = sort_key(attribute && !attribute->is_none() ? attribute_path(item, attribute->str()) : item, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return s.equals(key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::generator(std::move(out));
}

Value f_wordcount(const Value& v, const CallArgs&) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : string_of(v)) {
    auto u = static_cast<unsigned char>(c);
    bool word_char = std::isalnum(u) || c == '_' || u >= 0x80;
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::integer(words);
}

Value f_tojson(const Value& v, const CallArgs& a) {
  JsonDumpOptions o;
  if (const Value* indent = a.get(0, "indent"); indent && !indent->is_none()) {
    o.indent = true;
    o.indent_unit = indent->is_string() ? indent->as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, indent->as_int())), ' ');
    o.item_separator = ",";
  }
  if (const Value* ensure_ascii = a.get_keyword("ensure_ascii")) o.ensure_ascii = ensure_ascii->truthy();
  if (const Value* sep = a.get(1, "separators"); sep && !sep->is_none()) {
    if (!sep->is_list() || sep->as_list().size() != 2) eval_fail("tojson separators must be an (item, key) pair");
    o.item_separator = sep->as_list()[0].str();
    o.key_separator = sep->as_list()[1].str();
  }
  o.sort_keys = flag(a, 2, "sort_keys", false);
  return Value::string(json_dumps(v, o));
}

// select/reject(test, args...), selectattr/rejectattr(attribute, test, args...).
Value select_items(const Value& v, const CallArgs& a, bool by_attribute, bool keep) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) attribute = required(a, next++, "attribute").str();
  std::string test;
  if (next < a.positional.size()) test = a.positional[next++].str();
  CallArgs test_args;
  test_args.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(std::min(next, a.positional.size())),
                              a.positional.end());
  ValueList out;
  if (!v.truthy()) return Value::generator({});  // jinja2 skips a falsy input (None) entirely
  for (const auto& item : v.iterate()) {
    Value x = by_attribute ? attribute_path(item, attribute) : item;
    bool ok = test.empty() ? x.truthy() : apply_test(test, x, test_args);
    if (ok == keep) out.push_back(item);
  }
  return Value::generator(std::move(out));
}
Value f_select(const Value& v, const CallArgs& a) { return select_items(v, a, false, true); }
Value f_reject(const Value& v, const CallArgs& a) { return select_items(v, a, false, false); }
Value f_selectattr(const Value& v, const CallArgs& a) { return select_items(v, a, true, true); }
Value f_rejectattr(const Value& v, const CallArgs& a) { return select_items(v, a, true, false); }

Value f_map(const Value& v, const CallArgs& a) {
  ValueList out;
  if (!v.truthy()) return Value::generator({});  // jinja2 skips a falsy input (None) entirely
  if (const Value* attribute = a.get_keyword("attribute")) {
    const Value* fallback = a.get_keyword("default");
    for (const auto& item : v.iterate()) {
      Value x = attribute_path(item, attribute->str());
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    }
    return Value::generator(std::move(out));
  }
  if (a.positional.empty()) eval_fail("map requires a filter name or attribute=");
  std::string filter = a.positional[0].str();
  CallArgs filter_args;
  filter_args.positional.assign(a.positional.begin() + 1, a.positional.end());
  filter_args.keyword = a.keyword;
  for (const auto& item : v.iterate()) out.push_back(apply_filter(filter, item, filter_args));
  return Value::generator(std::move(out));
}

const std::unordered_map<std::string_view, Filter>& filters() {
  static const std::unordered_map<std::string_view, Filter> table = {
      {"abs", f_abs},         {"attr", f_attr},           {"batch", f_batch},     {"capitalize", f_capitalize},
      {"count", f_length},    {"d", f_default},           {"default", f_default}, {"dictsort", f_dictsort},
      {"e", f_escape},        {"escape", f_escape},       {"first", f_first},     {"float", f_float},
      {"forceescape", f_forceescape}, {"indent", f_indent},    {"int", f_int},         {"items", f_items},
      {"join", f_join},       {"last", f_last},           {"length", f_length},   {"list", f_list},
      {"lower", f_lower},     {"map", f_map},             {"max", f_max},         {"min", f_min},
      {"reject", f_reject},   {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
      {"round", f_round},     {"safe", f_safe},           {"select", f_select},   {"selectattr", f_selectattr},
      {"sort", f_sort},       {"string", f_string},       {"sum", f_sum},         {"title", f_title},
      {"tojson", f_tojson},   {"trim", f_trim},           {"unique", f_unique},   {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  return table;
}

// ----- tests -----

const Value& test_arg(const CallArgs& a) { return required(a, 0, "other"); }

bool t_defined(const Value& v, const CallArgs&) { return !v.is_undefined(); }
bool t_undefined(const Value& v, const CallArgs&) { return v.is_undefined(); }
bool t_none(const Value& v, const CallArgs&) { return v.is_none(); }
bool t_boolean(const Value& v, const CallArgs&) { return v.is_bool(); }
bool t_true(const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_string(const Value& v, const CallArgs&) { return v.is_string(); }
bool t_number(const Value& v, const CallArgs&) { return v.is_number(); }
bool t_integer(const Value& v, const CallArgs&) { return v.is_int(); }
bool t_float(const Value& v, const CallArgs&) { return v.is_float(); }
bool t_mapping(const Value& v, const CallArgs&) { return v.is_dict(); }
bool t_iterable(const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }
bool t_sequence(const Value& v, const CallArgs&) {
  return v.is_string() || (v.is_list() && !v.is_generator()) || v.is_dict() || v.is_undefined();
}
bool t_callable(const Value& v, const CallArgs&) { return v.is_function(); }
bool t_lower(const Value& v, const CallArgs& a) { return get_attribute(Value::string(v.str()), "islower").call(a).truthy(); }
bool t_upper(const Value& v, const CallArgs& a) { return get_attribute(Value::string(v.str()), "isupper").call(a).truthy(); }
bool t_escaped(const Value&, const CallArgs&) { return false; }
// Python's `value % num == 0` for ints and floats.
bool divisible(const Value& v, const Value& num) {
  if (!v.is_number() || !num.is_number())
    eval_fail("unsupported operand type(s) for %: '", v.type_name(), "' and '", num.type_name(), "'");
  if (num.as_double() == 0) eval_fail("integer division or modulo by zero");
  if (v.is_float() || num.is_float()) return std::fmod(v.as_double(), num.as_double()) == 0;
  return v.as_int() % num.as_int() == 0;
}
bool t_even(const Value& v, const CallArgs&) { return divisible(v, Value::integer(2)); }
bool t_odd(const Value& v, const CallArgs&) {
  if (!v.is_number()) eval_fail("unsupported operand type(s) for %: '", v.type_name(), "' and 'int'");
  return v.is_float() ? std::fabs(std::fmod(v.as_double(), 2.0)) == 1.0 : v.as_int() % 2 != 0;
}
bool t_divisibleby(const Value& v, const CallArgs& a) { return divisible(v, required(a, 0, "num")); }
bool t_eq(const Value& v, const CallArgs& a) { return v.equals(test_arg(a)); }
bool t_ne(const Value& v, const CallArgs& a) { return !v.equals(test_arg(a)); }
bool t_lt(const Value& v, const CallArgs& a) { return python_less(v, test_arg(a)); }
bool t_gt(const Value& v, const CallArgs& a) { return python_less(test_arg(a), v); }
bool t_le(const Value& v, const CallArgs& a) { return !python_less(test_arg(a), v); }
bool t_ge(const Value& v, const CallArgs& a) { return !python_less(v, test_arg(a)); }
bool t_in(const Value& v, const CallArgs& a) {
  const Value& seq = required(a, 0, "seq");
  if (seq.is_string()) return v.is_string() && seq.as_string().find(v.as_string()) != std::string::npos;
  if (seq.is_dict()) return seq.as_dict().find(v) != nullptr;
  for (const auto& x : seq.iterate())
    if (x.equals(v)) return true;
  return false;
}
bool t_sameas(const Value& v, const CallArgs& a) {
  const Value& o = test_arg(a);
  return v.kind() == o.kind() && v.equals(o);
}
bool t_filter(const Value& v, const CallArgs&) { return v.is_string() && has_filter(v.as_string()); }
bool t_test(const Value& v, const CallArgs&);

const std::unordered_map<std::string_view, Test>& tests() {
  static const std::unordered_map<std::string_view, Test> table = {
      {"boolean", t_boolean},   {"callable", t_callable}, {"defined", t_defined},   {"divisibleby", t_divisibleby},
      {"eq", t_eq},             {"equalto", t_eq},        {"==", t_eq},             {"escaped", t_escaped},
      {"even", t_even},         {"false", t_false},       {"filter", t_filter},     {"float", t_float},
      {"ge", t_ge},             {">=", t_ge},             {"gt", t_gt},             {">", t_gt},
      {"greaterthan", t_gt},    {"in", t_in},             {"integer", t_integer},   {"iterable", t_iterable},
      {"le", t_le},             {"<=", t_le},             {"lower", t_lower},       {"lt", t_lt},
      {"<", t_lt},              {"lessthan", t_lt},       {"mapping", t_mapping},   {"ne", t_ne},
      {"!=", t_ne},             {"none", t_none},         {"number", t_number},     {"odd", t_odd},
      {"sameas", t_sameas},     {"sequence", t_sequence}, {"string", t_string},     {"test", t_test},
      {"true", t_true},         {"undefined", t_undefined}, {"upper", t_upper},
  };
  return table;
}

bool t_test(const Value& v, const CallArgs&) { return v.is_string() && tests().count(v.as_string()) > 0; }

}  // namespace

bool has_filter(std::string_view name) { return filters().count(name) > 0; }
bool has_test(std::string_view name) { return tests().count(name) > 0; }

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) eval_fail("no filter named '", name, "'");
  return it->second(input, args);
}

bool apply_test(std::string_view name, const Value& input, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) eval_fail("no test named '", name, "'");
  return it->second(input, args);
}

}  // namespace wick::chat::jinja
