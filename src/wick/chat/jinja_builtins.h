// The Jinja builtins chat templates use: filters, tests, attribute/item access (with Python's str
// and dict methods), and the globals transformers provides (range, namespace, dict,
// raise_exception, strftime_now).
#pragma once

#include <string>
#include <string_view>

#include "wick/chat/jinja_value.h"

namespace wick::chat::jinja {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
Value apply_filter(std::string_view name, const Value& input, const CallArgs& args);
bool apply_test(std::string_view name, const Value& input, const CallArgs& args);

// `obj.name`: a bound method of str/dict, else the item, else Undefined.
Value get_attribute(const Value& object, const std::string& name);
// `obj[key]`: the item (negative list indices count from the end), else an attribute.
Value get_item(const Value& object, const Value& key);
// `obj[start:stop:step]` on strings (by character) and lists.
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// The global functions every template sees.
ValueDict make_globals();

}  // namespace wick::chat::jinja
