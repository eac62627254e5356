// Writing safetensors files the way the reference writer does, atomically.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/io/safetensors.h"

namespace wick::io {

namespace {

// The 8-byte length plus padded header, and the order the tensor bytes must follow in.
struct Layout {
  std::vector<uint8_t> prefix;
  std::vector<const TensorToWrite*> order;
};

Layout plan(const std::vector<TensorToWrite>& tensors,
            const std::map<std::string, std::string>& metadata) {
  using nlohmann::json;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    std::string ctx = str_cat("save_safetensors: tensor '", t.name, "'");
    if (t.name == "__metadata__") fail(ctx, ": the name is reserved for metadata");
    if (!seen.insert(t.name).second) fail(ctx, ": given twice");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) fail(ctx, ": negative dimension ", d);
      if (__builtin_mul_overflow(numel, uint64_t(d), &numel)) fail(ctx, ": shape overflows");
    }
    uint64_t want = 0;
    if (__builtin_mul_overflow(numel, uint64_t(file_dtype_size(t.dtype)), &want) || want != t.nbytes)
      fail(ctx, ": ", file_dtype_name(t.dtype), " with ", numel, " elements needs ", want,
           " bytes, got ", t.nbytes);
    if (t.nbytes > 0 && t.data == nullptr) fail(ctx, ": data is null");
  }

  // The reference orders by dtype, largest enum value first, then by name: big elements come
  // first, so with an 8-byte aligned data start every tensor is aligned to its element size.
  std::vector<const TensorToWrite*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });

  // Built by hand rather than through a json object, whose keys would be sorted by name.
  std::string header = "{";
  try {
    if (!metadata.empty()) header += "\"__metadata__\":" + json(metadata).dump();
    uint64_t offset = 0;
    for (const TensorToWrite* t : order) {
      if (header.size() > 1) header += ",";
      json shape = json::array();
      for (int64_t d : t->shape) shape.push_back(d);
      header += json(t->name).dump() + ":{\"dtype\":\"" + std::string(file_dtype_name(t->dtype)) +
                "\",\"shape\":" + shape.dump() + ",\"data_offsets\":[" + std::to_string(offset) +
                "," + std::to_string(offset + t->nbytes) + "]}";
      offset += t->nbytes;
    }
  } catch (const json::exception& e) {
    fail("save_safetensors: a tensor name or metadata string is not valid UTF-8: ", e.what());
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  Layout layout;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) layout.prefix.push_back(uint8_t(n >> (8 * i)));
  layout.prefix.insert(layout.prefix.end(), header.begin(), header.end());
  layout.order = std::move(order);
  return layout;
}

}  // namespace

std::vector<uint8_t> serialize_safetensors(const std::vector<TensorToWrite>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  Layout layout = plan(tensors, metadata);
  std::vector<uint8_t> out = std::move(layout.prefix);
  for (const TensorToWrite* t : layout.order) {
    const auto* p = static_cast<const uint8_t*>(t->data);
    out.insert(out.end(), p, p + t->nbytes);
  }
  return out;
}

void write_text_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, {{reinterpret_cast<const uint8_t*>(text.data()), text.size()}});
}

void write_file_atomic(const std::string& path, const std::vector<ByteRange>& chunks) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::string tmpl = (dir / str_cat(".", target.filename().string(), ".tmp.XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail(path, ": cannot create a temporary file in ", dir.string(), ": ", std::strerror(errno));
  auto give_up = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail(path, ": ", what, ": ", std::strerror(err));
  };
  for (const ByteRange& chunk : chunks) {
    size_t done = 0;
    while (done < chunk.size) {
      ssize_t w = ::write(fd, chunk.data + done, chunk.size - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) give_up("write failed");
      done += size_t(w);
    }
  }
  // mkstemp creates 0600; a model file should be readable like any other (umask is not read:
  // querying it means setting it, which races with other threads creating files).
  if (::fchmod(fd, 0644) != 0) give_up("chmod failed");
  if (::fsync(fd) != 0) give_up("fsync failed");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    fail(path, ": close failed: ", std::strerror(err));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    fail(path, ": rename from ", tmpl, " failed: ", std::strerror(err));
  }
}

void save_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Streamed from the caller's buffers: no second copy of a multi-gigabyte model in memory.
  Layout layout = plan(tensors, metadata);
  std::vector<ByteRange> chunks{{layout.prefix.data(), layout.prefix.size()}};
  for (const TensorToWrite* t : layout.order)
    chunks.push_back({static_cast<const uint8_t*>(t->data), t->nbytes});
  write_file_atomic(path, chunks);
}

}  // namespace wick::io
