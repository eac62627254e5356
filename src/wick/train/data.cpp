// JSONL training examples: tokenisation and loss masks.
#include "wick/train/data.h"

#include <algorithm>
#include <climits>
#include <map>
#include <numeric>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wick/base/error.h"

namespace wick::train {

namespace {

using json = nlohmann::ordered_json;

std::vector<int32_t> encode(const DataContext& c, const std::string& text, bool special, const std::string& where) {
  WICK_CHECK(c.tokenizer != nullptr, where, ": text examples need a tokenizer",
             c.tokenizer_error.empty() ? "" : "; the model's could not be loaded: " + c.tokenizer_error);
  return c.tokenizer->encode(text, special);
}

std::string render(const DataContext& c, const json& messages, bool generation_prompt, const std::string& where) {
  WICK_CHECK(c.chat != nullptr, where, ": {\"messages\"} examples need the model's chat template",
             c.chat_error.empty() ? "" : "; it could not be loaded: " + c.chat_error);
  return chat::ChatTemplate(c.chat->chat_template).render(messages, generation_prompt, c.chat->options);
}

const char* type_name(const json& j) {
  return j.is_string() ? "a string" : j.is_number() ? "a number" : j.is_boolean() ? "a boolean" : j.is_null() ? "null"
         : j.is_array() ? "an array" : "an object";
}

std::string string_field(const json& j, const char* key, const std::string& where) {
  const json& v = j[key];
  WICK_CHECK(v.is_string(), where, ": \"", key, "\" must be a string, got ", type_name(v));
  return v.get<std::string>();
}

std::vector<int32_t> ids_field(const json& j, const char* key, const std::string& where) {
  const json& v = j[key];
  WICK_CHECK(v.is_array(), where, ": \"", key, "\" must be an array of token ids, got ", type_name(v));
  std::vector<int32_t> ids;
  for (size_t i = 0; i < v.size(); ++i) {
    WICK_CHECK(v[i].is_number_integer() && v[i].get<int64_t>() >= INT32_MIN && v[i].get<int64_t>() <= INT32_MAX, where,
               ": \"", key, "\"[", i, "] must be an integer token id, got ", v[i].is_number_integer() ? v[i].dump() : type_name(v[i]));
    ids.push_back(v[i].get<int32_t>());
  }
  return ids;
}

// The first byte offset where `s` is not valid UTF-8; npos when it all is.
size_t invalid_utf8_at(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return i;
    i += len;
  }
  return std::string::npos;
}

// The line as a JSON object, or an error saying how it is not one.
json parse_line(const std::string& line, const std::string& where) {
  size_t bad = invalid_utf8_at(line);
  WICK_CHECK(bad == std::string::npos, where, ": not valid UTF-8 (byte ", bad + 1, " of the line)");
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    // nlohmann reports the byte after the last one read: at the end, the line stopped inside a value.
    if (e.byte >= line.size()) fail(where, ": incomplete JSON (the line ends inside a value; was the file cut short?)");
    fail(where, ": invalid JSON at column ", e.byte);
  }
  WICK_CHECK(j.is_object(), where, ": expected a JSON object, got ", type_name(j));
  return j;
}

// Token count of the common prefix of a and b.
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

Example from_json(const json& j, const DataContext& c, const DataOptions& o, const std::string& where) {
  Example e;
  if (j.contains("input_ids")) {
    e.ids = ids_field(j, "input_ids", where);
    e.labels = j.contains("labels") ? ids_field(j, "labels", where) : e.ids;
    WICK_CHECK(e.labels.size() == e.ids.size(), where, ": labels has ", e.labels.size(), " entries but input_ids has ",
               e.ids.size());
  } else if (j.contains("text")) {
    e.ids = encode(c, string_field(j, "text", where), true, where);
    if (c.eos_id && (e.ids.empty() || e.ids.back() != *c.eos_id)) e.ids.push_back(*c.eos_id);
    e.labels = e.ids;
  } else if (j.contains("prompt") && j.contains("completion")) {
    std::vector<int32_t> prompt = encode(c, string_field(j, "prompt", where), true, where);
    std::vector<int32_t> completion = encode(c, string_field(j, "completion", where), false, where);
    if (c.eos_id) completion.push_back(*c.eos_id);
    e.ids = prompt;
    e.ids.insert(e.ids.end(), completion.begin(), completion.end());
    e.labels = o.train_on_prompt ? prompt : std::vector<int32_t>(prompt.size(), -100);
    e.labels.insert(e.labels.end(), completion.begin(), completion.end());
  } else if (j.contains("messages")) {
    const json& messages = j["messages"];
    WICK_CHECK(messages.is_array() && !messages.empty(), where, ": messages must be a non-empty array");
    e.ids = encode(c, render(c, messages, false, where), false, where);
    e.labels.assign(e.ids.size(), -100);
    if (o.train_on_prompt) e.labels = e.ids;
    // Each assistant turn: the tokens between the conversation rendered up to its opening and the
    // conversation rendered through it.
    for (size_t i = 0; i < messages.size(); ++i) {
      WICK_CHECK(messages[i].is_object() && messages[i].contains("role"), where, ": message ", i, " has no role");
      if (messages[i]["role"] != "assistant") continue;
      json before = json::array(), through = json::array();
      for (size_t k = 0; k < i; ++k) before.push_back(messages[k]);
      for (size_t k = 0; k <= i; ++k) through.push_back(messages[k]);
      auto start_ids = encode(c, render(c, before, true, where), false, where);
      auto end_ids = encode(c, render(c, through, false, where), false, where);
      size_t start = common_prefix(start_ids, e.ids), end = common_prefix(end_ids, e.ids);
      for (size_t t = start; t < end; ++t) e.labels[t] = e.ids[t];
    }
  } else {
    fail(where, ": expected {\"text\"}, {\"prompt\", \"completion\"}, {\"messages\"} or {\"input_ids\"}");
  }
  if (int64_t(e.ids.size()) > o.max_length) {
    e.ids.resize(o.max_length);
    e.labels.resize(o.max_length);
  }
  WICK_CHECK(e.ids.size() >= 2, where, ": an example needs at least 2 tokens, got ", e.ids.size());
  // Position 0 is never a target (nothing predicts it).
  bool any = false;
  for (size_t t = 1; t < e.labels.size(); ++t) any = any || e.labels[t] != -100;
  WICK_CHECK(any, where, ": the example has no target tokens (after truncation to ", o.max_length, ")");
  return e;
}

}  // namespace

std::vector<Example> load_jsonl(const std::string& path, const DataContext& context, const DataOptions& options) {
  std::ifstream in(path);
  WICK_CHECK(in.good(), "cannot open training data ", path);
  std::vector<Example> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + ":" + std::to_string(number);
    json j = parse_line(line, where);
    try {
      Example e = from_json(j, context, options, where);
      e.line = number;
      out.push_back(std::move(e));
    } catch (const json::exception& ex) {
      // A type the checks above do not cover (e.g. inside "messages"): the library's text without its prefix.
      std::string what = ex.what();
      size_t bracket = what.find("] ");
      fail(where, ": ", bracket == std::string::npos ? what : what.substr(bracket + 2));
    }
  }
  WICK_CHECK(!out.empty(), path, ": no examples");
  return out;
}

std::vector<Example> pack_examples(const std::vector<Example>& examples, int64_t length) {
  WICK_CHECK(length >= 1, "pack_examples: the row length must be positive, got ", length);
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), size_t(0));
  // Longest first; equal lengths keep the file's order.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return examples[a].ids.size() > examples[b].ids.size(); });
  std::vector<std::vector<size_t>> rows;
  std::multimap<int64_t, size_t> room;  // free tokens -> row
  for (size_t e : order) {
    int64_t n = int64_t(examples[e].ids.size());
    WICK_CHECK(examples[e].starts.empty(), "pack_examples: the row of line ", examples[e].line, " is packed already");
    WICK_CHECK(n <= length, "pack_examples: the example of line ", examples[e].line, " has ", n,
               " tokens, more than a row of ", length);
    auto fit = room.lower_bound(n);  // the fullest row it fits in
    size_t row;
    int64_t left;
    if (fit == room.end()) {
      row = rows.size();
      rows.emplace_back();
      left = length;
    } else {
      row = fit->second;
      left = fit->first;
      room.erase(fit);
    }
    rows[row].push_back(e);
    if (left - n > 0) room.emplace(left - n, row);
  }
  // Rows in the order of their first example in the file, examples within a row likewise.
  for (auto& r : rows) std::sort(r.begin(), r.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.front() < b.front(); });
  std::vector<Example> packed;
  packed.reserve(rows.size());
  for (const auto& r : rows) {
    Example p;
    p.line = examples[r.front()].line;
    for (size_t e : r) {
      const Example& x = examples[e];
      p.starts.push_back(int32_t(p.ids.size()));
      p.ids.insert(p.ids.end(), x.ids.begin(), x.ids.end());
      p.labels.insert(p.labels.end(), x.labels.begin(), x.labels.end());
      if (p.starts.size() > 1 && !x.labels.empty()) p.labels[size_t(p.starts.back())] = -100;
    }
    packed.push_back(std::move(p));
  }
  return packed;
}

}  // namespace wick::train
