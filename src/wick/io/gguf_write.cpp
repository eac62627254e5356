// Writing GGUF version 3 files, the layout gguf_read.cpp parses: header, metadata, tensor table,
// padding to the alignment, then each tensor's data padded to the alignment.
#include <cstring>

#include "wick/base/error.h"
#include "wick/io/gguf_write.h"
#include "wick/io/safetensors.h"

namespace wick::io {

namespace {

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &v, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back(0);
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

void put_value(Bytes& b, const GgufValue& v, const std::string& key) {
  auto as_uint = [&] { return v.as_uint(key); };
  auto as_int = [&] { return v.as_int(key); };
  switch (v.type) {
    case GgufValueType::UINT8: b.put(uint8_t(as_uint())); break;
    case GgufValueType::INT8: b.put(int8_t(as_int())); break;
    case GgufValueType::UINT16: b.put(uint16_t(as_uint())); break;
    case GgufValueType::INT16: b.put(int16_t(as_int())); break;
    case GgufValueType::UINT32: b.put(uint32_t(as_uint())); break;
    case GgufValueType::INT32: b.put(int32_t(as_int())); break;
    case GgufValueType::UINT64: b.put(as_uint()); break;
    case GgufValueType::INT64: b.put(as_int()); break;
    case GgufValueType::FLOAT32: b.put(float(v.as_float(key))); break;
    case GgufValueType::FLOAT64: b.put(v.as_float(key)); break;
    case GgufValueType::BOOL: b.put(uint8_t(v.as_bool(key) ? 1 : 0)); break;
    case GgufValueType::STRING: b.put_string(v.as_string(key)); break;
    case GgufValueType::ARRAY: {
      const GgufArray& a = v.as_array(key);
      b.put(uint32_t(a.elem_type));
      b.put<uint64_t>(a.items.size());
      for (const GgufValue& item : a.items) {
        WICK_CHECK(item.type == a.elem_type, "gguf: metadata '", key, "': an array of ", gguf_value_type_name(a.elem_type),
                   " holds a ", gguf_value_type_name(item.type));
        put_value(b, item, key);
      }
      break;
    }
  }
}

}  // namespace

GgufValue gguf_string(std::string s) { return {GgufValueType::STRING, std::move(s)}; }
GgufValue gguf_u32(uint32_t v) { return {GgufValueType::UINT32, uint64_t(v)}; }
GgufValue gguf_f32(float v) { return {GgufValueType::FLOAT32, double(v)}; }

void save_gguf(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
               const std::vector<GgufTensorToWrite>& tensors) {
  uint64_t alignment = 32;
  Bytes head;
  for (char magic : {'G', 'G', 'U', 'F'}) head.put(magic);
  head.put<uint32_t>(3);
  head.put<uint64_t>(tensors.size());
  head.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    if (key == "general.alignment") {
      alignment = value.as_uint(key);
      WICK_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0, path, ": general.alignment ", alignment,
                 " is not a power of two");
    }
    head.put_string(key);
    head.put(uint32_t(value.type));
    put_value(head, value, key);
  }
  uint64_t offset = 0;
  for (const GgufTensorToWrite& t : tensors) {
    const ggml::GgmlTypeInfo& info = ggml::ggml_type_info(t.type);
    WICK_CHECK(!t.shape.empty() && t.shape.size() <= 4, path, ": tensor '", t.name, "' has ", t.shape.size(),
               " dimensions (1 to 4)");
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    WICK_CHECK(t.shape.back() % info.block_size == 0 &&
                   t.nbytes == size_t(numel / info.block_size) * info.type_size,
               path, ": tensor '", t.name, "' has ", t.nbytes, " bytes, which is not ", numel, " values of ", info.name);
    head.put_string(t.name);
    head.put<uint32_t>(t.shape.size());
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) head.put<uint64_t>(uint64_t(*d));  // innermost first
    head.put(uint32_t(t.type));
    head.put<uint64_t>(offset);
    offset += (t.nbytes + alignment - 1) / alignment * alignment;
  }
  head.pad_to(alignment);
  static const uint8_t zeros[256] = {};
  WICK_CHECK(alignment <= sizeof(zeros), path, ": general.alignment ", alignment, " is larger than ", sizeof(zeros));
  std::vector<ByteRange> chunks{{head.bytes().data(), head.bytes().size()}};
  for (const GgufTensorToWrite& t : tensors) {
    chunks.push_back({static_cast<const uint8_t*>(t.data), t.nbytes});
    size_t pad = (alignment - t.nbytes % alignment) % alignment;
    if (pad > 0) chunks.push_back({zeros, pad});
  }
  write_file_atomic(path, chunks);
}

}  // namespace wick::io
