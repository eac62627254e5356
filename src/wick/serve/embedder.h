// Sentence embeddings for POST /v1/embeddings, computed as `wick embed` computes them: the model's
// sentence-transformers pooling and normalisation, inputs truncated to its max_seq_length (keeping a
// closing special token), batches of 32 padded with an attention mask. One batch at a time.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "wick/models/loading.h"

namespace wick::serve {

class Embedder {
 public:
  static constexpr size_t kBatchSize = 32;  // as `wick embed --batch-size`'s default

  // A sentence-transformers (or plain BERT/MPNet) model (models::load_encoder); it needs its tokenizer.
  explicit Embedder(models::LoadedEncoder encoder);

  struct Result {
    std::vector<std::vector<float>> vectors;
    int64_t tokens = 0;  // after truncation, special tokens included
  };
  // Each input is a text or already tokenized ids (ids outside the vocabulary throw wick::Error).
  Result embed(const std::vector<std::variant<std::string, std::vector<int32_t>>>& inputs);

  int64_t dimension() const { return encoder_.model.config().hidden_size; }
  int64_t max_length() const { return max_length_; }

 private:
  models::LoadedEncoder encoder_;
  const tok::Tokenizer* tokenizer_;
  models::Pooling pooling_;
  bool normalize_;
  int64_t max_length_;
  std::mutex mutex_;
};

}  // namespace wick::serve
