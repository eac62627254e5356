// `wick bench` on the CPU with the small real SmolLM2 GGUF (scripts/fetch-models.sh): the JSON
// contract (fields, one entry per test in order, rates consistent with the timed seconds), the table,
// and a one-line error for each kind of bad argument.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

namespace {

using json = nlohmann::json;
const std::string kModel = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Result {
  int code;
  std::string out, err;
};

Result run_wick(const std::string& args) {
  // Unique per process: ctest runs the tests of this file in parallel.
  std::string base = ::testing::TempDir() + "/wick_bench_" + std::to_string(getpid());
  std::string out = base + "_out", err = base + "_err";
  int status = std::system((std::string(WICK_BINARY) + " " + args + " < /dev/null > " + out + " 2> " + err).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  return {WEXITSTATUS(status), slurp(out), slurp(err)};
}

bool have_model() {
  if (std::filesystem::exists(kModel)) return true;
  ADD_FAILURE() << "missing " << kModel << " (run scripts/fetch-models.sh models)";
  return false;
}

// `wick ARGS --json` succeeds and reports how it keeps the weights.
void expect_weights(const std::string& args, const std::string& weights) {
  Result r = run_wick(args);
  ASSERT_EQ(r.code, 0) << args << ": " << r.err;
  EXPECT_EQ(json::parse(r.out)["weights"], weights) << args << ": " << r.out;
}

// `wick ARGS` is refused as a usage error (exit 2) whose message holds `message`.
void expect_refusal(const std::string& args, const std::string& message) {
  Result r = run_wick(args);
  EXPECT_EQ(r.code, 2) << args << ": " << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
}

TEST(CliBench, JsonHasOneEntryPerTestWithConsistentRates) {
  if (!have_model()) return;
  Result r = run_wick("bench --device cpu --model " + kModel + " -p 4,8 -n 2 -b 1,2 -d 0,3 -r 3 --seed 7 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["model"], kModel);
  EXPECT_EQ(j["model_bytes"].get<uint64_t>(), std::filesystem::file_size(kModel));
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["dtype"], "f32");
  EXPECT_TRUE(j["quantized_base"].is_null());
  ASSERT_TRUE(j["commit"].is_string());
  EXPECT_FALSE(j["commit"].get<std::string>().empty());
  EXPECT_EQ(j["repetitions"], 3);
  EXPECT_EQ(j["seed"], 7);
  EXPECT_TRUE(j["model_memory_bytes"].is_null());  // GPU memory only

  // pp tests first, then tg by depth and batch.
  struct Want {
    const char* name;
    int n_prompt, n_gen, n_depth, batch;
  };
  const Want want[] = {{"pp4", 4, 0, 0, 1}, {"pp8", 8, 0, 0, 1},     {"tg2", 0, 2, 0, 1},
                       {"tg2", 0, 2, 0, 2}, {"tg2 @ d3", 0, 2, 3, 1}, {"tg2 @ d3", 0, 2, 3, 2}};
  ASSERT_EQ(j["tests"].size(), std::size(want));
  for (size_t i = 0; i < std::size(want); ++i) {
    const json& t = j["tests"][i];
    SCOPED_TRACE(t.dump());
    EXPECT_EQ(t["name"], want[i].name);
    EXPECT_EQ(t["n_prompt"], want[i].n_prompt);
    EXPECT_EQ(t["n_gen"], want[i].n_gen);
    EXPECT_EQ(t["n_depth"], want[i].n_depth);
    EXPECT_EQ(t["batch"], want[i].batch);
    EXPECT_TRUE(t["peak_memory_bytes"].is_null());
    auto seconds = t["seconds"].get<std::vector<double>>();
    ASSERT_EQ(seconds.size(), 3u);
    for (double s : seconds) EXPECT_GT(s, 0.0);
    // tokens/s from the reported times: a pp test counts its prompt, a tg test every sequence's tokens.
    double tokens = want[i].n_gen ? double(want[i].n_gen * want[i].batch) : double(want[i].n_prompt);
    std::sort(seconds.begin(), seconds.end());
    const json& rate = t["tokens_per_s"];
    EXPECT_NEAR(rate["min"].get<double>(), tokens / seconds[2], 1e-6 * tokens / seconds[2]);
    EXPECT_NEAR(rate["median"].get<double>(), tokens / seconds[1], 1e-6 * tokens / seconds[1]);
    EXPECT_NEAR(rate["max"].get<double>(), tokens / seconds[0], 1e-6 * tokens / seconds[0]);
  }
}

TEST(CliBench, TablePrintsOneRowPerTest) {
  if (!have_model()) return;
  Result r = run_wick("bench --device cpu --model " + kModel + " -p 4 -n 2 -b 1,3 -r 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cpu, f32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| test "), std::string::npos) << r.out;
  int rows = 0;
  std::stringstream ss(r.out);
  for (std::string line; std::getline(ss, line);)
    if (line.rfind("| pp4 ", 0) == 0 || line.rfind("| tg2 ", 0) == 0) ++rows;
  EXPECT_EQ(rows, 3) << r.out;
}

// --int8-activations: the file's blocks with 8-bit activations, reported in the header and the JSON;
// --threads sets the count it reports; a command that does not run inference refuses the flag.
TEST(CliBench, Int8ActivationsAndThreadsAreReported) {
  if (!have_model()) return;
  Result r = run_wick("bench --device cpu --model " + kModel + " -p 4 -n 2 -b 1,2 -r 1 --threads 1 --int8-activations --json");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["weights"], "the file's blocks, 8-bit activations, 1 threads") << r.out;
  EXPECT_EQ(j["threads"], 1) << r.out;
  EXPECT_EQ(j["tests"].size(), 3u) << r.out;
  Result refused = run_wick("embed --device cpu --model " + kModel + " --int8-activations");
  EXPECT_EQ(refused.code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--int8-activations"), std::string::npos) << refused.err;
}

// A K-quant GGUF (Qwen2.5-Coder-1.5B Q4_K_M: Q4_K and Q6_K blocks) decodes through 8-bit activations
// by default, as llama.cpp does; --f32-activations multiplies every block in f32, and it and
// --int8-activations exclude each other. SmolLM2's Q4_1 blocks stay in f32 by default (above).
TEST(CliBench, KQuantBlocksTakeEightBitActivationsUnlessAskedForF32) {
  const std::string model = std::string(WICK_TEST_DATA_DIR) + "/../../models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
  if (!std::filesystem::exists(model))
    GTEST_SKIP() << "missing " << model << " (scripts/fetch-models.sh models --qwen-coder)";
  const std::string base = "bench --device cpu --model " + model + " -p 0 -n 1 -b 1 -r 1 --threads 1 --json";
  expect_weights(base, "the file's blocks, 8-bit activations, 1 threads");
  expect_weights(base + " --f32-activations", "the file's blocks, 1 threads");
  expect_refusal(base + " --f32-activations --int8-activations", "exclude each other");
  expect_refusal(base + " --f32-activations --expand-weights", "leave out --expand-weights");
  expect_refusal("embed --device cpu --model " + model + " --f32-activations",
                 "--f32-activations is for generate, chat, bench and serve");
}

// --adapters: random adapters resident, the sequences of a test using them in turn; reported in the
// JSON and refused by the forward engine, which runs the base alone.
TEST(CliBench, AdaptersAreReportedAndNeedTheRuntime) {
  if (!have_model()) return;
  Result r = run_wick("bench --device cpu --model " + kModel + " -p 4 -n 2 -b 3 -r 1 --adapters 2 --adapter-rank 4 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["adapters"], 2) << r.out;
  EXPECT_EQ(j["adapter_rank"], 4) << r.out;
  EXPECT_EQ(j["tests"].size(), 2u) << r.out;
  Result plain = run_wick("bench --device cpu --model " + kModel + " -p 4 -n 0 -r 1 --json");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(json::parse(plain.out)["adapters"], 0) << plain.out;
  EXPECT_TRUE(json::parse(plain.out)["adapter_rank"].is_null()) << plain.out;
  Result table = run_wick("bench --device cpu --model " + kModel + " -p 0 -n 2 -b 2 -r 1 --adapters 1");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("1 adapters of rank 16"), std::string::npos) << table.out;
  Result forward = run_wick("bench --device cpu --model " + kModel + " -p 4 -n 0 -r 1 --engine forward --adapters 1");
  EXPECT_NE(forward.code, 0);
  EXPECT_NE(forward.err.find("--adapters needs --engine runtime"), std::string::npos) << forward.err;
  Result rank = run_wick("bench --device cpu --model " + kModel + " --adapters 1 --adapter-rank 0");
  EXPECT_NE(rank.code, 0);
  EXPECT_NE(rank.err.find("--adapter-rank"), std::string::npos) << rank.err;
}

// A GGUF on the CPU keeps its blocks by default (decode products in f32 over them); --expand-weights
// expands them at load; it and --int8-activations exclude each other, and a command that does not
// run inference, or a model that is not a GGUF, refuses it.
TEST(CliBench, GgufKeepsItsBlocksUnlessExpanded) {
  if (!have_model()) return;
  const std::string base = "bench --device cpu --model " + kModel + " -p 4 -n 2 -b 1 -r 1 --threads 1 --json";
  expect_weights(base, "the file's blocks, 1 threads");
  expect_weights(base + " --expand-weights", "dense f32, 1 threads");
  expect_refusal(base + " --expand-weights --int8-activations", "leave out --expand-weights");
  expect_refusal("embed --device cpu --model " + kModel + " --expand-weights",
                 "--expand-weights is for generate, chat, bench and serve");
  // A model without blocks has nothing to expand: refused, not ignored.
  expect_refusal("bench --device cpu --model " + std::string(WICK_TEST_DATA_DIR) +
                     "/models/qwen2_tied -p 4 -n 2 -b 1 -r 1 --expand-weights",
                 "--expand-weights needs a GGUF model");
}

TEST(CliBench, BadArgumentsGiveOneLineErrors) {
  if (!have_model()) return;
  const std::string base = "bench --device cpu --model " + kModel;
  const std::pair<std::string, std::string> cases[] = {
      {" -p 12x", "-p/--n-prompt: '12x' is not a whole number from 1"},
      {" -p 8,,16", "-p/--n-prompt: '' is not a whole number"},
      {" -b 0", "-b/--batch: '0' is not a whole number from 1"},
      {" -d -1", "-d/--n-depth: '-1' is not a whole number from 0"},
      {" -n 5000000", "-n/--n-gen: '5000000' is not a whole number from 1 to 1048576"},
      {" -p 0 -n 0", "-p 0 and -n 0 leave no test to run"},
      {" -r 0", "-r/--repetitions must be at least 1, got 0"},
      {" -p 9000", "a prompt of 9000 tokens exceeds the model's context of 8192"},
      {" -p 0 -n 100 -d 8100", "depth 8100 + 100 generated tokens exceed the model's context of 8192"},
  };
  for (const auto& [args, message] : cases) {
    Result r = run_wick(base + args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
  Result missing = run_wick("bench --device cpu --model /nonexistent/model.gguf");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("/nonexistent/model.gguf"), std::string::npos) << missing.err;
}

}  // namespace
