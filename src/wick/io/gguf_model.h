// What a GGUF file means for a Hugging Face-style model: tensor names, config, tokenizer data,
// and llama.cpp's q/k row permutation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wick/io/gguf.h"
#include "wick/io/hf_config.h"

namespace wick::io {

// GGUF tensor name → Hugging Face name for the llama-style architectures (llama, qwen2, mistral):
// "token_embd.weight" → "model.embed_tokens.weight", "blk.3.attn_q.weight" →
// "model.layers.3.self_attn.q_proj.weight", "output.weight" → "lm_head.weight", ...
// std::nullopt for names with no HF counterpart (e.g. llama3's "rope_freqs.weight").
std::optional<std::string> gguf_to_hf_name(std::string_view gguf_name);
// The inverse, for the same set of names.
std::optional<std::string> hf_to_gguf_name(std::string_view hf_name);

// `general.architecture` and the `{arch}.*` hyper-parameters, as config.json fields.
// Supported: llama, qwen2 (throws wick::Error naming the architecture otherwise).
// vocab_size comes from `{arch}.vocab_size` or the token list; tie_word_embeddings is true when the
// file has no output.weight; bos/eos/pad ids from the tokenizer keys.
ModelConfig model_config_from_gguf(const GgufFile& file);

// Whether llama.cpp's converter permuted the q/k projection rows of this architecture
// (llama and mistral: yes; qwen2: no).
bool gguf_qk_rows_permuted(std::string_view architecture);

// Undoes llama.cpp's q_proj/k_proj row permutation (convert_hf_to_gguf.py LlamaModel.permute:
// w.reshape(n_head, 2, rows/n_head/2, ...).swapaxes(1, 2)), restoring HF row order so that
// rotate_half RoPE (pairs i and i + head_dim/2) applies. `data` holds `rows` rows of `cols` floats,
// row-major, rewritten in place. Pass n_head = num_attention_heads for q_proj and
// num_key_value_heads for k_proj (the converter uses the kv head count for k).
void unpermute_qk_rows(float* data, int64_t n_head, int64_t rows, int64_t cols);
// The same on whole rows of raw bytes (e.g. still-quantized rows, row_bytes each).
void unpermute_qk_rows_bytes(uint8_t* data, int64_t n_head, int64_t rows, size_t row_bytes);

// A GGUF tensor as Hugging Face holds it: dequantized to f32 and, when the architecture's q/k rows
// were permuted (gguf_qk_rows_permuted), blk.N.attn_q / attn_k weights and biases restored to HF
// row order using the file's head counts.
std::vector<float> gguf_tensor_f32_hf_order(const GgufFile& file, std::string_view gguf_name);
// The same tensor's raw bytes (still quantized), its rows in Hugging Face order.
std::vector<uint8_t> gguf_tensor_bytes_hf_order(const GgufFile& file, std::string_view gguf_name);
// Whether the file holds that tensor's rows in Hugging Face order already (its bytes can be used
// where they lie).
bool gguf_tensor_in_hf_order(const GgufFile& file, std::string_view gguf_name);

// The tokenizer stored in a GGUF, as plain data (the tokenizer library builds a tokenizer from it).
struct GgufTokenizerData {
  std::string model;  // tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece), "bert", ...
  std::string pre;    // tokenizer.ggml.pre: pre-tokenizer name ("smollm", "qwen2", "llama-bpe", ...)
  std::vector<std::string> tokens;
  std::vector<float> scores;       // empty when absent
  std::vector<int32_t> token_type;  // empty when absent (1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte)
  std::vector<std::string> merges;  // "a b" pairs, empty when absent
  std::optional<int64_t> bos_token_id, eos_token_id, unknown_token_id, separator_token_id,
      padding_token_id, eot_token_id, eom_token_id;
  std::optional<bool> add_bos_token, add_eos_token, add_space_prefix;
  std::optional<std::string> chat_template;
};

// Reads the tokenizer.* keys; throws wick::Error naming the key when one has the wrong type or a
// token id is outside the token list.
GgufTokenizerData gguf_tokenizer_data(const GgufFile& file);

}  // namespace wick::io
