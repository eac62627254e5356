// Pre-tokenizers of HF tokenizer.json ("pre_tokenizer" field): split normalized text into words.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "wick/tokenizer/json_util.h"

namespace wick::tok {

// One piece of text on its way to the model. `at_start` is true when the piece begins at the
// start of the original input (Metaspace's prepend_scheme "first" depends on it).
struct Piece {
  std::string text;
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece by its sub-pieces; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
  static std::unique_ptr<PreTokenizer> from_json(const json& j, const std::string& where);
};

// How a split keeps the delimiters it finds (HF SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// A match list that covers the whole text: [start, end) and whether it is a delimiter match.
struct Span {
  size_t start, end;
  bool is_match;
};
// Appends the sub-pieces of `piece` given its spans, applying `behavior`.
void split_piece(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior, std::vector<Piece>& out);

// GPT-2's byte <-> unicode-character table used by ByteLevel: the byte a table character stands
// for, or -1 when the code point is not one of the 256 table characters.
int char_to_byte(char32_t c);

}  // namespace wick::tok
