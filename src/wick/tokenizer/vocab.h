// A token <-> id table shared by the models.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Vocab {
 public:
  // From a {"token": id, ...} object.
  static Vocab from_json(const json& j, const std::string& where) {
    WICK_CHECK(j.is_object(), where, ": expected an object of token -> id");
    Vocab v;
    v.to_id_.reserve(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::optional<int32_t> id = as_token_id(it.value());
      if (!id) require_token_id(it.value(), str_cat(where, "['", it.key(), "']"));  // throws, naming the token
      v.add(it.key(), *id, where);
    }
    return v;
  }
  void add(const std::string& token, int32_t id, const std::string& where) {
    WICK_CHECK(id >= 0 && id <= kMaxTokenId, where, ": id ", id, " of token '", token, "' is out of range [0, ",
               kMaxTokenId, "]");
    to_id_[token] = id;
    if (static_cast<size_t>(id) >= to_token_.size()) {
      to_token_.resize(static_cast<size_t>(id) + 1);
      present_.resize(static_cast<size_t>(id) + 1, false);
    }
    to_token_[static_cast<size_t>(id)] = token;
    present_[static_cast<size_t>(id)] = true;
  }
  std::optional<int32_t> find(std::string_view token) const {
    auto it = to_id_.find(token);
    if (it == to_id_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= to_token_.size() || !present_[static_cast<size_t>(id)]) return nullptr;
    return &to_token_[static_cast<size_t>(id)];
  }
  int32_t id_end() const { return static_cast<int32_t>(to_token_.size()); }

 private:
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> to_id_;
  std::vector<std::string> to_token_;
  std::vector<bool> present_;
};

}  // namespace wick::tok
