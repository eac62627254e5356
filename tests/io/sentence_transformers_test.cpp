// sentence-transformers folder files (modules.json, Pooling config, prompts).
#include <gtest/gtest.h>

#include <filesystem>

#include "io_test_util.h"
#include "wick/io/sentence_transformers.h"

namespace wick::io {
namespace {

using test::expect_error;
using test::ScratchDir;

void write_modules(const ScratchDir& dir, const std::string& pooling_json) {
  dir.write("modules.json", std::string(R"([
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])"));
  std::filesystem::create_directories(dir.path() / "1_Pooling");
  dir.write("1_Pooling/config.json", pooling_json);
}

TEST(SentenceTransformers, ClsPoolingWithPrompts) {
  ScratchDir dir;
  write_modules(dir, R"({"word_embedding_dimension": 384, "pooling_mode_cls_token": true,
                         "pooling_mode_mean_tokens": false, "include_prompt": false})");
  dir.write("sentence_bert_config.json", std::string(R"({"max_seq_length": 512, "do_lower_case": true})"));
  dir.write("config_sentence_transformers.json",
            std::string(R"({"prompts": {"query": "query: ", "passage": "passage: "},
                            "default_prompt_name": null, "similarity_fn_name": "cosine"})"));
  auto c = load_sentence_transformers_config(dir.path().string());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->modules.size(), 3u);
  EXPECT_EQ(c->modules[1].path, "1_Pooling");
  EXPECT_EQ(c->pooling_modes, std::vector<std::string>{"cls"});
  EXPECT_FALSE(c->include_prompt);
  EXPECT_TRUE(c->normalize);
  EXPECT_FALSE(c->has_dense);
  EXPECT_EQ(c->word_embedding_dimension, 384);
  EXPECT_EQ(c->max_seq_length, 512);
  EXPECT_EQ(c->do_lower_case, true);
  EXPECT_EQ(c->prompts.at("query"), "query: ");
  EXPECT_EQ(c->default_prompt_name, std::nullopt);
  EXPECT_EQ(c->similarity_fn_name, "cosine");
}

TEST(SentenceTransformers, AbsentAndBroken) {
  ScratchDir dir;
  EXPECT_EQ(load_sentence_transformers_config(dir.path().string()), std::nullopt);
  write_modules(dir, R"({"pooling_mode_mean_tokens": false})");
  expect_error([&] { load_sentence_transformers_config(dir.path().string()); },
               {"1_Pooling/config.json", "no pooling mode"});
  write_modules(dir, R"({"pooling_mode_mean_tokens": "yes"})");
  expect_error([&] { load_sentence_transformers_config(dir.path().string()); },
               {"'pooling_mode_mean_tokens' must be true or false"});
  dir.write("modules.json", std::string(R"([{"idx": 0, "path": ""}])"));
  expect_error([&] { load_sentence_transformers_config(dir.path().string()); },
               {"modules.json: module 0", "missing field 'type'"});
}

TEST(SentenceTransformers, RealMiniLM) {
  std::string dir = test::models_dir() + "/all-MiniLM-L6-v2";
  if (!std::filesystem::exists(dir))
    GTEST_SKIP() << dir << " is absent: run scripts/fetch-models.sh " << test::models_dir();
  auto c = load_sentence_transformers_config(dir);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pooling_modes, std::vector<std::string>{"mean"});
  EXPECT_TRUE(c->normalize);
  EXPECT_EQ(c->max_seq_length, 256);
  EXPECT_EQ(c->do_lower_case, false);
  EXPECT_EQ(c->word_embedding_dimension, 384);
}

}  // namespace
}  // namespace wick::io
