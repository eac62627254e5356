// WordPiece model (HF models::wordpiece): greedy longest-match-first with a continuing-subword prefix.
#include "wick/tokenizer/model.h"
#include "wick/tokenizer/unicode.h"
#include "wick/tokenizer/vocab.h"

namespace wick::tok {
namespace {

class WordPiece : public Model {
 public:
  WordPiece(const json& j, const std::string& where) {
    vocab_ = Vocab::from_json(require_field(j, "vocab", where), where + ".vocab");
    unk_ = value_or<std::string>(j, "unk_token", "[UNK]", where);
    prefix_ = value_or<std::string>(j, "continuing_subword_prefix", "##", where);
    max_chars_ = value_or<size_t>(j, "max_input_chars_per_word", 100, where);
    auto id = vocab_.find(unk_);
    WICK_CHECK(id, where, ".unk_token: '", unk_, "' is not in the vocabulary");
    unk_id_ = *id;
  }

  void tokenize(std::string_view word, std::vector<int32_t>& ids) const override {
    if (word.empty()) return;
    size_t chars = 0;
    for (size_t i = 0; i < word.size(); i += utf8_sequence_length(static_cast<unsigned char>(word[i]))) ++chars;
    if (chars > max_chars_) {
      ids.push_back(unk_id_);
      return;
    }
    std::vector<int32_t> sub;
    std::string candidate;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      std::optional<int32_t> found;
      while (start < end) {
        candidate.clear();
        if (start > 0) candidate += prefix_;
        candidate.append(word.substr(start, end - start));
        if ((found = vocab_.find(candidate))) break;
        do --end;  // back off one whole character
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) {
        ids.push_back(unk_id_);
        return;
      }
      sub.push_back(*found);
      start = end;
    }
    ids.insert(ids.end(), sub.begin(), sub.end());
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  int32_t id_end() const override { return vocab_.id_end(); }
  std::optional<std::string> unk_token() const override { return unk_; }

 private:
  Vocab vocab_;
  std::string unk_, prefix_;
  size_t max_chars_ = 100;
  int32_t unk_id_ = 0;
};

}  // namespace

std::unique_ptr<Model> make_wordpiece(const json& j, const std::string& where) {
  return std::make_unique<WordPiece>(j, where);
}

}  // namespace wick::tok
