// `wick chat`'s own interface: --help lists the session's commands, /reset says it cleared the
// conversation, and on a terminal lines are edited with a history (the up arrow recalls a line),
// `wick template` reads the training data's {"messages": [...]} form.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/wick_process.h"

namespace {

using json = nlohmann::json;
using wick_test::run_wick;
const std::string kSmol = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

TEST(CliChatUi, HelpListsTheSessionCommands) {
  auto r = run_wick("chat --help");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* command : {"/reset", "/adapter NAME", "/adapter none"})
    EXPECT_NE(r.out.find(command), std::string::npos) << command << "\n" << r.out;
}

TEST(CliChatUi, ResetConfirms) {
  auto r = run_wick("chat --device cpu --model " + kSmol, "/reset\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(conversation cleared)"), std::string::npos) << r.err;
}

// "/reset", then the up arrow and Enter: the line comes back from the history and runs again.
TEST(CliChatUi, TerminalLinesHaveAHistory) {
  auto version = run_wick("--version");
  if (version.out.find("chat line editing") == std::string::npos) GTEST_SKIP() << "built without libedit";
  auto r = wick_test::run_wick_on_terminal("chat --device cpu --model " + kSmol, "/reset\r\x1b[A\r",
                                           "conversation cleared", 2, "\x04");
  ASSERT_EQ(r.code, 0) << r.out;
  size_t first = r.out.find("(conversation cleared)");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(conversation cleared)", first + 1), std::string::npos) << r.out;
}

TEST(CliChatUi, TemplateAcceptsTheTrainingFormat) {
  json messages = json::array({{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Hello!"}}});
  auto bare = run_wick("template --tokenizer " + kSmol, messages.dump());
  auto wrapped = run_wick("template --tokenizer " + kSmol, json{{"messages", messages}}.dump());
  ASSERT_EQ(bare.code, 0) << bare.err;
  ASSERT_EQ(wrapped.code, 0) << wrapped.err;
  EXPECT_EQ(wrapped.out, bare.out);
  EXPECT_NE(bare.out.find("Hello!"), std::string::npos);
  auto bad = run_wick("template --tokenizer " + kSmol, "{\"text\": \"x\"}");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("{\"messages\": [...]}"), std::string::npos) << bad.err;
}

}  // namespace
