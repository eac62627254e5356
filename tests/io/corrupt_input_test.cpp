// Broken safetensors and GGUF files: every one must give a wick::Error that says what is wrong
// (asserted by substring), never a crash or a silently wrong tensor.
#include <gtest/gtest.h>

#include <random>

#include "gguf_builder.h"
#include "io_test_util.h"
#include "wick/io/gguf.h"
#include "wick/io/safetensors.h"

namespace wick::io {
namespace {

using test::data_path;
using test::expect_error;
using test::GgufBuilder;
using test::read_bytes;

// A safetensors file from a header text and `data_size` zero bytes of data.
std::vector<uint8_t> st_file(const std::string& header, size_t data_size) {
  std::vector<uint8_t> out;
  GgufBuilder::put<uint64_t>(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_size, 0);
  return out;
}

void expect_st_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts) {
  expect_error([&] { SafeTensors::parse(nullptr, bytes.data(), bytes.size(), "bad.safetensors"); }, parts);
}

TEST(CorruptSafetensors, SizesAndHeaderLength) {
  expect_st_error({1, 2, 3}, {"bad.safetensors", "3 bytes, too small"});
  std::vector<uint8_t> past = st_file("{}", 0);
  past[0] = 200;
  expect_st_error(past, {"header length 200 runs past the end of the file (10 bytes)"});
  auto huge = st_file("{}", 0);
  huge[7] = 0x80;
  expect_st_error(huge, {"runs past the end of the file"});
  // The real header cut off mid-way: a length that points past EOF.
  auto golden = read_bytes(data_path("safetensors/golden.safetensors"));
  golden.resize(100);
  expect_st_error(golden, {"runs past the end of the file (100 bytes)"});
}

TEST(CorruptSafetensors, MalformedJson) {
  expect_st_error(st_file("{\"a\": ", 0), {"safetensors header", "invalid JSON"});
  expect_st_error(st_file("[1, 2]", 0), {"does not start with '{'"});
  expect_st_error(st_file("", 0), {"does not start with '{'"});
  expect_st_error(st_file("{\"a\": 5}", 0), {"tensor 'a'", "entry must be an object"});
  expect_st_error(st_file("{\"__metadata__\": {\"k\": 1}}", 0), {"__metadata__['k'] must be a string"});
  expect_st_error(st_file("{\"__metadata__\": []}", 0), {"__metadata__ must be an object"});
}

TEST(CorruptSafetensors, EntryFields) {
  expect_st_error(st_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "missing field 'dtype'"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "missing field 'shape'"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [1]}})", 4), {"missing field 'data_offsets'"});
  expect_st_error(st_file(R"({"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "unknown dtype 'Q7'"});
  expect_st_error(st_file(R"({"w": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}})", 4),
                  {"dtype 'F4'", "not supported"});
  expect_st_error(st_file(R"({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"'dtype' must be a string"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
                  {"shape[0] is negative"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
                  {"shape[0] must be a non-negative integer"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4),
                  {"more elements than fit in 64 bits"});
  expect_st_error(st_file(R"({"w": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 4]}})", 4),
                  {"too large in bytes"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4),
                  {"'data_offsets' must be [begin, end]"});
}

TEST(CorruptSafetensors, Offsets) {
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}})", 8),
                  {"tensor 'w'", "data_offsets [0, 12] run past the end of the data (8 bytes)"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
                  {"span 8 bytes but F32 [3] needs 12"});
  expect_st_error(st_file(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 8),
                  {"end before begin"});
  expect_st_error(st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
                  {"tensors 'a' [0, 8) and 'b' [4, 12) overlap"});
  // The same range twice is an overlap too; empty tensors anywhere are not.
  expect_st_error(st_file(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                              "b": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}})", 4),
                  {"overlap"});
  auto ok = st_file(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                        "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [2, 2]}})", 4);
  EXPECT_EQ(SafeTensors::parse(nullptr, ok.data(), ok.size(), "ok").size(), 2u);
}

void expect_gguf_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts) {
  expect_error([&] { GgufFile::parse(nullptr, bytes.data(), bytes.size(), "bad.gguf"); }, parts);
}

TEST(CorruptGguf, MagicAndVersion) {
  expect_gguf_error({'G', 'G'}, {"bad.gguf", "bad magic"});
  expect_gguf_error({'G', 'G', 'M', 'L', 3, 0, 0, 0}, {"not a GGUF file"});
  GgufBuilder b;
  b.version = 1;
  expect_gguf_error(b.build(), {"GGUF version 1 is not supported"});
  b.version = 4;
  expect_gguf_error(b.build(), {"unsupported GGUF version 4"});
  b.version = 0x03000000;
  expect_gguf_error(b.build(), {"big-endian"});
  expect_gguf_error({'G', 'G', 'U', 'F', 3, 0}, {"offset 4", "version needs 4 bytes but only 2 remain"});
}

TEST(CorruptGguf, EveryTruncationOfTheGoldenFileIsAnError) {
  auto golden = read_bytes(data_path("gguf/golden.gguf"));
  GgufFile whole = GgufFile::parse(nullptr, golden.data(), golden.size(), "golden");
  // Every cut inside the header and tensor table, then a stride through the data.
  size_t checked = 0;
  for (size_t n = 0; n < golden.size(); n += (n < whole.data_offset() ? 1 : 97)) {
    std::vector<uint8_t> cut(golden.begin(), golden.begin() + long(n));
    try {
      GgufFile::parse(nullptr, cut.data(), cut.size(), "cut");
      ADD_FAILURE() << "truncation to " << n << " bytes was accepted";
    } catch (const wick::Error&) {
      ++checked;
    }
  }
  EXPECT_GT(checked, whole.data_offset());
  golden.resize(golden.size() - 1);
  expect_gguf_error(golden, {"runs past the end of the data section"});
}

TEST(CorruptGguf, Metadata) {
  GgufBuilder b;
  std::vector<uint8_t> kv;
  GgufBuilder::put_string(kv, "k");
  GgufBuilder::put<uint32_t>(kv, 13);
  b.kv_raw(kv);
  expect_gguf_error(b.build(), {"metadata 'k': unknown value type 13"});

  kv.clear();
  GgufBuilder::put_string(kv, "arr");
  GgufBuilder::put<uint32_t>(kv, 9);
  GgufBuilder::put<uint32_t>(kv, 5);  // int32 elements
  GgufBuilder::put<uint64_t>(kv, uint64_t(1) << 60);
  b.kvs = {kv};
  expect_gguf_error(b.build(), {"metadata 'arr': array of 1152921504606846976 int32 does not fit"});

  kv.clear();
  GgufBuilder::put_string(kv, "s");
  GgufBuilder::put<uint32_t>(kv, 8);
  GgufBuilder::put<uint64_t>(kv, 1000);
  b.kvs = {kv};
  expect_gguf_error(b.build(), {"has length 1000 but only"});

  // Arrays nested 20 deep.
  kv.clear();
  GgufBuilder::put_string(kv, "deep");
  GgufBuilder::put<uint32_t>(kv, 9);
  for (int i = 0; i < 20; ++i) {
    GgufBuilder::put<uint32_t>(kv, 9);
    GgufBuilder::put<uint64_t>(kv, 1);
  }
  b.kvs = {kv};
  expect_gguf_error(b.build(), {"metadata 'deep': arrays nested deeper than 16"});

  b.kvs.clear();
  b.kv_u32("x", 1);
  b.kv_u32("x", 2);
  expect_gguf_error(b.build(), {"duplicate metadata key 'x'"});

  b.kvs.clear();
  b.kv_u32("general.alignment", 24);
  expect_gguf_error(b.build(), {"general.alignment = 24 is not a power of two"});
  b.kvs.clear();
  b.kv_string("general.alignment", "32");
  expect_gguf_error(b.build(), {"general.alignment", "expected an unsigned integer, got string"});

  GgufBuilder counts;
  auto bytes = counts.build();
  bytes[16] = 0xFF;  // kv count low byte... and make it enormous
  bytes[23] = 0x7F;
  expect_gguf_error(bytes, {"metadata count", "cannot fit in the file"});
}

TEST(CorruptGguf, TensorTable) {
  GgufBuilder b;
  b.tensors = {{"w", {32}, 99, 0}};
  b.data_size = 128;
  expect_gguf_error(b.build(), {"tensor 'w'", "unknown GGML type id 99"});
  b.tensors = {{"w", {1, 1, 1, 1, 1}, 0, 0}};
  expect_gguf_error(b.build(), {"tensor 'w'", "5 dimensions (at most 4)"});
  b.tensors = {{"w", {48, 2}, uint32_t(ggml::GgmlType::Q4_0), 0}};
  expect_gguf_error(b.build(), {"row length 48 is not a multiple of the Q4_0 block size 32"});
  b.tensors = {{"w", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0}};
  expect_gguf_error(b.build(), {"tensor 'w'", "overflow"});
  b.tensors = {{"w", {32}, 0, 0}, {"w", {32}, 0, 128}};
  b.data_size = 256;
  expect_gguf_error(b.build(), {"duplicate tensor 'w'"});
  b.tensors = {{"w", {32}, 0, 64}};
  b.data_size = 128;
  expect_gguf_error(b.build(), {"tensor 'w'", "data [64, 192) runs past the end of the data section (128 bytes)"});
  b.tensors = {{"w", {32}, 0, uint64_t(-32)}};
  expect_gguf_error(b.build(), {"tensor 'w'", "runs past the end"});
  b.tensors = {{"w", {32}, 0, 16}};
  expect_gguf_error(b.build(), {"data offset 16 is not a multiple of the alignment 32"});
  b.tensors = {{"a", {32}, 0, 0}, {"b", {32}, 0, 64}};
  b.data_size = 256;
  expect_gguf_error(b.build(), {"tensors 'a' [0, 128) and 'b' [64, 192) overlap"});
  b.tensors = {{"a", {32}, 0, 0}, {"b", {32}, 0, 128}};
  auto ok = b.build();
  EXPECT_EQ(GgufFile::parse(nullptr, ok.data(), ok.size(), "ok").tensors().size(), 2u);
}

// Random byte flips anywhere in the header: parsing either succeeds or throws wick::Error.
TEST(CorruptGguf, RandomByteFlipsNeverEscapeAsOtherErrors) {
  auto golden = read_bytes(data_path("gguf/golden.gguf"));
  GgufFile whole = GgufFile::parse(nullptr, golden.data(), golden.size(), "golden");
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pos(0, whole.data_offset() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    auto bytes = golden;
    for (int k = 0; k < 3; ++k) bytes[pos(rng)] = uint8_t(byte(rng));
    try {
      GgufFile f = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "flipped");
      for (const GgufTensor& t : f.tensors()) {
        if (ggml::ggml_type_info(t.type).dequantizable) f.dequantize(t.name);
      }
    } catch (const wick::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace wick::io
