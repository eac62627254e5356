// GGUF parsing: a bounds-checked cursor over the mapped bytes, then validation of the tensor table.
//
// Layout (all little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count times
// (string key, u32 value type, value); tensor_count times (string name, u32 n_dims, u64 dims[n_dims]
// innermost first, u32 ggml type, u64 offset); padding to `general.alignment` (default 32); data.
// A string is a u64 length and that many bytes; an array is a u32 element type, a u64 count, then
// the elements.
#include <algorithm>
#include <cstring>

#include "wick/base/error.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_write.h"
#include "wick/io/mapped_file.h"

namespace wick::io {
namespace {

// ggml's GGML_MAX_DIMS; nested arrays deeper than kMaxDepth are rejected so a crafted file cannot
// exhaust the stack.
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxDepth = 16;

bool is_printable_utf8(std::string_view s);

class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& source)
      : data_(data), size_(size), source_(source) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  const uint8_t* take(size_t n, std::string_view what) {
    if (n > left())
      fail(source_, ": offset ", pos_, ": ", what, " needs ", n, " bytes but only ", left(),
           " remain (truncated file?)");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T read(std::string_view what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }
  std::string read_string(std::string_view what) {
    size_t at = pos_;
    uint64_t n = read<uint64_t>(what);
    if (n > left())
      fail(source_, ": offset ", at, ": ", what, " has length ", n, " but only ", left(),
           " bytes remain");
    const uint8_t* p = take(size_t(n), what);
    return std::string(reinterpret_cast<const char*>(p), size_t(n));
  }
  // A metadata key or tensor name: UTF-8 text without control bytes. Corruption usually shows here
  // first, and the message must show the bytes (a NUL would cut it short).
  std::string read_name(std::string_view what) {
    size_t at = pos_;
    std::string s = read_string(what);
    if (!is_printable_utf8(s))
      fail(source_, ": offset ", at, ": ", what, " is not UTF-8 text (corrupt file?): \"", escape_bytes(s, 48), "\"");
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& source_;
};

bool is_printable_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 || b == 0x7f) return false;
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += len;
  }
  return true;
}

// The smallest encoding of one value of `type`, used to reject element counts the file cannot hold.
size_t min_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64:
    case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
  }
  return 1;
}

GgufValueType read_type(Cursor& c, const std::string& source, const std::string& key) {
  size_t at = c.pos();
  uint32_t t = c.read<uint32_t>("value type");
  if (t > uint32_t(GgufValueType::FLOAT64))
    fail(source, ": offset ", at, ": metadata '", key, "': unknown value type ", t);
  return GgufValueType(t);
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& source,
                     const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::UINT8: v.value = uint64_t(c.read<uint8_t>(key)); break;
    case GgufValueType::INT8: v.value = int64_t(c.read<int8_t>(key)); break;
    case GgufValueType::UINT16: v.value = uint64_t(c.read<uint16_t>(key)); break;
    case GgufValueType::INT16: v.value = int64_t(c.read<int16_t>(key)); break;
    case GgufValueType::UINT32: v.value = uint64_t(c.read<uint32_t>(key)); break;
    case GgufValueType::INT32: v.value = int64_t(c.read<int32_t>(key)); break;
    case GgufValueType::UINT64: v.value = c.read<uint64_t>(key); break;
    case GgufValueType::INT64: v.value = c.read<int64_t>(key); break;
    case GgufValueType::FLOAT32: v.value = double(c.read<float>(key)); break;
    case GgufValueType::FLOAT64: v.value = c.read<double>(key); break;
    case GgufValueType::BOOL: v.value = c.read<uint8_t>(key) != 0; break;
    case GgufValueType::STRING: v.value = c.read_string(key); break;
    case GgufValueType::ARRAY: {
      if (depth >= kMaxDepth)
        fail(source, ": offset ", c.pos(), ": metadata '", key, "': arrays nested deeper than ",
             kMaxDepth);
      GgufArray arr;
      arr.elem_type = read_type(c, source, key);
      size_t at = c.pos();
      uint64_t n = c.read<uint64_t>(key);
      if (n > c.left() / min_size(arr.elem_type))
        fail(source, ": offset ", at, ": metadata '", key, "': array of ", n, " ",
             gguf_value_type_name(arr.elem_type), " does not fit in the ", c.left(),
             " bytes left");
      arr.items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) arr.items.push_back(read_value(c, arr.elem_type, source, key, depth + 1));
      v.value = std::move(arr);
      break;
    }
  }
  return v;
}

}  // namespace

std::string escape_bytes(std::string_view s, size_t max_bytes) {
  static const char* const hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x7f && b != '\\' && b != '"') {
      out += char(b);
    } else {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

std::string_view gguf_value_type_name(GgufValueType type) {
  static constexpr std::string_view names[] = {"uint8", "int8",  "uint16", "int16", "uint32",
                                               "int32", "float32", "bool", "string", "array",
                                               "uint64", "int64", "float64"};
  auto i = size_t(type);
  return i < std::size(names) ? names[i] : std::string_view("invalid");
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

GgufFile GgufFile::parse(std::shared_ptr<const void> owner, const uint8_t* bytes, size_t size,
                         const std::string& source) {
  GgufFile f;
  f.source_ = source;
  f.owner_ = std::move(owner);
  Cursor c(bytes, size, f.source_);
  if (size < 4 || std::memcmp(bytes, "GGUF", 4) != 0) fail(source, ": not a GGUF file (bad magic)");
  c.take(4, "magic");
  f.version_ = c.read<uint32_t>("version");
  if (f.version_ == 1) fail(source, ": GGUF version 1 is not supported (only 2 and 3)");
  if (f.version_ != 2 && f.version_ != 3) {
    if ((f.version_ & 0xFFFF) == 0) fail(source, ": big-endian GGUF files are not supported");
    fail(source, ": unsupported GGUF version ", f.version_, " (only 2 and 3)");
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Every kv needs at least 12 bytes (key length + type) and every tensor info at least 24.
  if (n_kv > c.left() / 12) fail(source, ": metadata count ", n_kv, " cannot fit in the file");
  if (n_tensors > c.left() / 24) fail(source, ": tensor count ", n_tensors, " cannot fit in the file");

  for (uint64_t i = 0; i < n_kv; ++i) {
    size_t at = c.pos();
    std::string key = c.read_name("metadata key");
    GgufValueType type = read_type(c, source, key);
    GgufValue value = read_value(c, type, source, key, 0);
    if (f.metadata_.count(key)) fail(source, ": offset ", at, ": duplicate metadata key '", key, "'");
    f.keys_.push_back(key);
    f.metadata_.emplace(key, std::move(value));
  }

  if (const GgufValue* a = f.find("general.alignment")) {
    uint64_t align = a->as_uint(source + ": general.alignment");
    if (align == 0 || (align & (align - 1)) != 0)
      fail(source, ": general.alignment = ", align, " is not a power of two");
    f.alignment_ = align;
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    size_t at = c.pos();
    GgufTensor t;
    t.name = c.read_name("tensor name");
    std::string ctx = str_cat(source, ": tensor '", t.name, "'");
    uint32_t n_dims = c.read<uint32_t>("tensor dims");
    if (n_dims > kMaxDims) fail(ctx, ": ", n_dims, " dimensions (at most ", kMaxDims, ")");
    std::vector<uint64_t> dims(n_dims);
    uint64_t numel = 1;
    for (auto& d : dims) {
      d = c.read<uint64_t>("tensor dim");
      if (d > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel) || numel > uint64_t(INT64_MAX))
        fail(ctx, ": dimensions overflow 64 bits");
    }
    uint32_t type_id = c.read<uint32_t>("tensor type");
    const ggml::GgmlTypeInfo* info = ggml::find_ggml_type(type_id);
    if (info == nullptr) fail(ctx, ": unknown GGML type id ", type_id);
    t.type = ggml::GgmlType(type_id);
    // Blocks never straddle rows; a 0-d tensor of a block type cannot be stored either.
    uint64_t row = n_dims > 0 ? dims[0] : 1;
    if (row % uint64_t(info->block_size) != 0)
      fail(ctx, ": row length ", row, " is not a multiple of the ", info->name,
           " block size ", info->block_size);
    t.offset = c.read<uint64_t>("tensor offset");
    t.shape.assign(dims.rbegin(), dims.rend());
    uint64_t blocks = numel / uint64_t(info->block_size);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(blocks, uint64_t(info->type_size), &nbytes)) fail(ctx, ": size overflows");
    t.nbytes = size_t(nbytes);
    if (f.tensor_index_.count(t.name)) fail(source, ": offset ", at, ": duplicate tensor '", t.name, "'");
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  uint64_t pos = c.pos();
  f.data_offset_ = (pos + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  uint64_t data_size = f.data_offset_ <= size ? size - f.data_offset_ : 0;
  if (!f.tensors_.empty() && f.data_offset_ > size)
    fail(source, ": data section starts at ", f.data_offset_, ", past the end of the file (", size,
         " bytes)");

  std::vector<const GgufTensor*> by_offset;
  for (GgufTensor& t : f.tensors_) {
    std::string ctx = str_cat(source, ": tensor '", t.name, "'");
    if (t.offset % f.alignment_ != 0)
      fail(ctx, ": data offset ", t.offset, " is not a multiple of the alignment ", f.alignment_);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(ctx, ": data [", t.offset, ", ", t.offset + t.nbytes, ") runs past the end of the data section (",
           data_size, " bytes)");
    t.data = bytes + f.data_offset_ + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  const GgufTensor* prev = nullptr;
  for (const GgufTensor* t : by_offset) {
    if (t->nbytes == 0) continue;
    if (prev != nullptr && t->offset < prev->offset + prev->nbytes)
      fail(source, ": tensors '", prev->name, "' [", prev->offset, ", ", prev->offset + prev->nbytes,
           ") and '", t->name, "' [", t->offset, ", ", t->offset + t->nbytes, ") overlap");
    prev = t;
  }
  return f;
}

GgufFile GgufFile::open(const std::string& path) {
  auto file = MappedFile::open(path);
  GgufFile f = parse(file, file->data(), file->size(), path);
  f.mapped_ = file;
  return f;
}

void GgufFile::release(const uint8_t* data, size_t nbytes) const {
  if (mapped_) mapped_->release(data, nbytes);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_.find(std::string(key));
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) fail(source_, ": metadata key '", key, "' is missing");
  return *v;
}

int64_t GgufFile::get_int(std::string_view key) const { return get(key).as_int(str_cat(source_, ": ", key)); }
double GgufFile::get_float(std::string_view key) const { return get(key).as_float(str_cat(source_, ": ", key)); }
bool GgufFile::get_bool(std::string_view key) const { return get(key).as_bool(str_cat(source_, ": ", key)); }
const std::string& GgufFile::get_string(std::string_view key) const {
  return get(key).as_string(str_cat(source_, ": ", key));
}
const GgufArray& GgufFile::get_array(std::string_view key) const {
  return get(key).as_array(str_cat(source_, ": ", key));
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  if (t == nullptr) fail(source_, ": no tensor named '", name, "'");
  return *t;
}

std::vector<float> GgufFile::dequantize(std::string_view name) const {
  const GgufTensor& t = tensor(name);
  std::vector<float> out(size_t(t.numel()));
  try {
    ggml::dequantize_to_f32(t.type, t.data, t.numel(), out.data());
  } catch (const Error& e) {
    fail(source_, ": tensor '", name, "': ", e.what());
  }
  return out;
}

}  // namespace wick::io
