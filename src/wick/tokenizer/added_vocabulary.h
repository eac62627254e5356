// Added tokens (tokenizer.json "added_tokens"): matched in the text before the model runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// A piece of the input: either an added token (id >= 0) or text for the normal pipeline.
struct TextSpan {
  size_t start, end;
  int32_t added_id;  // -1 for ordinary text
};

class AddedVocabulary {
 public:
  void add(AddedToken token);
  // Builds the matchers; normalized tokens are matched in their normalized form.
  void build(const Normalizer* normalizer);

  // Leftmost-longest matches of the tokens with normalized == `normalized` (HF find_matches).
  std::vector<TextSpan> split(std::string_view text, bool normalized) const;

  const AddedToken* by_id(int32_t id) const;
  std::optional<int32_t> find(std::string_view content) const;
  int32_t id_end() const { return id_end_; }

 private:
  struct Matcher {
    // first byte -> indices into tokens_ sorted by content length, longest first
    std::vector<std::vector<size_t>> by_first_byte = std::vector<std::vector<size_t>>(256);
    std::vector<std::string> contents;  // matched form, parallel to tokens_
    bool empty = true;
  };
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t> by_content_;
  Matcher raw_, normalized_;
  int32_t id_end_ = 0;
};

}  // namespace wick::tok
