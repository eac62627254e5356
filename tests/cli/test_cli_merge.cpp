// `wick merge` from SmolLM2's Q4_1 GGUF: the folder it writes is a complete Hugging Face model
// (tokenizer.json with every field the tokenizers library needs, tokenizer_config.json with the chat
// template, generation_config.json, config.json with the special ids, bf16 weights by default) and
// generates the greedy tokens of base + adapter, stopping at EOS; --out FILE.gguf writes a GGUF
// that reads back with the same tokens, its tokenizer the base GGUF's or converted from a folder's
// tokenizer.json. `wick info` describes the adapter folder.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli_process.h"
#include "wick/io/gguf.h"
#include "wick/io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using wick_test::read_text;

const std::string kSmolLM = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Result {
  int code;
  std::string out, err;
};

class MergeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "/wick_cli_merge_" + std::to_string(getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (!fs::exists(kSmolLM)) return;
    // A real fine-tune (a pirate's voice), which changes the answer and still ends it with EOS.
    std::string data = std::string(WICK_TEST_DATA_DIR) + "/../../data/demo/pirate_train.jsonl";
    std::string train = std::string(WICK_BINARY) + " train --device cpu --model " + kSmolLM + " --data " + data +
                        " --out " + dir_ + "/adapter --steps 6 --batch-size 2 --rank 4 --lr 2e-3 --max-length 64 "
                        "--seed 1 2> " + dir_ + "/train_err";
    ASSERT_EQ(std::system(train.c_str()), 0) << read_text(dir_ + "/train_err");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override { ASSERT_TRUE(fs::exists(kSmolLM)) << "missing " << kSmolLM << " (run scripts/fetch-models.sh models)"; }

  static Result wick(const std::string& args, const std::string& input = "") {
    std::string in = dir_ + "/stdin", out = dir_ + "/stdout", err = dir_ + "/stderr";
    std::ofstream(in, std::ios::binary) << input;
    int status = std::system((std::string(WICK_BINARY) + " " + args + " < " + in + " > " + out + " 2> " + err).c_str());
    return {WEXITSTATUS(status), read_text(out), read_text(err)};
  }
  static json generate(const std::string& model_args) {
    Result r = wick("generate --device cpu --chat --json --temperature 0 --max-tokens 64 --prompt \"What is the "
                    "capital of France?\" " + model_args);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? json::parse(r.out) : json::object();
  }

  static std::string dir_;
};

std::string MergeCli::dir_;

TEST_F(MergeCli, FolderFromAGgufIsACompleteHuggingFaceModel) {
  std::string out = dir_ + "/merged";
  Result r = wick("merge --model " + kSmolLM + " --adapter " + dir_ + "/adapter --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(bf16)"), std::string::npos) << r.err;  // a quantized base merges into bf16
  json config = json::parse(read_text(out + "/config.json"));
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_EQ(config["bos_token_id"], 1);
  EXPECT_EQ(config["eos_token_id"], 2);
  wick::io::SafeTensors weights = wick::io::SafeTensors::open(out + "/model.safetensors");
  EXPECT_EQ(weights.get("model.layers.0.self_attn.q_proj.weight").dtype, wick::io::FileDtype::BF16);
  // Every top-level field the Hugging Face tokenizers library deserializes.
  json tokenizer = json::parse(read_text(out + "/tokenizer.json"));
  for (const char* key : {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                          "post_processor", "decoder", "model"})
    EXPECT_TRUE(tokenizer.contains(key)) << key;
  EXPECT_EQ(tokenizer["model"]["type"], "BPE");
  json tokenizer_config = json::parse(read_text(out + "/tokenizer_config.json"));
  EXPECT_NE(tokenizer_config["chat_template"].get<std::string>().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(tokenizer_config["eos_token"], "<|im_end|>");
  json generation = json::parse(read_text(out + "/generation_config.json"));
  EXPECT_EQ(generation["eos_token_id"], 2);
  // The folder's tokenizer gives the GGUF's ids.
  std::string text = "\"Hello, world! 1234 caf\\u00e9 <|im_start|>user\"\n";
  Result a = wick("tokenize --tokenizer " + out, text), b = wick("tokenize --tokenizer " + kSmolLM, text);
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  // The merged model runs alone and stops at EOS.
  json merged = generate("--model " + out);
  EXPECT_EQ(merged["finish_reason"], "eos") << merged.dump();
}

// Merged in f32, the folder and the GGUF give base + adapter's greedy tokens; a GGUF base keeps
// its tokenizer in the GGUF written.
TEST_F(MergeCli, MergedFolderAndGgufGenerateLikeBasePlusAdapter) {
  std::string folder = dir_ + "/merged_f32", file = dir_ + "/merged.gguf";
  std::string common = " --model " + kSmolLM + " --adapter " + dir_ + "/adapter --dtype f32";
  Result r = wick("merge --device cpu" + common + " --out " + folder);
  ASSERT_EQ(r.code, 0) << r.err;
  r = wick("merge" + common + " --out " + file);
  ASSERT_EQ(r.code, 0) << r.err;
  wick::io::GgufFile gguf = wick::io::GgufFile::open(file);
  EXPECT_EQ(gguf.version(), 3u);
  EXPECT_EQ(gguf.get_string("general.architecture"), "llama");
  EXPECT_EQ(gguf.get_int("llama.block_count"), 30);
  EXPECT_EQ(gguf.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(gguf.tensor("blk.0.attn_q.weight").type, wick::ggml::GgmlType::F32);
  EXPECT_EQ(gguf.find_tensor("output.weight"), nullptr);  // tied, as the base
  json base = generate("--model " + kSmolLM + " --adapter " + dir_ + "/adapter");
  json plain = generate("--model " + kSmolLM);
  json from_folder = generate("--model " + folder), from_gguf = generate("--model " + file);
  ASSERT_FALSE(base["token_ids"].empty());
  EXPECT_NE(base["token_ids"], plain["token_ids"]);  // the adapter matters
  EXPECT_EQ(from_folder["token_ids"], base["token_ids"]);
  EXPECT_EQ(from_gguf["token_ids"], base["token_ids"]);
  EXPECT_EQ(from_folder["finish_reason"], "eos");
  EXPECT_EQ(from_gguf["finish_reason"], "eos");

  // From a folder base, the GGUF's tokenizer is converted from tokenizer.json: the same keys as the
  // original GGUF, and the same tokens from the GGUF as from a folder merged alongside.
  std::string again_folder = dir_ + "/again", again_file = dir_ + "/again.gguf";
  std::string from_merged = " --model " + folder + " --adapter " + dir_ + "/adapter --dtype f32";
  r = wick("merge" + from_merged + " --out " + again_folder);
  ASSERT_EQ(r.code, 0) << r.err;
  r = wick("merge" + from_merged + " --out " + again_file);
  ASSERT_EQ(r.code, 0) << r.err;
  wick::io::GgufFile converted = wick::io::GgufFile::open(again_file), original = wick::io::GgufFile::open(kSmolLM);
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template"})
    EXPECT_EQ(converted.get_string(key), original.get_string(key)) << key;
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"})
    EXPECT_EQ(converted.get_int(key), original.get_int(key)) << key;
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"}) {
    const auto& a = converted.get_array(key).items;
    const auto& b = original.get_array(key).items;
    ASSERT_EQ(a.size(), b.size()) << key;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].is_string()) ASSERT_EQ(a[i].as_string(key), b[i].as_string(key)) << key << " " << i;
      else ASSERT_EQ(a[i].as_int(key), b[i].as_int(key)) << key << " " << i;
    }
  }
  json twice_folder = generate("--model " + again_folder), twice_gguf = generate("--model " + again_file);
  EXPECT_EQ(twice_gguf["token_ids"], twice_folder["token_ids"]);
}

TEST_F(MergeCli, GgufOutputNeedsATokenizerAndDeviceIsChecked) {
  std::string tiny = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
  std::string adapter = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_lora/adapter";
  Result r = wick("merge --model " + tiny + " --adapter " + adapter + " --out " + dir_ + "/tiny.gguf");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("no tokenizer.json to write into the GGUF"), std::string::npos) << r.err;
  r = wick("merge --device nowhere --model " + tiny + " --adapter " + adapter + " --out " + dir_ + "/tiny");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
  // A folder base: its dtype and files are kept.
  r = wick("merge --model " + tiny + " --adapter " + adapter + " --out " + dir_ + "/tiny");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(f32)"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir_ + "/tiny/generation_config.json"));
}

TEST_F(MergeCli, InfoDescribesAnAdapterFolder) {
  Result r = wick("info --json " + dir_ + "/adapter");
  ASSERT_EQ(r.code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["format"], "peft adapter (LORA)");
  EXPECT_EQ(info["base_model"], kSmolLM);
  EXPECT_EQ(info["r"], 4);
  EXPECT_EQ(info["modules"], 60);  // q and v of 30 layers
  EXPECT_DOUBLE_EQ(info["scale"].get<double>(), 4.0);  // alpha 16 / rank 4
  EXPECT_FALSE(info.contains("rope_theta"));
}

}  // namespace
