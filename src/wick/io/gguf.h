// Reading GGUF files (versions 2 and 3): metadata of every value type, tensor infos and
// zero-copy tensor views into a memory mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "wick/base/ggml_quants.h"
#include "wick/io/mapped_file.h"

namespace wick::io {

// On-disk metadata value type ids (gguf.h `enum gguf_type`).
enum class GgufValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);

struct GgufValue;
struct GgufArray {
  GgufValueType elem_type = GgufValueType::UINT8;
  std::vector<GgufValue> items;
};

// One metadata value. Integers are widened to 64 bits (unsigned ones kept unsigned), floats to
// double (exact for f32); `type` keeps the on-disk type. The as_* accessors convert between
// integer types when the value fits and throw wick::Error naming `what` (e.g. the key) otherwise.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
  bool is_string() const { return type == GgufValueType::STRING; }
  bool is_array() const { return type == GgufValueType::ARRAY; }

  int64_t as_int(std::string_view what) const;
  uint64_t as_uint(std::string_view what) const;
  double as_float(std::string_view what) const;  // any float or integer
  bool as_bool(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  const GgufArray& as_array(std::string_view what) const;
};

struct GgufTensor {
  std::string name;
  ggml::GgmlType type = ggml::GgmlType::F32;
  // PyTorch order (outermost first): the reverse of the innermost-first dims GGUF stores.
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // relative to the start of the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

// A parsed GGUF file. Everything is validated on open: header, every metadata value, tensor
// types and shapes, and every tensor's data range (aligned, inside the file, no overlap).
class GgufFile {
 public:
  static GgufFile open(const std::string& path);
  // Parses bytes already in memory; `owner` keeps them alive, `source` names them in errors.
  static GgufFile parse(std::shared_ptr<const void> owner, const uint8_t* bytes, size_t size,
                        const std::string& source);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Absolute file offset of the data section.
  uint64_t data_offset() const { return data_offset_; }
  const std::string& source() const { return source_; }
  // Keeps the mapping (and so every GgufTensor::data) alive.
  const std::shared_ptr<const void>& owner() const { return owner_; }
  // For a file opened with open(): lets the OS take the pages of [data, data + nbytes) (a tensor's
  // bytes, copied elsewhere) out of resident memory (MappedFile::release); otherwise nothing.
  void release(const uint8_t* data, size_t nbytes) const;

  // Metadata keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  const GgufValue* find(std::string_view key) const;
  // Throws wick::Error naming the file and key when absent.
  const GgufValue& get(std::string_view key) const;
  // Typed getters; errors name the file and key.
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const GgufArray& get_array(std::string_view key) const;

  // Tensors in file order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;
  const GgufTensor& tensor(std::string_view name) const;
  // The tensor dequantized to f32 (numel() values, row-major in `shape` order).
  std::vector<float> dequantize(std::string_view name) const;

 private:
  std::string source_;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<const MappedFile> mapped_;  // set by open()
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace wick::io
