// `wick chat` sessions on SmolLM2 that a user does not lose: an empty line is skipped (the
// session goes on), Ctrl-C stops the reply being written and the next question is answered, and a
// conversation longer than the context drops its oldest turns (saying so) instead of exiting.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cli/cli_process.h"

namespace {

namespace fs = std::filesystem;
using wick_test::read_text;
using wick_test::WickProcess;

const std::string kSmolLM = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

class ChatSession : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kSmolLM)) << "missing " << kSmolLM << " (run scripts/fetch-models.sh models)";
    base_ = ::testing::TempDir() + "/wick_chat_session_" + std::to_string(getpid());
  }
  void TearDown() override {
    fs::remove(base_ + "_out");
    fs::remove(base_ + "_err");
  }
  std::vector<std::string> args(const std::string& extra) const {
    std::vector<std::string> a{"chat", "--device", "cpu", "--model", kSmolLM, "--temperature", "0"};
    std::istringstream words(extra);
    for (std::string w; words >> w;) a.push_back(w);
    return a;
  }
  // Runs a session on `input`; returns the exit code.
  int session(const std::string& extra, const std::string& input, std::string& out, std::string& err) {
    WickProcess p(args(extra), base_ + "_out", base_ + "_err");
    p.write_stdin(input);
    p.close_stdin();
    int code = p.wait(300);
    out = p.out();
    err = p.err();
    return code;
  }
  std::string base_;
};

TEST_F(ChatSession, AnEmptyLineDoesNotEndTheSession) {
  std::string out, err;
  ASSERT_EQ(session("--max-tokens 6", "Hello\n\n   \nHello\n", out, err), 0) << err;
  std::stringstream lines(out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_FALSE(first.empty()) << out;
  EXPECT_EQ(second, first) << out;  // the second question was answered after the blank lines
}

TEST_F(ChatSession, CtrlCStopsTheReplyNotTheSession) {
  WickProcess p(args("--max-tokens 4000 --context 8192"), base_ + "_out", base_ + "_err");
  p.write_stdin("Write a very long story about a dragon who learns to bake bread.\n");
  ASSERT_TRUE(WickProcess::wait_for([&] { return p.out().size() > 40; }, 120)) << p.err();
  p.signal(SIGINT);
  ASSERT_TRUE(WickProcess::wait_for([&] { return p.err().find("(reply stopped)") != std::string::npos; }, 30))
      << p.err();
  size_t stopped_at = p.out().size();
  p.write_stdin("What is the capital of France?\n");
  p.close_stdin();
  // A story of 4000 tokens would take minutes on a CPU; the session ends once the second reply does.
  int code = p.wait(240);
  ASSERT_EQ(code, 0) << p.err();
  std::string second = p.out().substr(stopped_at);
  EXPECT_NE(second.find("Paris"), std::string::npos) << second;
}

TEST_F(ChatSession, ALongConversationDropsItsOldestTurns) {
  std::string input;
  for (int i = 0; i < 6; ++i)
    input += "Please tell me one short fact about the number " + std::to_string(i + 2) + " and nothing else.\n";
  std::string out, err;
  ASSERT_EQ(session("--max-tokens 24 --context 160", input, out, err), 0) << err;
  EXPECT_NE(err.find("outgrew the context of 160 tokens: dropped the oldest"), std::string::npos) << err;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 6) << out;
  // A message that alone does not fit is refused, and the session goes on.
  std::string long_message(400, 'a');
  for (size_t i = 1; i < long_message.size(); i += 2) long_message[i] = ' ';
  ASSERT_EQ(session("--max-tokens 8 --context 64", long_message + "\nHello\n", out, err), 0) << err;
  EXPECT_NE(err.find("does not fit the context of 64 tokens; not sent"), std::string::npos) << err;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
