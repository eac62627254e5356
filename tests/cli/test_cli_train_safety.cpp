// `wick train` keeping a user's work: Ctrl-C finishes the step and leaves an adapter and a
// checkpoint that --resume continues exactly (a second Ctrl-C exits at once); an earlier run in
// --out is never mixed in (refused unless --resume or --overwrite); --resume names its checkpoint
// and keeps its adapter settings; bad JSONL lines and a malformed tokenizer get messages saying
// what is wrong; a disk that fills during a checkpoint leaves no checkpoint-N.tmp behind.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/cli_process.h"
#include "wick/io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using wick_test::read_text;
using wick_test::WickProcess;

const std::string kTiny = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";
const std::string kSmolLM = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Result {
  int code;
  std::string err;
};

class TrainSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/wick_train_safety_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::mt19937 rng(7);
    std::ofstream data(dir_ + "/train.jsonl");
    for (int i = 0; i < 6; ++i) {
      json ids = json::array();
      for (int k = 0; k < 12; ++k) ids.push_back(int(rng() % 256));
      data << json{{"input_ids", ids}}.dump() << "\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> args(const std::string& out, const std::string& extra) const {
    std::vector<std::string> a{"train", "--device", "cpu", "--model", kTiny, "--data", dir_ + "/train.jsonl",
                               "--out", out, "--batch-size", "2", "--lr", "1e-3", "--seed", "3"};
    std::istringstream words(extra);
    for (std::string w; words >> w;) a.push_back(w);
    return a;
  }
  Result train(const std::string& out, const std::string& extra, const std::string& data = "") {
    std::vector<std::string> a = args(out, extra);
    if (!data.empty()) a[6] = data;
    WickProcess p(a, dir_ + "/stdout", dir_ + "/stderr");
    p.close_stdin();
    int code = p.wait(300);
    return {code, p.err()};
  }
  static size_t lines(const std::string& path) {
    std::string text = read_text(path);
    return size_t(std::count(text.begin(), text.end(), '\n'));
  }
  static std::vector<float> tensor(const std::string& dir, const std::string& name) {
    wick::io::SafeTensors st = wick::io::SafeTensors::open(dir + "/adapter_model.safetensors");
    const wick::io::TensorView& t = st.get(name);
    std::vector<float> v(size_t(t.numel()));
    std::memcpy(v.data(), t.data, t.nbytes);
    return v;
  }

  std::string dir_;
};

// The first SIGINT: the step in progress finishes, the adapter and checkpoint-N are written, the
// message says how to resume, and --resume then reproduces the uninterrupted run (constant rate:
// the schedule does not depend on the total).
TEST_F(TrainSafety, FirstSigintWritesTheAdapterAndACheckpointThatResumesExactly) {
  std::string out = dir_ + "/interrupted";
  WickProcess p(args(out, "--steps 1000000 --rank 4 --log-every 1"), dir_ + "/stdout", dir_ + "/stderr");
  p.close_stdin();
  ASSERT_TRUE(WickProcess::wait_for([&] { return lines(out + "/metrics.jsonl") >= 3; }, 120)) << p.err();
  p.signal(SIGINT);
  int code = p.wait(120);
  std::string err = p.err();
  EXPECT_EQ(code, 130) << err;
  EXPECT_NE(err.find("finishing this step"), std::string::npos) << err;
  EXPECT_NE(err.find("run the same command with --resume"), std::string::npos) << err;
  ASSERT_TRUE(fs::exists(out + "/adapter_model.safetensors")) << err;
  ASSERT_TRUE(fs::exists(out + "/adapter_config.json")) << err;
  int64_t stopped = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0) stopped = std::stoll(name.substr(11));
  }
  ASSERT_GE(stopped, 3) << err;
  EXPECT_NE(err.find("checkpoint-" + std::to_string(stopped)), std::string::npos) << err;
  EXPECT_EQ(lines(out + "/metrics.jsonl"), size_t(stopped));
  // The checkpoint names its base model.
  json config = json::parse(read_text(out + "/checkpoint-" + std::to_string(stopped) + "/adapter_config.json"));
  EXPECT_EQ(config["base_model_name_or_path"], kTiny);

  int64_t total = stopped + 3;
  Result resumed = train(out, "--resume --steps " + std::to_string(total));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming from " + out + "/checkpoint-" + std::to_string(stopped) + " (step " +
                             std::to_string(stopped) + " of " + std::to_string(total) + ")"),
            std::string::npos)
      << resumed.err;
  Result full = train(dir_ + "/full", "--rank 4 --steps " + std::to_string(total));
  ASSERT_EQ(full.code, 0) << full.err;
  for (const char* name : {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                           "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"})
    EXPECT_EQ(tensor(out, name), tensor(dir_ + "/full", name)) << name;
}

// A second SIGINT does not wait for the step: the process ends at once.
TEST_F(TrainSafety, SecondSigintExitsAtOnce) {
  ASSERT_TRUE(fs::exists(kSmolLM)) << "missing " << kSmolLM << " (run scripts/fetch-models.sh models)";
  std::string data = std::string(WICK_TEST_DATA_DIR) + "/../../data/demo/pirate_train.jsonl";
  std::string out = dir_ + "/smol";
  std::vector<std::string> a{"train", "--device", "cpu", "--model", kSmolLM, "--data", data, "--out", out,
                             "--steps", "1000", "--batch-size", "4", "--max-length", "256", "--log-every", "1"};
  WickProcess p(a, dir_ + "/stdout", dir_ + "/stderr");
  p.close_stdin();
  ASSERT_TRUE(WickProcess::wait_for([&] { return p.err().find("training ") != std::string::npos; }, 120)) << p.err();
  p.signal(SIGINT);
  ASSERT_TRUE(WickProcess::wait_for([&] { return p.err().find("finishing this step") != std::string::npos; }, 10));
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(10), 130) << p.err();
  EXPECT_NE(p.err().find("interrupted again: exiting now"), std::string::npos) << p.err();
}

TEST_F(TrainSafety, AnEarlierRunInOutIsRefusedUnlessResumedOrOverwritten) {
  std::string out = dir_ + "/out";
  ASSERT_EQ(train(out, "--rank 4 --steps 4 --checkpoint-every 2").code, 0);
  std::ofstream(out + "/notes.txt") << "mine";
  Result again = train(out, "--rank 4 --steps 2");
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("is not empty"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--overwrite"), std::string::npos) << again.err;
  Result both = train(out, "--rank 4 --steps 2 --resume --overwrite");
  EXPECT_NE(both.code, 0);
  EXPECT_NE(both.err.find("exclude each other"), std::string::npos) << both.err;
  Result replaced = train(out, "--rank 4 --steps 2 --overwrite");
  ASSERT_EQ(replaced.code, 0) << replaced.err;
  EXPECT_FALSE(fs::exists(out + "/checkpoint-2"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint-4"));
  EXPECT_EQ(lines(out + "/metrics.jsonl"), 2u);
  EXPECT_EQ(read_text(out + "/notes.txt"), "mine");  // only what a run writes is replaced
  Result nothing = train(dir_ + "/empty", "--rank 4 --steps 2 --resume");
  EXPECT_NE(nothing.code, 0);
  EXPECT_NE(nothing.err.find("found no checkpoint"), std::string::npos) << nothing.err;
}

TEST_F(TrainSafety, StepsWithEpochsIsAnError) {
  Result r = train(dir_ + "/out", "--steps 3 --epochs 2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--steps or --epochs, not both"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/out"));
}

// --resume takes the adapter's settings from the checkpoint: --rank may be left out, and a
// different --rank says so instead of a tensor shape mismatch.
TEST_F(TrainSafety, ResumeKeepsTheCheckpointsRank) {
  std::string out = dir_ + "/out";
  ASSERT_EQ(train(out, "--rank 4 --steps 2 --checkpoint-every 2").code, 0);
  Result wrong = train(out, "--resume --rank 8 --steps 4");
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("--rank 8 differs from the checkpoint's rank 4"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("shape"), std::string::npos) << wrong.err;
  Result right = train(out, "--resume --steps 4");
  ASSERT_EQ(right.code, 0) << right.err;
  EXPECT_EQ(json::parse(read_text(out + "/adapter_config.json"))["r"], 4);
  EXPECT_EQ(lines(out + "/metrics.jsonl"), 4u);
}

TEST_F(TrainSafety, BadJsonlLinesSayWhatIsWrong) {
  auto error_for = [&](const std::string& line) {
    std::string path = dir_ + "/bad.jsonl";
    std::ofstream(path, std::ios::binary) << R"({"input_ids": [1, 2, 3, 4]})" << "\n" << line << "\n";
    Result r = train(dir_ + "/out", "--steps 1", path);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("bad.jsonl:2: "), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
    return r.err;
  };
  EXPECT_NE(error_for(R"({"input_ids": [1, 2, 3)").find("incomplete JSON"), std::string::npos);
  EXPECT_NE(error_for("{\"text\": \"caf\xe9\"}").find("not valid UTF-8 (byte 14"), std::string::npos);
  EXPECT_NE(error_for(R"({"text": 5})").find(R"("text" must be a string, got a number)"), std::string::npos);
  EXPECT_NE(error_for(R"({"input_ids": [1, "2"]})").find(R"("input_ids"[1] must be an integer token id, got a string)"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"text": "a" "b"})").find("invalid JSON at column"), std::string::npos);
  EXPECT_NE(error_for(R"([1, 2])").find("expected a JSON object, got an array"), std::string::npos);
}

// A model folder whose tokenizer.json is broken: text data is refused with the reason the
// tokenizer could not be loaded, not as if the model had none.
TEST_F(TrainSafety, MalformedTokenizerIsReportedAsMalformed) {
  std::string model = dir_ + "/model";
  fs::copy(kTiny, model);
  std::ofstream(model + "/tokenizer.json") << R"({"model": {"type": "BPE", "vocab": )";
  std::ofstream(dir_ + "/text.jsonl") << R"({"text": "hello"})" << "\n";
  std::vector<std::string> a = args(dir_ + "/out", "--steps 1");
  a[4] = model;
  a[6] = dir_ + "/text.jsonl";
  WickProcess p(a, dir_ + "/stdout", dir_ + "/stderr");
  p.close_stdin();
  EXPECT_NE(p.wait(120), 0);
  std::string err = p.err();
  EXPECT_NE(err.find("could not be loaded"), std::string::npos) << err;
  EXPECT_NE(err.find("tokenizer.json"), std::string::npos) << err;
}

// The disk fills while a checkpoint is written (a file size limit stands in for it): the error
// says which checkpoint, and neither checkpoint-N.tmp nor a temporary file stays.
TEST_F(TrainSafety, FullDiskDuringACheckpointLeavesNoTemporaryFolder) {
  ASSERT_EQ(train(dir_ + "/sizes", "--rank 4 --steps 1 --checkpoint-every 1").code, 0);
  auto adapter = fs::file_size(dir_ + "/sizes/checkpoint-1/adapter_model.safetensors");
  auto optimizer = fs::file_size(dir_ + "/sizes/checkpoint-1/optimizer.safetensors");
  ASSERT_GT(optimizer, adapter + 1024);
  std::string out = dir_ + "/full";
  WickProcess p(args(out, "--rank 4 --steps 2 --checkpoint-every 1"), dir_ + "/stdout", dir_ + "/stderr",
                long(adapter + 512));
  p.close_stdin();
  int code = p.wait(120);
  std::string err = p.err();
  EXPECT_NE(code, 0) << err;
  EXPECT_NE(err.find("writing the checkpoint " + out + "/checkpoint-1 failed"), std::string::npos) << err;
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_FALSE(fs::exists(out + "/checkpoint-1"));
}

}  // namespace
