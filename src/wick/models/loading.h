// Loading a model with everything it ships with: a decoder's tokenizer, chat template, EOS ids and
// generation defaults; an encoder's tokenizer and sentence-transformers settings. PATH is a Hugging
// Face folder, a .gguf file or a Hub id already in the local cache.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wick/chat/template.h"
#include "wick/io/hf_config.h"
#include "wick/io/sentence_transformers.h"
#include "wick/models/decoder.h"
#include "wick/models/encoder.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::models {

struct LoadOptions {
  Device device = Device::cpu();
  Dtype dtype = Dtype::F32;
  WeightStorage storage;  // decoders: dense, the GGUF's own blocks, or quantized at load
  // Also load the tokenizer and chat template (generation and chat need them; logits and merging
  // do not, and skip parsing a large tokenizer.json).
  bool with_tokenizer = true;
};

struct LoadedDecoder {
  DecoderModel model;
  std::string path;  // the resolved file or folder
  // Every id that ends generation: config.json's then generation_config.json's, or the GGUF's
  // eos/eot/eom tokens.
  std::vector<int32_t> eos_ids{};
  // generation_config.json (sampling defaults: see models::sampling_defaults); absent for a GGUF,
  // or a folder without the file.
  std::optional<io::GenerationConfig> generation{};
  // Absent when loading failed (a model can still train on token ids); the require_* functions
  // then throw the error that loading raised.
  std::optional<tok::Tokenizer> tokenizer{};
  std::optional<chat::ChatTemplateConfig> chat_template{};
  std::string tokenizer_error{}, chat_template_error{};

  const tok::Tokenizer& require_tokenizer() const;
  const chat::ChatTemplateConfig& require_chat_template() const;
};

// A decoder from a HF folder, a .gguf file or a Hub id in the cache.
LoadedDecoder load_decoder(const std::string& path, const LoadOptions& options);

struct LoadedEncoder {
  EncoderModel model;
  std::string path;  // the resolved folder
  std::optional<io::SentenceTransformersConfig> sentence_transformers{};  // absent: not a sentence-transformers folder
  std::optional<tok::Tokenizer> tokenizer{};  // absent when loading failed (embedding token ids needs none)
  std::string tokenizer_error{};

  const tok::Tokenizer& require_tokenizer() const;
  // The pooling its sentence-transformers config names (mean without one); fails on modes wick lacks.
  Pooling default_pooling() const;
  // Whether its sentence-transformers pipeline ends with Normalize (true without a config).
  bool default_normalize() const;
  // The longest input: sentence-transformers' max_seq_length (512 without one), at most the position table.
  int64_t max_length() const;
};

// An encoder (BERT, MPNet) from a HF folder or a Hub id in the cache.
LoadedEncoder load_encoder(const std::string& path, const LoadOptions& options);

// The tokenizer of PATH: a tokenizer.json, a folder holding one, a .gguf file or a model resolved
// as load_decoder does.
tok::Tokenizer load_tokenizer(const std::string& path);
// The chat template and its special tokens: from a folder's tokenizer_config.json (or the one beside
// a tokenizer.json), or a GGUF's tokenizer.chat_template.
chat::ChatTemplateConfig load_chat_template(const std::string& path);

}  // namespace wick::models
