// Element types of tensors stored in safetensors files, with their on-disk names and sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wick::io {

// Declared in the order of the reference implementation's Dtype enum (huggingface/safetensors),
// because its writer sorts tensors by that order (largest first) and ours matches it byte for byte.
enum class FileDtype : uint8_t {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

// "F32", "BF16", ... as written in safetensors headers.
std::string_view file_dtype_name(FileDtype dtype);
// Bytes per element.
size_t file_dtype_size(FileDtype dtype);
// Parses a header dtype string. Known-but-unsupported ones (F4, F6_E2M3, F6_E3M2: sub-byte
// elements) and unknown ones throw wick::Error naming the string; `context` prefixes the message.
FileDtype parse_file_dtype(std::string_view name, std::string_view context);

}  // namespace wick::io
