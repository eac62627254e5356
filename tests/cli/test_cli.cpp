// The command-line contract: `wick tokenize`, `detokenize`, `template` and `info` run as a user
// would run them, compared with the goldens written by the reference libraries (HF tokenizers,
// jinja2 configured as transformers) in tests/data.
#include <gtest/gtest.h>

#include <cstdio>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

using json = nlohmann::json;
const std::string kData = WICK_TEST_DATA_DIR;
const std::string kTokenizers = kData + "/tokenizers";

struct Result {
  int code;
  std::string out, err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `wick ARGS` with `input` on stdin.
Result run_wick(const std::string& args, const std::string& input) {
  std::string dir = ::testing::TempDir();
  // Unique per process: ctest runs the tests of this file in parallel.
  std::string base = dir + "/wick_cli_" + std::to_string(getpid());
  std::string in = base + "_in", out = base + "_out", err = base + "_err";
  std::ofstream(in, std::ios::binary) << input;
  std::string cmd = std::string(WICK_BINARY) + " " + args + " < " + in + " > " + out + " 2> " + err;
  int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), read_file(out), read_file(err)};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

json load_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  return json::parse(in);
}

// The corpus through `wick tokenize` / `detokenize` equals the goldens of HF tokenizers.
void check_tokenizer(const std::string& golden_name, const std::string& tokenizer_path) {
  ASSERT_TRUE(std::filesystem::exists(tokenizer_path)) << "missing " << tokenizer_path;
  json corpus = load_json(kData + "/tokenizer/corpus.json");
  json golden = load_json(kData + "/tokenizer/golden_" + golden_name + ".json");
  std::string input;
  for (const auto& text : corpus) input += text.dump(-1, ' ', false, json::error_handler_t::strict) + "\n";
  for (bool special : {false, true}) {
    Result r = run_wick("tokenize --tokenizer " + tokenizer_path + (special ? " --add-special" : ""), input);
    ASSERT_EQ(r.code, 0) << r.err;
    auto got = lines(r.out);
    ASSERT_EQ(got.size(), corpus.size());
    for (size_t i = 0; i < corpus.size(); ++i) {
      const json& c = golden["cases"][i];
      json want = special && c.contains("ids_special") ? c["ids_special"] : c["ids"];
      EXPECT_EQ(json::parse(got[i]), want) << golden_name << " case " << i << " special=" << special;
    }
  }
  std::string ids_input;
  for (const auto& c : golden["cases"]) ids_input += (c.contains("ids_special") ? c["ids_special"] : c["ids"]).dump() + "\n";
  Result r = run_wick("detokenize --tokenizer " + tokenizer_path, ids_input);
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = lines(r.out);
  ASSERT_EQ(got.size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    const json& c = golden["cases"][i];
    std::string want = c.contains("decoded") ? c["decoded"].get<std::string>() : corpus[i].get<std::string>();
    EXPECT_EQ(json::parse(got[i]).get<std::string>(), want) << golden_name << " case " << i;
  }
}

TEST(Cli, TokenizeAndDetokenizeQwen25) { check_tokenizer("qwen2.5", kTokenizers + "/qwen2.5"); }
TEST(Cli, TokenizeAndDetokenizeMistral) { check_tokenizer("mistral", kTokenizers + "/mistral/tokenizer.json"); }
TEST(Cli, TokenizeAndDetokenizeMiniLM) { check_tokenizer("minilm", kTokenizers + "/minilm/tokenizer.json"); }

// The tokenizers in the metadata of the real GGUFs fetched by scripts/fetch-models.sh (goldens of
// scripts/golden/gguf_tokenizer_golden.py); the Qwen2.5-Coder file holds the metadata and no tensors.
std::string fetched_model(const std::string& file) {
  std::string path = (std::filesystem::path(kData) / ".." / ".." / "models" / file).lexically_normal().string();
  if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing " << path << " (run scripts/fetch-models.sh models)";
  return path;
}

TEST(Cli, TokenizeAndDetokenizeSmolLM2Gguf) {
  check_tokenizer("gguf_smollm2", fetched_model("SmolLM2-135M-Instruct.Q4_1.gguf"));
}
TEST(Cli, TokenizeAndDetokenizeQwenCoderTokenizerOnlyGguf) {
  check_tokenizer("gguf_qwen2.5_coder", fetched_model("qwen2.5-coder-1.5b-instruct.tokenizer.gguf"));
}

TEST(Cli, TemplateMatchesTransformers) {
  json golden = load_json(kData + "/chat/golden_qwen2.5-instruct.json");
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    if (!c["tools"].is_null() || !c.contains("expected")) continue;
    Result r = run_wick("template --tokenizer " + kTokenizers + "/qwen2.5" +
                            (c["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : ""),
                        c["messages"].dump());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, c["expected"].get<std::string>()) << c["name"];
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Cli, BadInputIsAOneLineErrorWithNonZeroExit) {
  Result r = run_wick("tokenize --tokenizer " + kTokenizers + "/qwen2.5", "\"fine\"\n{not json\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("stdin line 2"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  r = run_wick("tokenize --tokenizer /nonexistent/tokenizer.json", "\"x\"\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/nonexistent"), std::string::npos) << r.err;
  r = run_wick("detokenize --tokenizer " + kTokenizers + "/qwen2.5", "[1, 99999999]\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("99999999"), std::string::npos) << r.err;
}

TEST(Cli, InfoDescribesTheSmolLM2Gguf) {
  std::string path = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing " << path << " (run scripts/fetch-models.sh models)";
  Result r = run_wick("info --json " + path, "");
  ASSERT_EQ(r.code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["architecture"], "llama");
  EXPECT_EQ(info["layers"], 30);
  EXPECT_EQ(info["hidden_size"], 576);
  EXPECT_EQ(info["kv_heads"], 3);
  EXPECT_EQ(info["vocab_size"], 49152);
  EXPECT_EQ(info["tensor_types"]["Q4_1"], 210);
  EXPECT_EQ(info["chat_template"], true);
}

}  // namespace
