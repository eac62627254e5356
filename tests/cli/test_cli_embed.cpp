// `wick embed`'s input and output contract: output line N is input line N (a blank line is the
// empty text), plain-text input with --input-format text, vectors to .npy (read here as NumPy's
// format specifies) and .safetensors files, and --rank "" refused.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/wick_process.h"

namespace {

using json = nlohmann::json;
using wick_test::run_wick;
const std::string kMiniLM = std::string(WICK_TEST_DATA_DIR) + "/../../models/all-MiniLM-L6-v2";

std::vector<std::vector<double>> rows_of(const std::string& out) {
  std::vector<std::vector<double>> rows;
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) rows.push_back(json::parse(line).get<std::vector<double>>());
  return rows;
}

std::vector<std::vector<double>> embed(const std::string& input, const std::string& flags = "") {
  auto r = run_wick("embed --device cpu --model " + kMiniLM + " " + flags, input);
  EXPECT_EQ(r.code, 0) << r.err;
  return rows_of(r.out);
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double tol = 1e-6) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << i;
}

TEST(CliEmbed, BlankLinesKeepTheLineCorrespondence) {
  auto rows = embed("\"A man is eating food.\"\n\n\"A monkey is playing drums.\"\n");
  ASSERT_EQ(rows.size(), 3u);
  expect_close(rows[1], embed("\"\"\n")[0]);
  expect_close(rows[2], embed("\"A monkey is playing drums.\"\n")[0]);
}

TEST(CliEmbed, PlainTextInput) {
  auto text = embed("A man is eating food.\n\nHe said \"hi\".\n", "--input-format text");
  auto jsonl = embed("\"A man is eating food.\"\n\"\"\n\"He said \\\"hi\\\".\"\n");
  ASSERT_EQ(text.size(), 3u);
  for (size_t i = 0; i < 3; ++i) expect_close(text[i], jsonl[i]);
  auto r = run_wick("embed --device cpu --model " + kMiniLM, "A man is eating food.\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--input-format text"), std::string::npos) << r.err;
}

TEST(CliEmbed, EmptyRankQueryIsAnError) {
  auto r = run_wick("embed --device cpu --model " + kMiniLM + " --rank \"\"", "\"a\"\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--rank is empty"), std::string::npos) << r.err;
}

const std::string kInput = "\"A man is eating food.\"\n\"The girl is carrying a baby.\"\n\"\"\n";

TEST(CliEmbed, NpyOutputHoldsTheVectors) {
  auto want = embed(kInput);
  std::string path = wick_test::temp_path("vectors") + ".npy";
  auto r = run_wick("embed --device cpu --model " + kMiniLM + " -o " + path, kInput);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  std::string bytes = wick_test::read_file(path);
  // NumPy format 1.0: magic, version, little-endian u16 header length, a dict, data from a 64-aligned offset.
  ASSERT_GT(bytes.size(), 10u);
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t header_len = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
  std::string header = bytes.substr(10, header_len);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (3, 384)"), std::string::npos) << header;
  ASSERT_EQ(bytes.size(), 10 + header_len + 3 * 384 * 4);
  for (size_t i = 0; i < 3; ++i) {
    std::vector<double> row(384);
    for (size_t j = 0; j < 384; ++j) {
      float v;
      std::memcpy(&v, bytes.data() + 10 + header_len + (i * 384 + j) * 4, 4);
      row[j] = v;
    }
    expect_close(row, want[i]);
  }
  std::filesystem::remove(path);
}

TEST(CliEmbed, SafetensorsOutputHoldsTheVectors) {
  auto want = embed(kInput);
  std::string path = wick_test::temp_path("vectors") + ".safetensors";
  auto r = run_wick("embed --device cpu --model " + kMiniLM + " --output " + path, kInput);
  ASSERT_EQ(r.code, 0) << r.err;
  std::string bytes = wick_test::read_file(path);
  // safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data.
  ASSERT_GT(bytes.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  json header = json::parse(bytes.substr(8, n));
  ASSERT_TRUE(header.contains("embeddings")) << header.dump();
  EXPECT_EQ(header["embeddings"]["dtype"], "F32");
  EXPECT_EQ(header["embeddings"]["shape"], json::array({3, 384}));
  size_t begin = header["embeddings"]["data_offsets"][0];
  ASSERT_EQ(size_t(header["embeddings"]["data_offsets"][1]) - begin, 3u * 384 * 4);
  for (size_t i = 0; i < 3; ++i) {
    std::vector<double> row(384);
    for (size_t j = 0; j < 384; ++j) {
      float v;
      std::memcpy(&v, bytes.data() + 8 + n + begin + (i * 384 + j) * 4, 4);
      row[j] = v;
    }
    expect_close(row, want[i]);
  }
  std::filesystem::remove(path);
  auto bad = run_wick("embed --device cpu --model " + kMiniLM + " --output vectors.txt", kInput);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find(".npy or .safetensors"), std::string::npos) << bad.err;
}

}  // namespace
