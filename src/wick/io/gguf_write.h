// Writing GGUF version 3 files (the layout gguf.h reads), and quoting file text in error messages.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wick/io/gguf.h"

namespace wick::io {

// One tensor to write: `shape` in PyTorch order (outermost first), `data` the bytes of its `type`
// (nbytes of them), valid during the call.
struct GgufTensorToWrite {
  std::string name;
  ggml::GgmlType type = ggml::GgmlType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Writes a GGUF version 3 file atomically (see write_file_atomic): the metadata in the given order,
// then the tensor table and data, each tensor aligned to `general.alignment` (32 when the metadata
// does not set it). Sizes and types are checked before anything is written.
void save_gguf(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
               const std::vector<GgufTensorToWrite>& tensors);

// llama.cpp's converter's q/k row permutation (Hugging Face row order to the GGUF's), for writing
// llama weights: the inverse of unpermute_qk_rows_bytes (gguf_model.h).
void permute_qk_rows_bytes(uint8_t* data, int64_t n_head, int64_t rows, size_t row_bytes);

// Metadata values as save_gguf writes them.
GgufValue gguf_string(std::string s);
GgufValue gguf_u32(uint32_t v);
GgufValue gguf_f32(float v);

// `s` for an error message: printable ASCII as is, every other byte as \xNN (a NUL or a control
// byte from a corrupt file would cut or garble the message), cut after `max_bytes` bytes with "...".
std::string escape_bytes(std::string_view s, size_t max_bytes = 64);

}  // namespace wick::io
