// `wick info` beyond decoders: an encoder shows no RoPE and counts no buffers as parameters; a
// lost write of its output (a full disk) is an error; a GGUF whose metadata key is corrupt gets an
// error that shows the bad bytes (a NUL among them must not cut the message short).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli_process.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using wick_test::read_text;

struct Result {
  int code;
  std::string out, err;
};

Result run_info(const std::string& args, const std::string& stdout_path = "") {
  std::string base = ::testing::TempDir() + "/wick_cli_info_" + std::to_string(getpid());
  std::string out = stdout_path.empty() ? base + "_out" : stdout_path;
  int status = std::system((std::string(WICK_BINARY) + " info " + args + " > " + out + " 2> " + base + "_err").c_str());
  return {WEXITSTATUS(status), stdout_path.empty() ? read_text(out) : "", read_text(base + "_err")};
}

TEST(CliInfo, AnEncoderHasNoRopeAndItsBuffersAreNotParameters) {
  // all-MiniLM-L6-v2 carries BERT's position_ids buffer (int64).
  std::string model = std::string(WICK_TEST_DATA_DIR) + "/../../models/all-MiniLM-L6-v2";
  ASSERT_TRUE(fs::exists(model)) << "missing " << model << " (run scripts/fetch-models.sh models)";
  Result r = run_info("--json " + model);
  ASSERT_EQ(r.code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["architecture"], "bert");
  EXPECT_FALSE(info.contains("rope_theta")) << r.out;
  EXPECT_FALSE(info.contains("tie_word_embeddings")) << r.out;
  json config = json::parse(read_text(model + "/config.json"));
  int64_t h = config["hidden_size"], v = config["vocab_size"], p = config["max_position_embeddings"],
          t = config["type_vocab_size"], i = config["intermediate_size"], layers = config["num_hidden_layers"];
  // Embeddings (words, positions, token types, LayerNorm), then per layer: q, k, v, o with biases,
  // two LayerNorms, the two feed-forward products with biases; then the pooler if present.
  int64_t expected = (v + p + t) * h + 2 * h + layers * (4 * (h * h + h) + 2 * 2 * h + h * i + i + i * h + h);
  int64_t pooler = info["parameters"].get<int64_t>() - expected;
  EXPECT_TRUE(pooler == 0 || pooler == h * h + h) << info.dump();
  EXPECT_EQ(info["buffers"], 1);
}

TEST(CliInfo, AFullDiskIsAnError) {
  std::string model = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
  Result r = run_info(model, "/dev/full");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("writing to standard output failed"), std::string::npos) << r.err;
}

TEST(CliInfo, ACorruptGgufKeyShowsItsBytes) {
  std::string bytes = read_text(std::string(WICK_TEST_DATA_DIR) + "/io/gguf/golden.gguf");
  size_t at = bytes.find("general.architecture");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 7] = '\0';  // "general\0architecture"
  std::string path = ::testing::TempDir() + "/wick_cli_info_corrupt_" + std::to_string(getpid()) + ".gguf";
  std::ofstream(path, std::ios::binary) << bytes;
  Result r = run_info(path);
  fs::remove(path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("metadata key is not UTF-8 text (corrupt file?): \"general\\x00architecture\""),
            std::string::npos)
      << r.err;
}

}  // namespace
