// JSONL training examples: tokenisation and loss masks.
#include "wick/train/data.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "wick/core/error.h"

namespace wick::train {

namespace {

using json = nlohmann::ordered_json;

std::vector<int32_t> encode(const DataContext& c, const std::string& text, bool special, const std::string& where) {
  WICK_CHECK(c.tokenizer != nullptr, where, ": text examples need a tokenizer");
  return c.tokenizer->encode(text, special);
}

std::string render(const DataContext& c, const json& messages, bool generation_prompt, const std::string& where) {
  WICK_CHECK(c.chat != nullptr, where, ": {\"messages\"} examples need the model's chat template");
  return chat::ChatTemplate(c.chat->chat_template).render(messages, generation_prompt, c.chat->options);
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
    e.ids = j["input_ids"].get<std::vector<int32_t>>();
    e.labels = j.contains("labels") ? j["labels"].get<std::vector<int32_t>>() : e.ids;
    WICK_CHECK(e.labels.size() == e.ids.size(), where, ": labels has ", e.labels.size(), " entries but input_ids has ",
               e.ids.size());
  } else if (j.contains("text")) {
    e.ids = encode(c, j["text"].get<std::string>(), true, where);
    if (c.eos_id && (e.ids.empty() || e.ids.back() != *c.eos_id)) e.ids.push_back(*c.eos_id);
    e.labels = e.ids;
  } else if (j.contains("prompt") && j.contains("completion")) {
    std::vector<int32_t> prompt = encode(c, j["prompt"].get<std::string>(), true, where);
    std::vector<int32_t> completion = encode(c, j["completion"].get<std::string>(), false, where);
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
    json j = json::parse(line, nullptr, false);
    WICK_CHECK(!j.is_discarded() && j.is_object(), where, ": not a JSON object");
    try {
      Example e = from_json(j, context, options, where);
      e.line = number;
      out.push_back(std::move(e));
    } catch (const json::exception& ex) {
      fail(where, ": ", ex.what());
    }
  }
  WICK_CHECK(!out.empty(), path, ": no examples");
  return out;
}

}  // namespace wick::train
