// safetensors reading (against files written by the reference `safetensors` package, see
// scripts/golden/io_safetensors.py), sharded checkpoints, and the writer.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "io_test_util.h"
#include "wick/base/half.h"
#include "wick/io/safetensors.h"

namespace wick::io {
namespace {

using test::data_path;
using test::expect_error;
using test::read_bytes;
using test::ScratchDir;

nlohmann::json expected_json() {
  auto bytes = read_bytes(data_path("safetensors/expected.json"));
  return nlohmann::json::parse(bytes.begin(), bytes.end());
}

template <typename T>
T at(const TensorView& v, size_t i) {
  T x;
  std::memcpy(&x, v.data + i * sizeof(T), sizeof(T));
  return x;
}

// Element i as a double (exact for every dtype in the golden file except I64, checked apart).
double value(const TensorView& v, size_t i) {
  switch (v.dtype) {
    case FileDtype::F64: return at<double>(v, i);
    case FileDtype::F32: return at<float>(v, i);
    case FileDtype::F16: return f16::to_float(at<uint16_t>(v, i));
    case FileDtype::BF16: return bits_float(uint32_t(at<uint16_t>(v, i)) << 16);
    case FileDtype::I32: return at<int32_t>(v, i);
    case FileDtype::I16: return at<int16_t>(v, i);
    case FileDtype::I8: return at<int8_t>(v, i);
    case FileDtype::U8: return at<uint8_t>(v, i);
    case FileDtype::BOOL: return at<uint8_t>(v, i);
    default: throw std::runtime_error("test: unexpected dtype");
  }
}

void expect_matches_golden(const SafeTensors& st) {
  auto expected = expected_json();
  ASSERT_EQ(st.size(), expected.size());
  for (const auto& [name, e] : expected.items()) {
    SCOPED_TRACE(name);
    const TensorView& v = st.get(name);
    EXPECT_EQ(v.name, name);
    EXPECT_EQ(file_dtype_name(v.dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(v.shape, e["shape"].get<std::vector<int64_t>>());
    const auto& values = e["values"];
    ASSERT_EQ(size_t(v.numel()), values.size());
    EXPECT_EQ(v.nbytes, values.size() * file_dtype_size(v.dtype));
    for (size_t i = 0; i < values.size(); ++i) {
      if (v.dtype == FileDtype::I64) {
        EXPECT_EQ(at<int64_t>(v, i), values[i].get<int64_t>());
      } else {
        EXPECT_EQ(value(v, i), values[i].get<double>()) << "element " << i;
      }
    }
  }
}

TEST(SafetensorsRead, EveryDtypeMatchesReference) {
  SafeTensors st = SafeTensors::open(data_path("safetensors/golden.safetensors"));
  expect_matches_golden(st);
  EXPECT_EQ(st.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(st.get("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(st.get("scalar").numel(), 1);
  EXPECT_EQ(st.get("empty").nbytes, 0u);
}

TEST(SafetensorsRead, NamesInFileOrderAndViewsPointIntoTheFile) {
  std::string path = data_path("safetensors/golden.safetensors");
  SafeTensors st = SafeTensors::open(path);
  auto bytes = read_bytes(path);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  // The reference writes the largest dtypes first: I64, F64, then F32 ones.
  EXPECT_EQ(st.names().front(), "i64.ids");
  const uint8_t* prev = nullptr;
  for (const auto& name : st.names()) {
    const TensorView& v = st.get(name);
    if (prev != nullptr) {
      EXPECT_GE(v.data, prev) << name;
    }
    prev = v.data;
  }
  const TensorView& f32 = st.get("f32.weight");
  EXPECT_EQ(std::memcmp(f32.data, bytes.data() + 8 + header + 72, f32.nbytes), 0);
}

TEST(SafetensorsRead, ViewsOutliveTheReader) {
  TensorView view;
  {
    SafeTensors st = SafeTensors::open(data_path("safetensors/golden.safetensors"));
    view = st.get("f32.weight");
  }
  auto expected = expected_json()["f32.weight"]["values"];
  EXPECT_EQ(value(view, 11), expected[11].get<double>());
}

TEST(SafetensorsRead, MissingTensorIsNamed) {
  SafeTensors st = SafeTensors::open(data_path("safetensors/golden.safetensors"));
  EXPECT_EQ(st.find("nope"), nullptr);
  expect_error([&] { st.get("nope"); }, {"golden.safetensors", "no tensor named 'nope'"});
  expect_error([] { SafeTensors::open(data_path("safetensors/absent.safetensors")); },
               {"absent.safetensors", "cannot open"});
}

TEST(SafetensorsSharded, IndexPresentsOneMap) {
  SafeTensors st = SafeTensors::open_index(data_path("safetensors/sharded/model.safetensors.index.json"));
  expect_matches_golden(st);
  EXPECT_TRUE(st.metadata().count("total_size"));
  SafeTensors by_dir = SafeTensors::open_dir(data_path("safetensors/sharded"));
  EXPECT_EQ(by_dir.names(), st.names());
}

TEST(SafetensorsSharded, BadIndexesAreNamed) {
  ScratchDir dir;
  for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    dir.write(shard, read_bytes(data_path(std::string("safetensors/sharded/") + shard)));
  std::string idx = dir.write("model.safetensors.index.json",
                              R"({"weight_map": {"f32.weight": "model-00002-of-00002.safetensors"}})");
  // f32.weight lives in shard 1.
  expect_error([&] { SafeTensors::open_index(idx); }, {"'f32.weight'", "model-00002-of-00002", "is not"});
  idx = dir.write("model.safetensors.index.json", R"({"weight_map": {"x": "../escape.safetensors"}})");
  expect_error([&] { SafeTensors::open_index(idx); }, {"must be a path inside the folder"});
  idx = dir.write("model.safetensors.index.json", R"({"metadata": {}})");
  expect_error([&] { SafeTensors::open_index(idx); }, {"weight_map"});
  idx = dir.write("model.safetensors.index.json", R"({"weight_map": {"x": "gone.safetensors"}})");
  expect_error([&] { SafeTensors::open_index(idx); }, {"gone.safetensors", "cannot open"});
  expect_error([&] { SafeTensors::open_dir(dir.file("nothing-here")); }, {"no model.safetensors"});
}

std::vector<TensorToWrite> to_write(const SafeTensors& st) {
  std::vector<TensorToWrite> out;
  for (const auto& name : st.names()) {
    const TensorView& v = st.get(name);
    out.push_back({v.name, v.dtype, v.shape, v.data, v.nbytes});
  }
  return out;
}

// Written in a different order than the reference used: the writer must sort like it does.
TEST(SafetensorsWrite, RoundTripMatchesReferenceBytes) {
  std::string path = data_path("safetensors/golden.safetensors");
  SafeTensors st = SafeTensors::open(path);
  auto tensors = to_write(st);
  std::reverse(tensors.begin(), tensors.end());
  std::vector<uint8_t> bytes = serialize_safetensors(tensors, st.metadata());
  EXPECT_EQ(bytes, read_bytes(path));

  // Left for `python3 scripts/golden/io_safetensors.py --verify /tmp/wick_io_roundtrip.safetensors`.
  std::string out = (std::filesystem::temp_directory_path() / "wick_io_roundtrip.safetensors").string();
  save_safetensors(out, tensors, st.metadata());
  expect_matches_golden(SafeTensors::open(out));
}

TEST(SafetensorsWrite, HeaderPaddedToEightBytesAndAtomic) {
  ScratchDir dir;
  float a[3] = {1, 2, 3};
  uint8_t b[1] = {7};
  std::string path = dir.file("x.safetensors");
  dir.write("x.safetensors", std::string("old contents"));
  save_safetensors(path, {{"b", FileDtype::U8, {1}, b, 1}, {"a", FileDtype::F32, {3}, a, 12}},
                   {{"k2", "v2"}, {"k1", "v1"}});
  auto bytes = read_bytes(path);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u);
  EXPECT_EQ(bytes[8 + header - 1] == ' ' || bytes[8 + header - 1] == '}', true);
  SafeTensors st = SafeTensors::open(path);
  EXPECT_EQ(st.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(st.metadata().at("k1"), "v1");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(st.get("a").data) % 4, 0u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1)
      << "a temporary file was left behind";
  expect_error([&] { save_safetensors(dir.file("no/such/dir/x.safetensors"), {}, {}); },
               {"no/such/dir/x.safetensors"});
}

TEST(SafetensorsWrite, BadTensorsAreNamed) {
  float a[2] = {1, 2};
  expect_error([&] { serialize_safetensors({{"a", FileDtype::F32, {3}, a, 8}}); },
               {"tensor 'a'", "needs 12 bytes, got 8"});
  expect_error([&] { serialize_safetensors({{"a", FileDtype::F32, {2}, a, 8}, {"a", FileDtype::F32, {2}, a, 8}}); },
               {"tensor 'a'", "given twice"});
  expect_error([&] { serialize_safetensors({{"a", FileDtype::F32, {-2}, a, 8}}); }, {"negative dimension"});
  expect_error([&] { serialize_safetensors({{"__metadata__", FileDtype::F32, {2}, a, 8}}); }, {"reserved"});
}

}  // namespace
}  // namespace wick::io
