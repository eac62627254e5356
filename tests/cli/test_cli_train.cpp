// `wick train` on a tiny model as a user runs it: progress lines (or a progress bar on a
// terminal) with loss, rate, speed, elapsed time and ETA, the summary, loss.svg and best/, early
// stopping and its flags, and a loss that is not finite as a one-line error that keeps the last
// good checkpoint.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
const std::string kModel = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";

struct Result {
  int code;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

// A folder of its own with pre-tokenised training and validation data for the tiny model.
class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/wick_cli_train_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::mt19937 rng(5);
    std::ofstream train(dir_ + "/train.jsonl"), val(dir_ + "/val.jsonl");
    for (int i = 0; i < 8; ++i) {
      json unit = json::array();
      for (int k = 0; k < 5; ++k) unit.push_back(int(rng() % 256));
      json ids = json::array();
      for (int r = 0; r < 3; ++r)
        for (const auto& t : unit) ids.push_back(t);
      (i < 6 ? train : val) << json{{"input_ids", ids}}.dump() << "\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `wick train` on the data with `args`, stderr to a file (not a terminal).
  Result train(const std::string& args) {
    std::string cmd = std::string(WICK_BINARY) + " train --device cpu --model " + kModel + " --data " + dir_ +
                      "/train.jsonl --out " + out() + " --rank 4 --batch-size 2 " + args + " > /dev/null 2> " +
                      dir_ + "/err";
    int status = std::system(cmd.c_str());
    return {WEXITSTATUS(status), slurp(dir_ + "/err")};
  }
  std::string out() const { return dir_ + "/out"; }
  std::string val() const { return " --validation " + dir_ + "/val.jsonl"; }
  std::vector<json> metrics() const {
    std::vector<json> rows;
    for (const auto& line : lines(slurp(out() + "/metrics.jsonl"))) rows.push_back(json::parse(line));
    return rows;
  }
  size_t plotted_steps() const {
    std::string svg = slurp(out() + "/loss.svg");
    size_t at = svg.find("<polyline class=\"train\"");
    if (at == std::string::npos) return 0;
    size_t p = svg.find("points=\"", at) + 8;
    std::stringstream points(svg.substr(p, svg.find('"', p) - p));
    size_t n = 0;
    for (std::string xy; points >> xy;) ++n;
    return n;
  }

  std::string dir_;
};

std::vector<std::string> step_lines(const std::string& err) {
  std::vector<std::string> out;
  for (const auto& l : lines(err))
    if (l.rfind("step ", 0) == 0) out.push_back(l);
  return out;
}

TEST_F(TrainCli, PlainLinesWhenNotATerminal) {
  Result r = train("--steps 4" + val() + " --eval-every 2 --log-every 3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  // --log-every 3: step 3, plus the validation passes (2 and 4); the last step is among them.
  auto steps = step_lines(r.err);
  ASSERT_EQ(steps.size(), 3u) << r.err;
  EXPECT_EQ(steps[0].rfind("step 2/4  loss ", 0), 0u) << steps[0];
  EXPECT_EQ(steps[1].rfind("step 3/4  loss ", 0), 0u) << steps[1];
  EXPECT_EQ(steps[2].rfind("step 4/4  loss ", 0), 0u) << steps[2];
  for (const auto& l : steps)
    for (const char* field : {"  lr ", "  grad-norm ", " tok/s  elapsed ", "  eta "}) EXPECT_NE(l.find(field), std::string::npos) << l;
  EXPECT_NE(steps[0].find("  val "), std::string::npos) << steps[0];
  EXPECT_NE(steps[0].find(" (best)"), std::string::npos) << steps[0];  // the first pass is the best so far
  EXPECT_NE(steps[2].find("  eta 0s"), std::string::npos) << steps[2];
  auto all = lines(r.err);
  ASSERT_GE(all.size(), 2u);
  EXPECT_EQ(all[all.size() - 2].rfind("trained to step 4 of 4 in ", 0), 0u) << r.err;
  EXPECT_NE(all[all.size() - 2].find(": loss "), std::string::npos) << r.err;
  EXPECT_NE(all[all.size() - 2].find("best validation loss"), std::string::npos) << r.err;
  EXPECT_EQ(all.back(), "adapter written to " + out() + " (loss curve: " + out() + "/loss.svg)");
  EXPECT_TRUE(fs::exists(out() + "/adapter_config.json"));
  EXPECT_TRUE(fs::exists(out() + "/best/adapter_model.safetensors"));
  EXPECT_EQ(plotted_steps(), 4u);
  auto rows = metrics();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1]["step"], 2);
  EXPECT_TRUE(rows[1].contains("val_loss"));
  EXPECT_TRUE(rows[3].contains("val_loss"));
  EXPECT_EQ(rows[1]["best"], true);
  json best = json::parse(slurp(out() + "/best/best.json"));
  EXPECT_EQ(best["step"], rows[3].contains("best") ? 4 : 2);

  // Without --log-every: a line per step (--overwrite: the run above is in --out).
  r = train("--steps 3 --overwrite");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(step_lines(r.err).size(), 3u) << r.err;
}

TEST_F(TrainCli, ProgressBarOnATerminal) {
  if (std::system("command -v script > /dev/null 2>&1") != 0) GTEST_SKIP() << "needs script(1) for a terminal";
  // script(1) gives the command a pseudo-terminal; all of it (stderr included) lands in `typescript`.
  std::string cmd = std::string(WICK_BINARY) + " train --device cpu --model " + kModel + " --data " + dir_ +
                    "/train.jsonl --out " + out() + " --rank 4 --batch-size 2 --steps 3" + val() + " --eval-every 2";
  std::string run = "script -qec '" + cmd + "' " + dir_ + "/typescript > /dev/null 2>&1 < /dev/null";
  ASSERT_EQ(std::system(run.c_str()), 0) << slurp(dir_ + "/typescript");
  std::string tty = slurp(dir_ + "/typescript");
  // The bar is redrawn in place after a carriage return and ends full; the validation pass of
  // step 2 is a line of its own above it.
  EXPECT_NE(tty.find("\rstep 1/3 ["), std::string::npos) << tty;
  EXPECT_NE(tty.find("\rstep 3/3 [##########"), std::string::npos) << tty;
  EXPECT_NE(tty.find("]  100%  loss "), std::string::npos) << tty;
  EXPECT_NE(tty.find("\r\x1b[Kstep 2/3  loss "), std::string::npos) << tty;
  EXPECT_EQ(tty.find("step 1/3  loss "), std::string::npos) << "no log line without --log-every: " << tty;
  EXPECT_NE(tty.find("trained to step 3 of 3"), std::string::npos) << tty;
  // The bar's line is ended before the summary.
  size_t summary = tty.find("trained to step");
  ASSERT_NE(summary, std::string::npos);
  EXPECT_EQ(tty[summary - 1], '\n') << tty;
}

// The LM head and loss fused (the default) or apart (--unfused-loss): the same losses, training
// and validation, step by step (the tiny model's f32 on the CPU).
TEST_F(TrainCli, FusedAndUnfusedLossTrainAlike) {
  Result r = train("--steps 4 --eval-every 2" + val());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> fused = metrics();
  r = train("--steps 4 --eval-every 2 --overwrite --unfused-loss" + val());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> unfused = metrics();
  ASSERT_EQ(fused.size(), 4u);
  ASSERT_EQ(unfused.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    for (const char* key : {"loss", "val_loss"}) {
      ASSERT_EQ(fused[i].contains(key), unfused[i].contains(key)) << key << " at row " << i;
      if (!fused[i].contains(key)) continue;
      double a = fused[i][key].get<double>(), b = unfused[i][key].get<double>();
      EXPECT_NEAR(a, b, 1e-4 * std::abs(b)) << key << " at step " << fused[i]["step"];
    }
}

// --packing: six examples of 15 tokens go two to a row of 32; the run trains on the rows and says so.
TEST_F(TrainCli, PackingFillsRowsOfMaxLength) {
  Result r = train("--steps 2 --packing --max-length 32 --eval-every 2" + val());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("packed 6 examples into 3 rows of up to 32 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("training 3 packed rows (1 validation)"), std::string::npos) << r.err;
  std::vector<json> rows = metrics();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["tokens"], 2 * 30);  // two rows of two examples: real tokens only
  EXPECT_TRUE(rows[1].contains("val_loss"));
}

TEST_F(TrainCli, EarlyStoppingAndItsFlags) {
  Result r = train("--steps 4 --early-stopping-patience 2");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("--early-stopping-patience needs validation data (--validation)"), std::string::npos) << r.err;
  r = train("--steps 4 --early-stopping-patience 2" + val());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--eval-every"), std::string::npos) << r.err;
  r = train("--steps 4 --early-stopping-delta -1" + val());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--early-stopping-delta"), std::string::npos) << r.err;

  // An improvement must exceed 100: only the first pass counts, so patience 2 stops after pass 3.
  r = train("--steps 20 --eval-every 1 --early-stopping-patience 2 --early-stopping-delta 100 --checkpoint-every 10" + val());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("stopped after step 3 of 20: early stopping: the validation loss has not improved on "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" (step 1) by more than 100 in 2 validation passes\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("trained to step 3 of 20"), std::string::npos) << r.err;
  EXPECT_EQ(metrics().size(), 3u);
  EXPECT_TRUE(fs::exists(out() + "/adapter_config.json"));
  EXPECT_TRUE(fs::exists(out() + "/checkpoint-3/trainer_state.json"));
  EXPECT_EQ(plotted_steps(), 3u);
}

TEST_F(TrainCli, LossThatIsNotFiniteIsAOneLineErrorThatKeepsTheLastCheckpoint) {
  // Rate 0 at step 1 (warm-up), a huge one at step 2: the loss of step 3 overflows.
  Result r = train("--steps 6 --lr 1e30 --warmup 1000 --targets all-linear --checkpoint-every 1 --keep-checkpoints 5");
  EXPECT_NE(r.code, 0);
  auto all = lines(r.err);
  ASSERT_FALSE(all.empty());
  const std::string& error = all.back();
  EXPECT_EQ(error.rfind("wick: error: train: the loss became NaN at step 3; stopped before its update", 0), 0u) << r.err;
  EXPECT_NE(error.find("the last checkpoint is " + out() + "/checkpoint-2"), std::string::npos) << error;
  EXPECT_EQ(step_lines(r.err).size(), 2u) << r.err;
  EXPECT_TRUE(fs::exists(out() + "/checkpoint-2/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(out() + "/checkpoint-3"));
  EXPECT_FALSE(fs::exists(out() + "/adapter_config.json"));  // no final adapter from a failed run
  EXPECT_EQ(metrics().size(), 2u);
  EXPECT_EQ(plotted_steps(), 2u);
}

// With q_proj and v_proj only, the same rates may leave the loss finite a step longer and break the
// gradient first: whichever goes first, the step it names is not saved and the one before is.
TEST_F(TrainCli, GradientOrLossThatIsNotFiniteStopsBeforeItsUpdate) {
  Result r = train("--steps 8 --lr 1e30 --warmup 1000 --checkpoint-every 1 --keep-checkpoints 8");
  EXPECT_NE(r.code, 0);
  auto all = lines(r.err);
  ASSERT_FALSE(all.empty());
  const std::string& error = all.back();
  ASSERT_TRUE(error.rfind("wick: error: train: the loss became ", 0) == 0 ||
              error.rfind("wick: error: train: the gradient norm became ", 0) == 0)
      << r.err;
  size_t at = error.find(" at step ");
  ASSERT_NE(at, std::string::npos) << error;
  int step = std::stoi(error.substr(at + 9));
  ASSERT_GE(step, 2) << error;
  EXPECT_NE(error.find("; stopped before its update"), std::string::npos) << error;
  EXPECT_NE(error.find("the last checkpoint is " + out() + "/checkpoint-" + std::to_string(step - 1)), std::string::npos)
      << error;
  EXPECT_FALSE(fs::exists(out() + "/checkpoint-" + std::to_string(step)));
  EXPECT_EQ(metrics().size(), size_t(step - 1));
  EXPECT_EQ(plotted_steps(), size_t(step - 1));
}

}  // namespace

namespace {

// --init-adapter takes rank, alpha, dropout, rsLoRA and targets from the adapter's config: giving
// them too is an error rather than a silently ignored option.
TEST_F(TrainCli, GradientCheckpointingNeedsEagerSteps) {
  Result r = train("--steps 1 --gradient-checkpointing --exec lazy");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("activation checkpointing runs eager steps"), std::string::npos) << r.err;
  Result ok = train("--steps 2 --gradient-checkpointing");
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(TrainCli, InitAdapterRefusesTheOptionsItsConfigSets) {
  ASSERT_EQ(train("--steps 2").code, 0);
  std::string init = dir_ + "/init";
  fs::rename(out(), init);
  Result r = train("--steps 2 --init-adapter " + init + " --alpha 8");  // train() passes --rank 4 too
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("train: --rank, --alpha cannot be combined with --init-adapter"), std::string::npos) << r.err;
  std::string cmd = std::string(WICK_BINARY) + " train --device cpu --model " + kModel + " --data " + dir_ +
                    "/train.jsonl --out " + dir_ + "/out2 --batch-size 2 --steps 1 --init-adapter " + init +
                    " > /dev/null 2> " + dir_ + "/err2";
  int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(dir_ + "/err2");
}

// Several GPUs: what can be checked without one is checked before anything is loaded or written.
TEST_F(TrainCli, SeveralGpusAreCheckedBeforeLoading) {
  Result both = train("--steps 1 --gpus 2 --world-size 2");
  EXPECT_NE(both.code, 0);
  EXPECT_NE(both.err.find("give one or the other"), std::string::npos) << both.err;
  Result cpu = train("--steps 1 --gpus 2");
  EXPECT_NE(cpu.code, 0);
  EXPECT_TRUE(cpu.err.find("--device cpu cannot be combined with several GPUs") != std::string::npos ||
              cpu.err.find("has no NCCL") != std::string::npos)
      << cpu.err;
  Result rank = train("--steps 1 --world-size 2 --process-rank 2");
  EXPECT_NE(rank.code, 0);
  EXPECT_NE(rank.err.find("rank 2 is out of range for world size 2"), std::string::npos) << rank.err;
  EXPECT_FALSE(fs::exists(out())) << "nothing is written before the checks";
}

}  // namespace
