// LoRA in the command-line tool. `wick train --dropout` on the tiny test decoder: a run with LoRA
// dropout resumed from its step-3 checkpoint reproduces the uninterrupted run's losses, dropout
// changes the losses, and an out-of-range --dropout is a one-line error naming the option.
// `wick chat` with several adapters: /adapter NAME and /adapter none switch between them, each
// reply being what `wick generate` gives with that adapter alone.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "support/adapters.h"
#include "wick/core/ops.h"
#include "wick/lora/adapter.h"

namespace {

using json = nlohmann::json;
const std::string kTiny = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";

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

Result run_wick(const std::string& args, const std::string& input = "") {
  std::string base = ::testing::TempDir() + "/wick_cli_lora_" + std::to_string(getpid());
  std::string in = base + "_in", out = base + "_out", err = base + "_err";
  std::ofstream(in, std::ios::binary) << input;
  int status = std::system((std::string(WICK_BINARY) + " " + args + " < " + in + " > " + out + " 2> " + err).c_str());
  return {WEXITSTATUS(status), read_file(out), read_file(err)};
}

std::vector<json> metrics(const std::string& dir) {
  std::vector<json> rows;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  return rows;
}

struct TempDir {
  std::string path = ::testing::TempDir() + "/wick_cli_lora_dir_" + std::to_string(getpid());
  TempDir() {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(CliLora, TrainWithDropoutResumesExactly) {
  TempDir tmp;
  std::string data = tmp.path + "/data.jsonl";
  {
    std::mt19937 rng(3);
    std::ofstream out(data);
    for (int i = 0; i < 7; ++i) {
      json ids = json::array();
      for (int k = 0; k < 10; ++k) ids.push_back(int(rng() % 256));
      out << json{{"input_ids", ids}}.dump() << "\n";
    }
  }
  std::string args = " --device cpu --model " + kTiny + " --data " + data +
                     " --steps 6 --batch-size 2 --lr 3e-3 --targets all-linear --rank 4 --seed 3 --checkpoint-every 3"
                     " --keep-checkpoints 5";
  Result r = run_wick("train --dropout 0.1 --out " + tmp.path + "/full" + args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto full = metrics(tmp.path + "/full");
  ASSERT_EQ(full.size(), 6u);
  EXPECT_EQ(json::parse(read_file(tmp.path + "/full/adapter_config.json"))["lora_dropout"].get<double>(), 0.1);

  // An interrupted run: only the step-3 checkpoint survives; --resume continues from it.
  std::filesystem::create_directories(tmp.path + "/resumed");
  std::filesystem::copy(tmp.path + "/full/checkpoint-3", tmp.path + "/resumed/checkpoint-3",
                        std::filesystem::copy_options::recursive);
  r = run_wick("train --dropout 0.1 --resume --out " + tmp.path + "/resumed" + args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto resumed = metrics(tmp.path + "/resumed");
  ASSERT_EQ(resumed.size(), 3u);
  for (size_t i = 0; i < resumed.size(); ++i) {
    EXPECT_EQ(resumed[i]["step"], full[3 + i]["step"]);
    EXPECT_EQ(resumed[i]["loss"].get<double>(), full[3 + i]["loss"].get<double>()) << "step " << 4 + i;
  }
  EXPECT_EQ(read_file(tmp.path + "/resumed/adapter_model.safetensors"), read_file(tmp.path + "/full/adapter_model.safetensors"));

  // Without dropout the same run takes other steps (from the second on: B starts at 0, so the
  // first step's loss does not depend on the masks).
  r = run_wick("train --dropout 0 --out " + tmp.path + "/plain" + args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto plain = metrics(tmp.path + "/plain");
  ASSERT_EQ(plain.size(), 6u);
  EXPECT_EQ(plain[0]["loss"].get<double>(), full[0]["loss"].get<double>());
  EXPECT_NE(plain[1]["loss"].get<double>(), full[1]["loss"].get<double>());
}

TEST(CliLora, DropoutOutOfRangeIsAOneLineError) {
  TempDir tmp;
  for (std::string value : {"1", "1.5", "-0.25"}) {
    Result r = run_wick("train --device cpu --model " + kTiny + " --data " + tmp.path + "/none.jsonl --out " + tmp.path +
                        "/out --dropout=" + value);
    EXPECT_NE(r.code, 0) << value;
    EXPECT_NE(r.err.find("--dropout"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// Two random adapters over SmolLM2 (non-zero B), switched inside one chat session; /reset makes each
// question a first turn, so each reply must equal `wick generate --chat` with that adapter alone.
TEST(CliLora, ChatSwitchesAdapters) {
  std::string model = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";
  ASSERT_TRUE(std::filesystem::exists(model)) << "missing " << model << " (run scripts/fetch-models.sh models)";
  TempDir tmp;
  {
    auto base = wick::models::DecoderModel::load_gguf(model, wick::Device::cpu(), wick::Dtype::F32);
    for (uint64_t seed : {1, 2}) {
      wick::lora::LoraConfig cfg;
      cfg.r = 4;
      cfg.target_modules = {seed == 1 ? "q_proj" : "v_proj"};
      wick::lora::Adapter a = wick::lora::Adapter::init(base, cfg, seed);
      a.set_parameters(wick::testing::parameters_with_random_b(a, seed, 0.05));
      a.save(tmp.path + "/adapter" + std::to_string(seed));
    }
  }
  std::string common = " --device cpu --model " + model + " --temperature 0 --max-tokens 8";
  auto reply = [&](const std::string& adapter) {
    Result r = run_wick("generate --chat --json --prompt Hello" + common + adapter);
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out)["text"].get<std::string>();
  };
  std::string want_a = reply(" --adapter " + tmp.path + "/adapter1"), want_b = reply(" --adapter " + tmp.path + "/adapter2"),
              want_none = reply("");
  EXPECT_NE(want_a, want_none);
  EXPECT_NE(want_b, want_a);
  Result r = run_wick("chat" + common + " --adapter a=" + tmp.path + "/adapter1 --adapter " + tmp.path + "/adapter2",
                      "Hello\n/reset\n/adapter adapter2\nHello\n/reset\n/adapter none\nHello\n/reset\n/adapter nope\n"
                      "/adapter a\nHello\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, want_a + "\n" + want_b + "\n" + want_none + "\n" + want_a + "\n");
  EXPECT_NE(r.err.find("adapter: none (loaded: a, adapter2)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no adapter named 'nope'"), std::string::npos) << r.err;
  // Errors at start name the adapter.
  r = run_wick("chat" + common + " --adapter x=" + tmp.path + "/missing", "Hello\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("'x'"), std::string::npos) << r.err;
  r = run_wick("chat" + common + " --adapter a=" + tmp.path + "/adapter1 --adapter a=" + tmp.path + "/adapter2", "");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("already loaded"), std::string::npos) << r.err;
}

}  // namespace

namespace {

// QLoRA-style training over SmolLM2's own Q4_1 blocks: the run reports the kept size, the loss
// falls, and the adapter it writes gives, over the kept base, the logits it gives over the base
// dequantized at load. --quantized-base file on a safetensors folder is a one-line error.
TEST(CliLora, TrainsOverTheGgufsOwnBlocks) {
  std::string model = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";
  ASSERT_TRUE(std::filesystem::exists(model)) << "missing " << model << " (run scripts/fetch-models.sh models)";
  std::string data = std::string(WICK_TEST_DATA_DIR) + "/../../data/demo/pirate_train.jsonl";
  TempDir tmp;
  Result r = run_wick("train --device cpu --quantized-base file --model " + model + " --data " + data + " --out " +
                      tmp.path + "/qlora --steps 4 --batch-size 2 --rank 4 --lr 2e-3 --max-length 64 --log-every 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("base linear layers kept quantized (file)"), std::string::npos) << r.err;
  std::vector<double> losses;
  for (std::istringstream lines(read_file(tmp.path + "/qlora/metrics.jsonl")); !lines.eof();) {
    std::string line;
    std::getline(lines, line);
    if (line.empty()) continue;
    json m = json::parse(line);
    if (m.contains("loss")) losses.push_back(m["loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), 4u);
  EXPECT_LT(losses.back(), losses.front());
  std::ofstream(tmp.path + "/ids.json") << R"({"input_ids": [[1, 9690, 314, 253, 10826]]})";
  std::string logits = "logits --device cpu --model " + model + " --ids-json " + tmp.path + "/ids.json --adapter " +
                       tmp.path + "/qlora";
  Result kept = run_wick(logits + " --quantized-base file"), dense = run_wick(logits);
  ASSERT_EQ(kept.code, 0) << kept.err;
  ASSERT_EQ(dense.code, 0) << dense.err;
  std::vector<float> a = json::parse(kept.out)["logits"][0][4].get<std::vector<float>>();
  std::vector<float> b = json::parse(dense.out)["logits"][0][4].get<std::vector<float>>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << i;
  r = run_wick("logits --device cpu --quantized-base file --model " + kTiny + " --ids-json " + tmp.path + "/ids.json");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("is a safetensors folder"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// --matmul-precision bf16: SmolLM2's products round their operands to bf16 (sums in f32), so the
// losses move off the f32 run's, by about what bf16's 8 bits allow; on a CUDA device the option is
// a one-line usage error.
TEST(CliLora, Bf16MatmulPrecisionTrainsCloseToF32) {
  std::string model = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";
  ASSERT_TRUE(std::filesystem::exists(model)) << "missing " << model << " (run scripts/fetch-models.sh models)";
  std::string data = std::string(WICK_TEST_DATA_DIR) + "/../../data/demo/pirate_train.jsonl";
  TempDir tmp;
  std::string args = "train --model " + model + " --data " + data +
                     " --steps 3 --batch-size 2 --rank 4 --lr 2e-3 --max-length 64 --log-every 1 --seed 0 --out " + tmp.path;
  Result f32 = run_wick(args + "/f32 --device cpu");
  ASSERT_EQ(f32.code, 0) << f32.err;
  Result bf16 = run_wick(args + "/bf16 --device cpu --matmul-precision bf16");
  ASSERT_EQ(bf16.code, 0) << bf16.err;
  std::vector<json> a = metrics(tmp.path + "/f32"), b = metrics(tmp.path + "/bf16");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  bool moved = false;
  for (size_t i = 0; i < 3; ++i) {
    double x = a[i]["loss"].get<double>(), y = b[i]["loss"].get<double>();
    EXPECT_NEAR(y, x, 5e-3 * x) << "step " << i + 1;
    moved = moved || x != y;
  }
  EXPECT_TRUE(moved) << "the bf16 run's losses equal the f32 run's: its products were not rounded";
  Result cuda = run_wick(args + "/cuda --device cuda --matmul-precision bf16");
  EXPECT_NE(cuda.code, 0);
  EXPECT_NE(cuda.err.find("--matmul-precision bf16 is for the CPU"), std::string::npos) << cuda.err;
}

}  // namespace
