// A tiny GGUF byte writer for the tests that need files the reference writer refuses to make
// (corrupt offsets, odd alignments, unknown types). Valid output is checked against golden.gguf's
// structure in gguf_test.cpp; everything else is deliberately broken input.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace wick::io::test {

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;  // innermost first, as stored
    uint32_t type = 0;
    uint64_t offset = 0;
  };

  uint32_t version = 3;
  uint64_t alignment = 32;
  std::vector<std::vector<uint8_t>> kvs;  // encoded key/value pairs
  std::vector<Tensor> tensors;
  uint64_t data_size = 0;  // bytes of (zero) data after the aligned tensor table

  template <typename T>
  static void put(std::vector<uint8_t>& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  static void put_string(std::vector<uint8_t>& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
  }

  void kv_u32(const std::string& key, uint32_t v) {
    std::vector<uint8_t> e;
    put_string(e, key);
    put<uint32_t>(e, 4);
    put<uint32_t>(e, v);
    kvs.push_back(e);
  }
  void kv_string(const std::string& key, const std::string& v) {
    std::vector<uint8_t> e;
    put_string(e, key);
    put<uint32_t>(e, 8);
    put_string(e, v);
    kvs.push_back(e);
  }
  void kv_raw(const std::vector<uint8_t>& encoded) { kvs.push_back(encoded); }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensors.size());
    put<uint64_t>(out, kvs.size());
    for (const auto& kv : kvs) out.insert(out.end(), kv.begin(), kv.end());
    for (const auto& t : tensors) {
      put_string(out, t.name);
      put<uint32_t>(out, uint32_t(t.dims.size()));
      for (uint64_t d : t.dims) put<uint64_t>(out, d);
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, t.offset);
    }
    while (out.size() % alignment != 0) out.push_back(0);
    out.resize(out.size() + data_size, 0);
    return out;
  }
};

}  // namespace wick::io::test
