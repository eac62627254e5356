// Every corpus string encodes and decodes exactly as HF tokenizers does (goldens from
// scripts/golden/tokenizer_golden.py), for Qwen2.5, GPT-2, Mistral and MiniLM (BERT).
#include <chrono>
#include <fstream>
#include <sstream>

#include "tokenizer_test_util.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok::test {
namespace {

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (ch == '.') ch = '_';
  return n;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeDecodeMatchHuggingFace) {
  const std::string name = GetParam();
  std::filesystem::path path = tokenizer_path(name);
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing tokenizer file " << path;
  Tokenizer tok = Tokenizer::from_file(path);
  expect_matches_golden(tok, load_golden(name), name);
}

// Streaming detokenization of each golden sequence concatenates to the full decode (generative
// tokenizers only: WordPiece's cleanup rewrites text across word boundaries).
class StreamingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StreamingTest, StreamingDecodeConcatenatesToDecode) {
  const std::string name = GetParam();
  Tokenizer tok = Tokenizer::from_file(tokenizer_path(name));
  Golden g = load_golden(name);
  for (bool skip : {false, true}) {
    for (size_t i = 0; i < g.cases.size(); ++i) {
      auto ids = expected_case(g.cases[i], g.corpus[i]).ids_special;
      StreamingDecoder stream(tok, skip);
      std::string all;
      for (int32_t id : ids) {
        std::string piece = stream.step(id);
        ASSERT_TRUE(is_valid_utf8(piece)) << name << " case " << i << ": broken UTF-8 piece";
        all += piece;
      }
      all += stream.finish();
      EXPECT_EQ(all, tok.decode(ids, skip)) << name << " case " << i << " skip=" << skip << " text " << show(g.corpus[i]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GoldenTest, ::testing::Values("qwen2.5", "gpt2", "mistral", "minilm"),
                         param_name);
INSTANTIATE_TEST_SUITE_P(Tokenizers, StreamingTest, ::testing::Values("qwen2.5", "gpt2", "mistral"), param_name);

// Variants: a base tokenizer.json with replaced fields, or a whole small tokenizer.json in the golden.
class VariantTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VariantTest, EncodeDecodeMatchHuggingFace) {
  const std::string name = "variant_" + GetParam();
  Golden g = load_golden(name);
  nlohmann::json config;
  if (g.root.contains("tokenizer_json")) {
    config = g.root["tokenizer_json"];
  } else {
    std::filesystem::path base = tokenizer_path(g.root["base"].get<std::string>());
    ASSERT_TRUE(std::filesystem::exists(base)) << "missing tokenizer file " << base;
    config = load_json(base);
    for (auto& [key, value] : g.root["overrides"].items()) config[key] = value;
    for (auto& [key, value] : g.root["model_overrides"].items()) config["model"][key] = value;
  }
  Tokenizer tok = Tokenizer::from_json(config, nullptr, name);
  expect_matches_golden(tok, g, name);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, VariantTest,
                         ::testing::Values("llama3_style", "smollm_style", "gpt2_added_flags", "gpt2_splits",
                                           "gpt2_splits_invert", "mistral_metaspace_first", "mistral_metaspace_always",
                                           "minilm_variants", "minilm_whitespace", "learned_bpe_fuse_false",
                                           "learned_bpe_fuse_true"),
                         param_name);

TEST(TokenizerSpeed, TinyShakespeareWithQwenUnderThreeSeconds) {
  std::filesystem::path text_path = std::filesystem::path(WICK_TEST_DATA_DIR) / "text" / "tinyshakespeare.txt";
  std::ifstream in(text_path, std::ios::binary);
  ASSERT_TRUE(in) << "missing " << text_path;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  ASSERT_GT(text.size(), 1000000u);
  Tokenizer tok = Tokenizer::from_file(tokenizer_path("qwen2.5"));
  auto want = load_json(data_dir() / "golden_qwen2.5.json")["tinyshakespeare"];
  auto t0 = std::chrono::steady_clock::now();
  auto ids = tok.encode(text, false);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t sum = 0;
  for (int32_t id : ids) sum += id;
  EXPECT_EQ(ids.size(), want["count"].get<size_t>());
  EXPECT_EQ(sum, want["id_sum"].get<int64_t>());
  std::printf("[ speed    ] %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n", text.size(), ids.size(), seconds,
              text.size() / seconds / 1e6);
  EXPECT_LT(seconds, 3.0);
}

}  // namespace
}  // namespace wick::tok::test
