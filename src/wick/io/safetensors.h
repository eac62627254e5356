// Reading and writing safetensors files (single files and sharded checkpoints), zero-copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wick/io/file_dtype.h"

namespace wick::io {

// One tensor inside a mapped file. `data` points into the mapping (no copy; it may be unaligned
// when a writer did not pad its header) and `owner` keeps that mapping alive.
struct TensorView {
  std::string name;
  FileDtype dtype = FileDtype::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;

  int64_t numel() const;
};

// The tensors of one safetensors file, or of a sharded checkpoint seen as a single name→tensor map.
// The header is fully validated when opening, before any tensor byte is touched.
class SafeTensors {
 public:
  // A single .safetensors file.
  static SafeTensors open(const std::string& path);
  // A sharded checkpoint: `model.safetensors.index.json` with a `weight_map` of tensor → shard file
  // (shard paths relative to the index's folder).
  static SafeTensors open_index(const std::string& index_path);
  // A Hugging Face model folder: its model.safetensors, else its model.safetensors.index.json.
  static SafeTensors open_dir(const std::string& dir);
  // Parses bytes already in memory; `owner` keeps them alive, `source` names them in errors.
  static SafeTensors parse(std::shared_ptr<const void> owner, const uint8_t* bytes, size_t size,
                           const std::string& source);

  // Throws wick::Error naming the tensor (and where it was looked for) when absent.
  const TensorView& get(std::string_view name) const;
  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  // Names in file order (by data offset; shard by shard for sharded checkpoints).
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  // The `__metadata__` map (for sharded checkpoints: the index's `metadata`, values as text).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The file (or index) this was opened from.
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to be written: `data` must hold exactly numel(shape) * file_dtype_size(dtype) bytes,
// little-endian, and stay valid during the call.
struct TensorToWrite {
  std::string name;
  FileDtype dtype = FileDtype::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// The complete file bytes the reference writer would produce: header JSON with `__metadata__`
// first, tensors ordered by dtype (largest first, as the reference does) then name, contiguous
// data, header padded with spaces to a multiple of 8 bytes so every tensor is 8-byte aligned.
std::vector<uint8_t> serialize_safetensors(const std::vector<TensorToWrite>& tensors,
                                           const std::map<std::string, std::string>& metadata = {});

// Writes serialize_safetensors(...) to `path` atomically (temporary file in the same folder,
// fsync, rename), so a reader never sees a half-written file and a failed write leaves no debris.
void save_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Writes the concatenation of `chunks` to `path` atomically (see save_safetensors).
struct ByteRange {
  const uint8_t* data;
  size_t size;
};
void write_file_atomic(const std::string& path, const std::vector<ByteRange>& chunks);
// The same for one text (a JSON or SVG file).
void write_text_atomic(const std::string& path, std::string_view text);

}  // namespace wick::io
