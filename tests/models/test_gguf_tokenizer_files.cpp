// The tokenizers stored in the metadata of the real GGUF files fetched by scripts/fetch-models.sh, as
// models::tokenizer_from_gguf builds them, against the goldens of HF tokenizers on the same files
// (scripts/golden/gguf_tokenizer_golden.py): every corpus string's ids with and without special tokens
// and its decodes with and without them. (Here and not in tests/tokenizer: the GGUF-to-tokenizer
// bridge is part of wick_lib.)
#include <filesystem>

#include "tokenizer/tokenizer_test_util.h"
#include "wick/io/gguf.h"
#include "wick/models/gguf_tokenizer.h"

namespace wick::tok::test {
namespace {

std::string model_path(const std::string& file) {
  return (std::filesystem::path(WICK_TEST_DATA_DIR) / ".." / ".." / "models" / file).lexically_normal().string();
}

TEST(GgufTokenizerFiles, SmolLM2MatchesHuggingFace) {
  std::string path = model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing " << path << " (run scripts/fetch-models.sh models)";
  Tokenizer tok = models::tokenizer_from_gguf(io::GgufFile::open(path));
  EXPECT_EQ(tok.vocab_size(), 49152);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  expect_matches_golden(tok, load_golden("gguf_smollm2"), "gguf_smollm2");
}

// The metadata of qwen2.5-coder-1.5b-instruct-q4_k_m.gguf without its tensors (fetched by default).
TEST(GgufTokenizerFiles, QwenCoderTokenizerOnlyGgufMatchesHuggingFace) {
  std::string path = model_path("qwen2.5-coder-1.5b-instruct.tokenizer.gguf");
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing " << path << " (run scripts/fetch-models.sh models)";
  io::GgufFile file = io::GgufFile::open(path);
  EXPECT_TRUE(file.tensors().empty());
  Tokenizer tok = models::tokenizer_from_gguf(file);
  EXPECT_EQ(tok.vocab_size(), 151936);
  EXPECT_EQ(tok.eos_id(), 151645);
  EXPECT_EQ(tok.pad_id(), 151643);
  expect_matches_golden(tok, load_golden("gguf_qwen2.5_coder"), "gguf_qwen2.5_coder");
}

// Only fetched with `scripts/fetch-models.sh --qwen-coder` (1.1 GB), so skipped when absent, as in
// tests/io/real_models_test.cpp; its metadata equals the tokenizer-only file's (checked by the script).
TEST(GgufTokenizerFiles, QwenCoderFullGgufMatchesHuggingFace) {
  std::string path = model_path("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is absent: run scripts/fetch-models.sh --qwen-coder "
                 << std::filesystem::path(path).parent_path().string();
  Tokenizer tok = models::tokenizer_from_gguf(io::GgufFile::open(path));
  expect_matches_golden(tok, load_golden("gguf_qwen2.5_coder"), "gguf_qwen2.5_coder");
}

}  // namespace
}  // namespace wick::tok::test
