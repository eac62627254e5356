// Opening safetensors files: header validation and zero-copy tensor views into the mapping.
#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/io/mapped_file.h"
#include "wick/io/safetensors.h"

namespace wick::io {
namespace {

using nlohmann::json;

// The reference rejects headers above 100 MB; a larger length is corruption, not a big model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON integer that must be non-negative; `what` names it in errors.
uint64_t non_negative(const json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) fail(what, " is negative (", v.dump(), ")");
  fail(what, " must be a non-negative integer, got ", v.dump());
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& where, const std::string& name, const json& e,
                  uint64_t data_size) {
  std::string ctx = str_cat(where, ": tensor '", name, "'");
  if (!e.is_object()) fail(ctx, ": entry must be an object, got ", e.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!e.contains(field)) fail(ctx, ": missing field '", field, "'");
  }
  const json& dtype = e["dtype"];
  if (!dtype.is_string()) fail(ctx, ": field 'dtype' must be a string, got ", dtype.dump());
  Entry out;
  out.view.name = name;
  out.view.dtype = parse_file_dtype(dtype.get_ref<const std::string&>(), ctx);

  const json& shape = e["shape"];
  if (!shape.is_array()) fail(ctx, ": field 'shape' must be an array, got ", shape.dump());
  uint64_t numel = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t d = non_negative(shape[i], str_cat(ctx, ": shape[", i, "]"));
    if (d > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel) || numel > uint64_t(INT64_MAX))
      fail(ctx, ": shape ", shape.dump(), " has more elements than fit in 64 bits");
    out.view.shape.push_back(int64_t(d));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(file_dtype_size(out.view.dtype)), &nbytes))
    fail(ctx, ": shape ", shape.dump(), " is too large in bytes");

  const json& offsets = e["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail(ctx, ": field 'data_offsets' must be [begin, end], got ", offsets.dump());
  out.begin = non_negative(offsets[0], ctx + ": data_offsets[0]");
  out.end = non_negative(offsets[1], ctx + ": data_offsets[1]");
  if (out.end < out.begin)
    fail(ctx, ": data_offsets [", out.begin, ", ", out.end, "] end before begin");
  if (out.end > data_size)
    fail(ctx, ": data_offsets [", out.begin, ", ", out.end, "] run past the end of the data (",
         data_size, " bytes)");
  if (out.end - out.begin != nbytes)
    fail(ctx, ": data_offsets [", out.begin, ", ", out.end, "] span ", out.end - out.begin,
         " bytes but ", file_dtype_name(out.view.dtype), " ", shape.dump(), " needs ", nbytes);
  out.view.nbytes = size_t(nbytes);
  return out;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafeTensors SafeTensors::parse(std::shared_ptr<const void> owner, const uint8_t* bytes,
                               size_t size, const std::string& source) {
  if (size < 8) fail(source, ": file is ", size, " bytes, too small for a safetensors header");
  uint64_t header_len = read_u64_le(bytes);
  if (header_len > size - 8)
    fail(source, ": header length ", header_len, " runs past the end of the file (", size,
         " bytes)");
  if (header_len > kMaxHeaderBytes)
    fail(source, ": header length ", header_len, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  std::string where = source + ": safetensors header";
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  if (header_len == 0 || text[0] != '{') fail(where, ": does not start with '{'");

  json header;
  try {
    header = json::parse(text, text + header_len);
  } catch (const json::exception& e) {
    fail(where, ": invalid JSON: ", e.what());
  }
  if (!header.is_object()) fail(where, ": must be a JSON object");

  uint64_t data_size = size - 8 - header_len;
  const uint8_t* data = bytes + 8 + header_len;
  SafeTensors st;
  st.source_ = source;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(where, ": __metadata__ must be an object of strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          fail(where, ": __metadata__['", mk, "'] must be a string, got ", mv.dump());
        st.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(where, key, value, data_size));
  }

  // Sorting by offset gives file order and makes overlap a check between neighbours.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.end == e.begin) continue;  // empty tensors occupy no bytes
    if (prev != nullptr && e.begin < prev->end)
      fail(where, ": tensors '", prev->view.name, "' [", prev->begin, ", ", prev->end, ") and '",
           e.view.name, "' [", e.begin, ", ", e.end, ") overlap");
    prev = &e;
  }

  for (Entry& e : entries) {
    e.view.data = data + e.begin;
    e.view.owner = owner;
    st.names_.push_back(e.view.name);
    st.tensors_.emplace(e.view.name, std::move(e.view));
  }
  return st;
}

SafeTensors SafeTensors::open(const std::string& path) {
  auto file = MappedFile::open(path);
  return parse(file, file->data(), file->size(), path);
}

SafeTensors SafeTensors::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(single)) return open(single.string());
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index)) return open_index(index.string());
  fail(dir, ": no model.safetensors or model.safetensors.index.json");
}

const TensorView* SafeTensors::find(std::string_view name) const {
  auto it = tensors_.find(std::string(name));
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& SafeTensors::get(std::string_view name) const {
  const TensorView* v = find(name);
  if (v == nullptr) fail(source_, ": no tensor named '", name, "'");
  return *v;
}

}  // namespace wick::io
