// A read-only memory mapping of a whole file, shared by every tensor view that points into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace wick::io {

// Model files are large and mostly read once, so they are mapped rather than read: tensor views
// point straight into the mapping (zero copy) and the OS pages the bytes in on first touch.
// The mapping lives as long as the last shared_ptr to it, so views may outlive their reader.
class MappedFile {
 public:
  // Maps `path` read-only; throws wick::Error naming the path on any failure.
  static std::shared_ptr<const MappedFile> open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Lets the OS take the whole pages inside [p, p + n) out of the process's resident memory (after
  // their bytes were copied elsewhere); they are read again from the file if touched. p must lie in
  // the mapping.
  void release(const uint8_t* p, size_t n) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace wick::io
