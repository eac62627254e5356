// The generation loop on the real SmolLM2 model: streamed pieces join to the full decode of the
// generated ids, every EOS id ends generation, stop strings that span several tokens cut the text
// before them, and a prompt longer than the context is an error.
#include <gtest/gtest.h>

#include <filesystem>

#include "wick/io/gguf.h"
#include "wick/models/gguf_tokenizer.h"
#include "wick/models/generate.h"

using namespace wick;

namespace {

const std::string kModel = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Loaded {
  models::DecoderModel model = models::DecoderModel::load_gguf(kModel, Device::cpu(), Dtype::F32);
  tok::Tokenizer tokenizer = models::tokenizer_from_gguf(io::GgufFile::open(kModel));
};

Loaded& loaded() {
  static Loaded l;
  return l;
}

std::vector<int32_t> prompt(const std::string& text) {
  return loaded().tokenizer.encode("<|im_start|>user\n" + text + "<|im_end|>\n<|im_start|>assistant\n", false);
}

TEST(Generate, StreamedPiecesJoinToTheFullDecode) {
  ASSERT_TRUE(std::filesystem::exists(kModel)) << "missing " << kModel << " (run scripts/fetch-models.sh models)";
  models::GenerateOptions o;
  o.max_tokens = 40;
  o.sampling.temperature = 0.8;
  o.sampling.seed = 3;
  std::string streamed;
  std::vector<int32_t> seen;
  auto r = models::generate(loaded().model, loaded().tokenizer, prompt("Tell me about the moon in French and emoji."), o,
                            [&](const models::TokenEvent& e) {
                              streamed += e.text;
                              if (e.id >= 0) seen.push_back(e.id);
                              EXPECT_GT(e.probability, 0.0);
                              EXPECT_LE(e.probability, 1.0);
                              EXPECT_NEAR(e.logprob, std::log(e.probability), 1e-9);
                            });
  EXPECT_EQ(seen, r.ids);
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, loaded().tokenizer.decode(r.ids, true));
}

TEST(Generate, AnyEosIdEndsGeneration) {
  ASSERT_TRUE(std::filesystem::exists(kModel)) << "missing " << kModel;
  models::GenerateOptions o;
  o.max_tokens = 20;
  o.sampling.temperature = 0;
  auto free_run = models::generate(loaded().model, loaded().tokenizer, prompt("Count from one to ten."), o);
  ASSERT_GE(free_run.ids.size(), 4u);
  // Declaring the third generated token an end-of-sequence id (among others) stops before it.
  o.eos_ids = {12345, free_run.ids[2], 7};
  auto r = models::generate(loaded().model, loaded().tokenizer, prompt("Count from one to ten."), o);
  EXPECT_EQ(r.finish_reason, "eos");
  EXPECT_EQ(r.ids, std::vector<int32_t>(free_run.ids.begin(), free_run.ids.begin() + 2));
}

TEST(Generate, StopStringSpanningTokensEndsTheTextBeforeIt) {
  ASSERT_TRUE(std::filesystem::exists(kModel)) << "missing " << kModel;
  models::GenerateOptions o;
  o.max_tokens = 30;
  o.sampling.temperature = 0;
  auto free_run = models::generate(loaded().model, loaded().tokenizer, prompt("What is the capital of France?"), o);
  size_t at = free_run.text.find("of France");
  ASSERT_NE(at, std::string::npos) << free_run.text;
  o.stop = {"of France"};  // several tokens: " of", " France"
  std::string streamed;
  auto r = models::generate(loaded().model, loaded().tokenizer, prompt("What is the capital of France?"), o,
                            [&](const models::TokenEvent& e) { streamed += e.text; });
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.text, free_run.text.substr(0, at));
  EXPECT_EQ(streamed, r.text);  // the stop string never reached the stream
}

TEST(Generate, PromptLongerThanTheContextIsAnError) {
  ASSERT_TRUE(std::filesystem::exists(kModel)) << "missing " << kModel;
  std::vector<int32_t> huge(size_t(loaded().model.config().max_position_embeddings) + 1, 42);
  try {
    models::generate(loaded().model, loaded().tokenizer, huge, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
}

}  // namespace
