// wick's tokenizer: Hugging Face tokenizer.json semantics (normalizer, added tokens, pre-tokenizer,
// BPE/WordPiece model, post-processor, decoder), token-for-token equal to the HF `tokenizers` library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wick/base/error.h"

namespace wick::tok {

class Normalizer;
class PreTokenizer;
class Model;
class PostProcessor;
class Decoder;
class AddedVocabulary;

// Tokenizer metadata as a GGUF file stores it (tokenizer.ggml.*), for Tokenizer::from_gguf.
struct GgufTokenizerData {
  std::string model;                 // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens, indexed by id
  std::vector<float> scores;         // tokenizer.ggml.scores (llama; may be empty)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "a b" (gpt2)
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false;              // tokenizer.ggml.add_bos_token
  bool add_eos = false;              // tokenizer.ggml.add_eos_token
  bool add_space_prefix = true;      // tokenizer.ggml.add_space_prefix (llama)
  std::string pre = "default";       // tokenizer.ggml.pre: "default", "gpt2", "llama-bpe", "qwen2", "smollm", ...
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json or a folder that holds one. Its tokenizer_config.json, when present,
  // names the bos/eos/pad/unk tokens. The special tokens that encode adds come from tokenizer.json's
  // post-processor only: the config's add_bos_token / add_eos_token do not change them, as in HF
  // tokenizers and transformers 5.x (checked: Mistral with add_eos_token=true still gives [1, 22557]).
  // Throws wick::Error naming the file and field on bad input.
  static Tokenizer from_file(const std::filesystem::path& path);
  // From the text of a tokenizer.json; `config_json` is the optional tokenizer_config.json text.
  static Tokenizer from_json_string(std::string_view tokenizer_json, std::string_view config_json = {},
                                    const std::string& source = "tokenizer.json");
  // From a parsed tokenizer.json (and optional tokenizer_config.json); `source` names it in errors.
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, const nlohmann::json* config,
                             const std::string& source);
  // The same with `model` in place of the one tokenizer.json's "model" field describes.
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, const nlohmann::json* config,
                             const std::string& source, std::unique_ptr<Model> model);
  // From GGUF metadata (see gguf_tokenizer.cpp): "gpt2" models get byte-level BPE with the split regex
  // llama.cpp picks from `pre`; "llama" models get SentencePiece-style BPE with merges rebuilt from
  // the scores (as transformers does). Tokenizes like the Hugging Face folder the GGUF came from.
  static Tokenizer from_gguf(const GgufTokenizerData& data);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Invalid UTF-8 in `text` is first replaced by U+FFFD. Truncation and padding settings of the
  // tokenizer.json are not applied here: callers truncate/pad explicitly (see truncation_max_length()).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Unknown ids are skipped, as HF does.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // One past the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  bool is_special(int32_t id) const;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  // tokenizer.json "truncation.max_length", when the file sets it (informational).
  std::optional<size_t> truncation_max_length() const { return truncation_max_length_; }

 private:
  Tokenizer();
  void encode_piece(const std::string& text, bool at_start, std::vector<int32_t>& ids) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<AddedVocabulary> added_;
  std::optional<int32_t> bos_id_, eos_id_, pad_id_, unk_id_;
  std::optional<size_t> truncation_max_length_;
};

// Incremental detokenization for streaming: feed ids one at a time and get the new text. It never
// returns a broken UTF-8 sequence, and the concatenation of all pieces (including finish())
// equals tokenizer.decode(all ids, skip_special_tokens) for byte-level and SentencePiece decoders
// (WordPiece's cleanup rewrites text across word boundaries, so there the pieces can differ).
class StreamingDecoder {
 public:
  StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  // The text this id completes; empty while a character is still incomplete.
  std::string step(int32_t id);
  // The remaining text once no more ids will come.
  std::string finish();

 private:
  std::optional<std::string> new_text() const;

  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids_[prefix_offset_, read_offset_) is context already emitted
  size_t read_offset_ = 0;
};

}  // namespace wick::tok
