// Streaming text with stop strings over SmolLM2's real tokenizer (byte-level BPE): pieces are
// complete UTF-8 and add up to the tokenizer's decode, a stop string is found across token
// boundaries and cuts the text before it, text that may start a stop string waits, and the token
// count covers exactly the returned text.
#include "wick/serve/completion_text.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "wick/io/gguf.h"
#include "wick/models/gguf_tokenizer.h"

using namespace wick;
using serve::CompletionText;

namespace {

const std::string kSmolLM2 = std::string(WICK_TEST_DATA_DIR) + "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf";

const tok::Tokenizer* tokenizer() {
  static std::unique_ptr<tok::Tokenizer> t;
  if (!t && std::filesystem::exists(kSmolLM2))
    t = std::make_unique<tok::Tokenizer>(models::tokenizer_from_gguf(io::GgufFile::open(kSmolLM2)));
  return t.get();
}

#define NEED_TOKENIZER()                  \
  const tok::Tokenizer* tk = tokenizer(); \
  if (!tk) GTEST_SKIP() << "missing " << kSmolLM2 << " (run scripts/fetch-models.sh models)"

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

TEST(CompletionText, PiecesAreWholeCharactersAndAddUpToTheDecode) {
  NEED_TOKENIZER();
  const std::string text = "Grüße aus Köln! 日本語のテキスト 🙂🙃 and ASCII.";
  std::vector<int32_t> ids = tk->encode(text, false);
  CompletionText out(*tk, {});
  std::string streamed;
  for (int32_t id : ids) {
    EXPECT_FALSE(out.add(id));
    std::string piece = out.take();
    EXPECT_TRUE(valid_utf8(piece)) << piece;
    streamed += piece;
  }
  out.finish();
  streamed += out.take();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(out.text(), text);
  EXPECT_EQ(out.tokens_in_text(), ids.size());
  EXPECT_EQ(out.released_tokens(), ids.size());
}

TEST(CompletionText, AStopStringAcrossTokensCutsTheTextAndItsTokens) {
  NEED_TOKENIZER();
  std::vector<int32_t> ids = tk->encode("Hello world, this is a test of stop strings.", false);
  CompletionText out(*tk, {"is a te", ", this"});
  size_t added = 0;
  std::string streamed;
  while (added < ids.size() && !out.add(ids[added++])) streamed += out.take();
  streamed += out.take();
  ASSERT_TRUE(out.stopped());
  EXPECT_EQ(out.text(), "Hello world");  // the earliest of the two stop strings wins
  EXPECT_EQ(streamed, "Hello world");
  EXPECT_LT(added, ids.size());
  std::vector<int32_t> kept(ids.begin(), ids.begin() + long(out.tokens_in_text()));
  EXPECT_EQ(tk->decode(kept, true), "Hello world");
  kept.pop_back();
  EXPECT_NE(tk->decode(kept, true), "Hello world");  // no fewer tokens make the text
}

TEST(CompletionText, TextThatMayStartAStopStringWaits) {
  NEED_TOKENIZER();
  std::vector<int32_t> ids = tk->encode("hello world war", false);
  CompletionText out(*tk, {"world peace"});
  std::string streamed;
  bool checked = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    out.add(ids[i]);
    streamed += out.take();
    if (tk->decode(std::vector<int32_t>(ids.begin(), ids.begin() + long(i) + 1), true) == "hello world") {
      EXPECT_EQ(streamed, "hello ");  // "world" could be the start of "world peace"
      checked = true;
    }
  }
  EXPECT_TRUE(checked) << "'hello world war' did not split after 'world'";
  EXPECT_EQ(streamed, "hello world war");  // " war" rules the stop string out
  EXPECT_FALSE(out.stopped());
}

TEST(CompletionText, HeldTextIsReleasedAtTheEnd) {
  NEED_TOKENIZER();
  std::vector<int32_t> ids = tk->encode("I wish for world pea", false);
  CompletionText out(*tk, {"world peace"});
  std::string streamed;
  for (int32_t id : ids) {
    out.add(id);
    streamed += out.take();
  }
  EXPECT_EQ(streamed, "I wish for ");
  out.finish();
  streamed += out.take();
  EXPECT_EQ(streamed, "I wish for world pea");
  EXPECT_EQ(out.tokens_in_text(), ids.size());
}

TEST(CompletionText, AStopAtTheStartLeavesNoTextAndNoTokens) {
  NEED_TOKENIZER();
  std::vector<int32_t> ids = tk->encode("Stop right there", false);
  CompletionText out(*tk, {"Stop"});
  size_t added = 0;
  while (added < ids.size() && !out.add(ids[added++])) {
  }
  EXPECT_TRUE(out.stopped());
  EXPECT_EQ(out.text(), "");
  EXPECT_EQ(out.take(), "");
  EXPECT_EQ(out.tokens_in_text(), 0u);
}
