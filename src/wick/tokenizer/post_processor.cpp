// Post-processor implementations: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence.
#include "wick/tokenizer/post_processor.h"

namespace wick::tok {
namespace {

// The ids before and after the sequence.
class Wrap : public PostProcessor {
 public:
  Wrap(std::vector<int32_t> before, std::vector<int32_t> after) : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class Identity : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
};

class Sequence : public PostProcessor {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PostProcessor>> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : items_) p->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

// ["[CLS]", 101] as written by BertProcessing / RobertaProcessing.
int32_t token_pair_id(const json& j, const char* key, const std::string& where) {
  const json& v = require_field(j, key, where);
  WICK_CHECK(v.is_array() && v.size() == 2 && v[1].is_number_integer(), where, ".", key, ": expected [token, id]");
  return require_token_id(v[1], str_cat(where, ".", key, "[1]"));
}

std::unique_ptr<PostProcessor> template_from_json(const json& j, const std::string& where) {
  const json& single = require_field(j, "single", where);
  WICK_CHECK(single.is_array(), where, ".single: expected an array");
  const json& specials = j.contains("special_tokens") ? j["special_tokens"] : json::object();
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    std::string at = str_cat(where, ".single[", i, "]");
    const json& item = single[i];
    if (item.contains("Sequence")) {
      WICK_CHECK(!seen_sequence, at, ": the single template has more than one sequence");
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      std::string name = require_string(item["SpecialToken"], "id", at + ".SpecialToken");
      WICK_CHECK(specials.contains(name), at, ": special token '", name, "' is not in special_tokens");
      std::string special_at = str_cat(where, ".special_tokens['", name, "']");
      const json& ids = require_field(specials[name], "ids", special_at);
      WICK_CHECK(ids.is_array(), special_at, ".ids: expected an array, got ", ids.type_name());
      for (size_t k = 0; k < ids.size(); ++k)
        (seen_sequence ? after : before).push_back(require_token_id(ids[k], str_cat(special_at, ".ids[", k, "]")));
    } else {
      fail(at, ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}, got ", item.dump());
    }
  }
  return std::make_unique<Wrap>(std::move(before), std::move(after));
}

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::from_json(const json& j, const std::string& where) {
  std::string type = type_of(j, where);
  if (type == "TemplateProcessing") return template_from_json(j, where);
  if (type == "BertProcessing" || type == "RobertaProcessing")
    return std::make_unique<Wrap>(std::vector<int32_t>{token_pair_id(j, "cls", where)},
                                  std::vector<int32_t>{token_pair_id(j, "sep", where)});
  if (type == "ByteLevel") return std::make_unique<Identity>();  // only adjusts offsets, which wick does not report
  if (type == "Sequence") {
    const json& list = require_field(j, "processors", where);
    WICK_CHECK(list.is_array(), where, ".processors: expected an array");
    std::vector<std::unique_ptr<PostProcessor>> items;
    for (size_t i = 0; i < list.size(); ++i)
      items.push_back(from_json(list[i], str_cat(where, ".processors[", i, "]")));
    return std::make_unique<Sequence>(std::move(items));
  }
  fail(where, ": unknown post-processor type '", type, "' (supported: TemplateProcessing, BertProcessing, ",
       "RobertaProcessing, ByteLevel, Sequence)");
}

}  // namespace wick::tok
