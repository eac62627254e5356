// Tokenization models of HF tokenizer.json ("model" field): a word -> token ids (BPE, WordPiece).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wick/tokenizer/json_util.h"
#include "wick/tokenizer/vocab.h"

namespace wick::tok {

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized word.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& ids) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // nullptr when the id is not in the vocabulary.
  virtual const std::string* id_to_token(int32_t id) const = 0;
  // One past the largest id of the vocabulary.
  virtual int32_t id_end() const = 0;
  virtual std::optional<std::string> unk_token() const = 0;

  static std::unique_ptr<Model> from_json(const json& j, const std::string& where);
  // A BPE model from its options (tokenizer.json's "model" object; its vocab and merges, if any,
  // are not read), a vocabulary and merges in rank order: what from_json builds, without the JSON
  // of a large vocabulary in between.
  static std::unique_ptr<Model> bpe(const json& options, Vocab vocab,
                                    const std::vector<std::pair<std::string, std::string>>& merges,
                                    const std::string& where);
};

// One merge of tokenizer.json's "a b" form as its two tokens; `where` and `i` name it in the error.
std::pair<std::string, std::string> split_merge(const std::string& s, const std::string& where, size_t i);

}  // namespace wick::tok
