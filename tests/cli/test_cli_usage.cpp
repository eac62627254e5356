// How the command line answers misuse and questions about itself: one error style (`wick: error:`,
// exit code 2 for usage errors, "did you mean" for mistyped options and commands), range checks that
// name their bound, defaults shown in --help, `wick --version`, the short flags, and lost output
// (stdout on a full disk) reported as a failure.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/wick_process.h"

namespace {

using json = nlohmann::json;
using wick_test::run_wick;
const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/../../models";
const std::string kSmol = kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kMiniLM = kModels + "/all-MiniLM-L6-v2";
const std::string kTiny = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";

bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }
size_t line_count(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

TEST(CliUsage, UnknownCommandIsAUsageErrorWithASuggestion) {
  auto r = run_wick("foo");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(starts_with(r.err, "wick: error: unknown command 'foo'")) << r.err;
  r = run_wick("generat --model x");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("did you mean generate?"), std::string::npos) << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  r = run_wick("");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(starts_with(r.err, "wick: error: a command is required")) << r.err;
}

TEST(CliUsage, UnknownOptionSuggestsTheClosestOne) {
  auto r = run_wick("generate --model " + kTiny + " --prompt-ids 1 --max-token 5");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(starts_with(r.err, "wick: error: unknown option --max-token for wick generate")) << r.err;
  EXPECT_NE(r.err.find("did you mean --max-tokens?"), std::string::npos) << r.err;
  r = run_wick("embed --modle x");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("did you mean --model?"), std::string::npos) << r.err;
}

TEST(CliUsage, RangeErrorsNameTheBoundAtParseTime) {
  // The model does not exist: a range error must come first, from the parser.
  auto r = run_wick("generate --model /no/such/model --prompt hi --repetition-penalty 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(starts_with(r.err, "wick: error: wick generate: --repetition-penalty: must be > 0, got 0")) << r.err;
  EXPECT_LT(r.err.size(), 120u) << r.err;
  r = run_wick("generate --model /no/such/model --prompt hi --top-p 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--top-p: must be in (0, 1], got 0"), std::string::npos) << r.err;
  r = run_wick("train --model /no/such/model --data x --out y --lr 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--lr: must be > 0, got 0"), std::string::npos) << r.err;
  r = run_wick("generate --prompt hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(starts_with(r.err, "wick: error: wick generate: --model is required")) << r.err;
}

TEST(CliUsage, EmptyPromptSaysSo) {
  auto r = run_wick("generate --device cpu --model " + kTiny + " --prompt \"\"");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "wick: error: generate: the prompt is empty\n");
  r = run_wick("generate --device cpu --model " + kTiny + " --prompt-ids \"\"");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "wick: error: generate: the prompt is empty\n");
  r = run_wick("generate --device cpu --model " + kTiny + " --prompt-ids 1 --prompt hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("give one of --prompt, --prompt-file, --prompt-ids or --prompts"), std::string::npos) << r.err;
}

TEST(CliUsage, HelpShowsEveryDefault) {
  auto r = run_wick("generate --help");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* shown : {"-n,--max-tokens", "=128", "--device", "=auto", "--seed", "default: random"})
    EXPECT_NE(r.out.find(shown), std::string::npos) << shown << "\n" << r.out;
  r = run_wick("train --help");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* option : {"--rank", "--steps", "--batch-size", "--lr", "--checkpoint-every"}) {
    size_t at = r.out.find(option);
    ASSERT_NE(at, std::string::npos) << option;
    std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    EXPECT_NE(line.find('='), std::string::npos) << "no default shown: " << line;
  }
  r = run_wick("embed --help");
  EXPECT_NE(r.out.find("=32"), std::string::npos) << r.out;  // --batch-size
}

TEST(CliUsage, VersionNamesCommitAndBackends) {
  auto r = run_wick("--version");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(starts_with(r.out, "wick 0.")) << r.out;
  EXPECT_NE(r.out.find("\ncommit: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nbackends: cpu"), std::string::npos) << r.out;
#ifdef WICK_HAVE_CUDA
  EXPECT_NE(r.out.find("\nCUDA devices: "), std::string::npos) << r.out;
#endif
}

TEST(CliUsage, ShortFlagsMatchTheLongOnes) {
  auto long_form =
      run_wick("generate --device cpu --model " + kTiny + " --prompt-ids 3,4,5 --max-tokens 6 --seed 1 --json");
  auto short_form = run_wick("generate --device cpu -m " + kTiny + " --prompt-ids 3,4,5 -n 6 --seed 1 --json");
  ASSERT_EQ(long_form.code, 0) << long_form.err;
  ASSERT_EQ(short_form.code, 0) << short_form.err;
  EXPECT_EQ(json::parse(short_form.out)["token_ids"].size(), 6u);
  EXPECT_EQ(short_form.out, long_form.out);
  auto p = run_wick("generate --device cpu -m " + kSmol + " -p \"The sky is\" -n 3 --json");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(json::parse(p.out)["token_ids"].size(), 3u) << p.out;
}

// `> /dev/full`: every write fails with ENOSPC, and wick must say so and exit non-zero.
TEST(CliUsage, OutputToAFullDiskFails) {
  auto r =
      run_wick("generate --device cpu --model " + kSmol + " --prompt \"The sky is\" --max-tokens 4", "", "/dev/full");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("writing to stdout failed"), std::string::npos) << r.err;
  r = run_wick("generate --device cpu --model " + kSmol + " --prompt \"The sky is\" --max-tokens 4 --json", "",
               "/dev/full");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("writing to stdout failed"), std::string::npos) << r.err;
  r = run_wick("embed --device cpu --model " + kMiniLM, "\"hello\"\n", "/dev/full");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("writing to stdout failed"), std::string::npos) << r.err;
}

}  // namespace
