// Writing a decoder: a Hugging Face folder (config.json + model.safetensors) or a GGUF file.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wick/io/gguf.h"
#include "wick/models/decoder.h"

namespace wick::models {

// The special token ids a saved model's config.json names (generation stops at any eos id).
struct SpecialTokenIds {
  std::optional<int64_t> bos;
  std::vector<int64_t> eos;
  std::optional<int64_t> pad;
};

// save_decoder (decoder.h) with config.json naming `ids`.
void save_decoder(const DecoderModel& model, const std::string& dir, Dtype dtype, const SpecialTokenIds& ids);

// Writes `model` as a GGUF version 3 file that llama.cpp loads: general.architecture (llama or
// qwen2) and its hyper-parameters, `tokenizer_metadata` (the tokenizer.* keys, e.g. those of a GGUF
// base), and the weights under llama.cpp's names in `dtype` (norms and biases in f32, q/k rows in
// the converter's order for llama; RoPE scaling as rope_freqs.weight).
void save_decoder_gguf(const DecoderModel& model, const std::string& path, Dtype dtype,
                       const std::vector<std::pair<std::string, io::GgufValue>>& tokenizer_metadata,
                       const std::string& name);

}  // namespace wick::models
