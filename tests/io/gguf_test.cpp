// GGUF reading and dequantization against golden.gguf, written and dequantized by the reference
// `gguf` package (scripts/golden/io_gguf.py): every metadata value type, every quant type, bit-exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "gguf_builder.h"
#include "io_test_util.h"
#include "wick/base/half.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"

namespace wick::io {
namespace {

using test::data_path;
using test::expect_error;
using test::read_bytes;
using test::ScratchDir;

const std::string& golden_path() {
  static const std::string p = data_path("gguf/golden.gguf");
  return p;
}

struct Expected {
  std::string type;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

std::map<std::string, Expected> load_expected() {
  auto index_bytes = read_bytes(data_path("gguf/expected.json"));
  auto index = nlohmann::json::parse(index_bytes.begin(), index_bytes.end());
  auto raw = read_bytes(data_path("gguf/expected.f32"));
  std::map<std::string, Expected> out;
  for (const auto& [name, e] : index.items()) {
    Expected x;
    x.type = e["type"];
    x.shape = e["shape"].get<std::vector<int64_t>>();
    size_t offset = e["offset"], count = e["count"];
    x.values.resize(count);
    std::memcpy(x.values.data(), raw.data() + offset * 4, count * 4);
    out[name] = std::move(x);
  }
  return out;
}

TEST(GgufRead, HeaderAndEveryMetadataType) {
  GgufFile f = GgufFile::open(golden_path());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.keys().front(), "general.architecture");

  EXPECT_EQ(f.get("wick.test.u8").type, GgufValueType::UINT8);
  EXPECT_EQ(f.get_int("wick.test.u8"), 200);
  EXPECT_EQ(f.get_int("wick.test.i8"), -100);
  EXPECT_EQ(f.get_int("wick.test.u16"), 60000);
  EXPECT_EQ(f.get_int("wick.test.i16"), -30000);
  EXPECT_EQ(f.get_int("wick.test.u32"), 4000000000);
  EXPECT_EQ(f.get_int("wick.test.i32"), -2000000000);
  EXPECT_EQ(f.get("wick.test.u64").as_uint("u64"), (uint64_t(1) << 63) + 5);
  expect_error([&] { f.get_int("wick.test.u64"); }, {"wick.test.u64", "does not fit in int64"});
  EXPECT_EQ(f.get_int("wick.test.i64"), -(int64_t(1) << 62));
  EXPECT_EQ(f.get("wick.test.f32").type, GgufValueType::FLOAT32);
  EXPECT_EQ(f.get_float("wick.test.f32"), double(0.1f));
  EXPECT_EQ(f.get_float("wick.test.f64"), 0.1);
  EXPECT_TRUE(f.get_bool("wick.test.bool"));
  EXPECT_EQ(f.get_string("wick.test.string"), "h\xC3\xA9llo \xE2\x9C\x93");

  const GgufArray& ints = f.get_array("wick.test.array_i32");
  EXPECT_EQ(ints.elem_type, GgufValueType::INT32);
  ASSERT_EQ(ints.items.size(), 3u);
  EXPECT_EQ(ints.items[1].as_int("x"), -2);
  const GgufArray& floats = f.get_array("wick.test.array_f32");
  EXPECT_EQ(floats.items[1].as_float("x"), -1.25);
  const GgufArray& strs = f.get_array("wick.test.array_str");
  EXPECT_EQ(strs.items[0].as_string("x"), "a");
  EXPECT_EQ(strs.items[1].as_string("x"), "");
  EXPECT_EQ(strs.items[2].as_string("x"), "ccc");
  const GgufArray& bools = f.get_array("wick.test.array_bool");
  EXPECT_TRUE(bools.items[0].as_bool("x"));
  EXPECT_FALSE(bools.items[1].as_bool("x"));
  const GgufArray& nested = f.get_array("wick.test.nested");
  EXPECT_EQ(nested.elem_type, GgufValueType::ARRAY);
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[0].as_array("x").items[1].as_int("x"), 2);
  EXPECT_EQ(nested.items[1].as_array("x").items[0].as_int("x"), 3);

  expect_error([&] { f.get_string("wick.test.u8"); }, {"golden.gguf", "wick.test.u8", "expected a string, got uint8"});
  expect_error([&] { f.get("no.such.key"); }, {"metadata key 'no.such.key' is missing"});
}

TEST(GgufRead, DequantizationIsBitExactWithReference) {
  GgufFile f = GgufFile::open(golden_path());
  auto expected = load_expected();
  std::set<std::string> types_seen;
  for (const auto& [name, e] : expected) {
    SCOPED_TRACE(name);
    const GgufTensor& t = f.tensor(name);
    EXPECT_EQ(ggml::ggml_type_name(t.type), e.type);
    EXPECT_EQ(t.shape, e.shape);
    EXPECT_EQ(t.nbytes, ggml::ggml_nbytes(t.type, t.numel()));
    std::vector<float> got = f.dequantize(name);
    ASSERT_EQ(got.size(), e.values.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (float_bits(got[i]) != float_bits(e.values[i]) && mismatches++ < 5)
        ADD_FAILURE() << "element " << i << ": got " << got[i] << ", reference " << e.values[i];
    }
    EXPECT_EQ(mismatches, 0u);
    // The bf16 variant is the f32 result rounded to nearest even.
    std::vector<uint16_t> bf(got.size());
    ggml::dequantize_to_bf16(t.type, t.data, t.numel(), bf.data());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(bf[i], bf16::from_float(e.values[i])) << i;
    types_seen.insert(e.type);
  }
  for (const char* type : {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K",
                           "Q3_K", "Q4_K", "Q5_K", "Q6_K", "I32"})
    EXPECT_TRUE(types_seen.count(type)) << type << " not covered by the golden file";
}

TEST(GgufRead, ShapesArePyTorchOrder) {
  GgufFile f = GgufFile::open(golden_path());
  EXPECT_EQ(f.tensor("q.F32").shape, (std::vector<int64_t>{2, 3, 32}));
  EXPECT_EQ(f.tensor("q.Q4_K").shape, (std::vector<int64_t>{4, 512}));
  EXPECT_EQ(f.tensors().size(), load_expected().size());
  auto bytes = read_bytes(golden_path());
  for (const GgufTensor& t : f.tensors()) {
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    EXPECT_EQ(std::memcmp(t.data, bytes.data() + f.data_offset() + t.offset, t.nbytes), 0) << t.name;
  }
}

TEST(GgufRead, TensorsOutliveTheFileObject) {
  GgufTensor t;
  std::shared_ptr<const void> owner;
  {
    GgufFile f = GgufFile::open(golden_path());
    t = f.tensor("q.F32");
    owner = f.owner();
  }
  float first;
  std::memcpy(&first, t.data, 4);
  EXPECT_EQ(first, load_expected()["q.F32"].values[0]);
}

TEST(GgufRead, Version2IsRead) {
  auto bytes = read_bytes(golden_path());
  bytes[4] = 2;  // v2 and v3 share the little-endian layout
  ScratchDir dir;
  GgufFile f = GgufFile::open(dir.write("v2.gguf", bytes));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.dequantize("q.Q6_K"), GgufFile::open(golden_path()).dequantize("q.Q6_K"));
}

TEST(GgufRead, CustomAlignment) {
  test::GgufBuilder b;
  b.alignment = 64;
  b.kv_u32("general.alignment", 64);
  b.tensors = {{"a", {32}, uint32_t(ggml::GgmlType::F32), 0}, {"b", {32}, uint32_t(ggml::GgmlType::Q8_0), 128}};
  b.data_size = 128 + 34;
  auto built = b.build();
  GgufFile f = GgufFile::parse(nullptr, built.data(), built.size(), "built");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor("b").nbytes, 34u);

  b.tensors[1].offset = 96;  // a multiple of 32, not of 64
  auto bytes = b.build();
  expect_error([&] { GgufFile::parse(nullptr, bytes.data(), bytes.size(), "built"); },
               {"tensor 'b'", "data offset 96 is not a multiple of the alignment 64"});
}

TEST(GgufRead, UnsupportedDequantizationIsNamed) {
  test::GgufBuilder b;
  b.tensors = {{"iq", {256}, uint32_t(ggml::GgmlType::IQ2_XXS), 0}};
  b.data_size = 66;
  auto bytes = b.build();
  GgufFile f = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "built");
  expect_error([&] { f.dequantize("iq"); }, {"tensor 'iq'", "IQ2_XXS is not supported"});
}

// llama.cpp's converter permuted q/k rows; the golden script applies its formula verbatim.
TEST(GgufModel, UnpermuteQkRowsUndoesTheConverter) {
  GgufFile f = GgufFile::open(golden_path());
  int64_t n_head = f.get_int("wick.test.n_head"), n_kv = f.get_int("wick.test.n_head_kv");
  for (auto [gguf_name, hf_name, heads] :
       {std::tuple{"blk.0.attn_q.weight", "perm.q_hf", n_head},
        std::tuple{"blk.0.attn_k.weight", "perm.k_hf", n_kv}}) {
    SCOPED_TRACE(gguf_name);
    std::vector<float> rows = f.dequantize(gguf_name);
    const GgufTensor& t = f.tensor(gguf_name);
    EXPECT_NE(rows, f.dequantize(hf_name));
    unpermute_qk_rows(rows.data(), heads, t.shape[0], t.shape[1]);
    EXPECT_EQ(rows, f.dequantize(hf_name));
    // The all-in-one helper finds the head counts in the llama.* keys.
    EXPECT_EQ(gguf_tensor_f32_hf_order(f, gguf_name), f.dequantize(hf_name));
  }
  EXPECT_EQ(gguf_tensor_f32_hf_order(f, "q.Q4_K"), f.dequantize("q.Q4_K"));
  std::vector<float> none;
  unpermute_qk_rows(none.data(), 2, 0, 4);  // empty: a no-op (found by fuzz_gguf)
  unpermute_qk_rows(none.data(), 2, 4, 0);
  std::vector<float> x(10);
  expect_error([&] { unpermute_qk_rows(x.data(), 3, 5, 2); }, {"5 rows", "3 heads"});
}

}  // namespace
}  // namespace wick::io
