// libFuzzer target: tokenizer.json (+ optional tokenizer_config.json) loading, then encode/decode
// with the tokenizer it built. Build and run: see fuzz/CMakeLists.txt.
//
// Input: the whole input is a tokenizer.json, or, when it holds NUL bytes (which no JSON text
// contains), up to three parts separated by NUL: tokenizer.json, tokenizer_config.json (empty:
// none), and a text to encode. Loading may only throw wick::Error; any other exception escapes
// and is reported by libFuzzer as a crash.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wick/base/error.h"
#include "wick/tokenizer/tokenizer.h"

namespace {

// Short texts that reach the normalizers, added tokens, byte fallback and the byte-level map.
constexpr std::string_view kTexts[] = {
    "",
    "Hello, world! It's 2024.",
    "  two  spaces\tand a tab\nnewline ",
    "<s>[CLS] hi</s><|endoftext|>[SEP]<unk>",
    "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 A\xCC\x8A",  // é, CJK, emoji, combining ring
    "\xFF\xFE\x80 bad \xC3",                                           // invalid UTF-8
    std::string_view("nul\0byte", 8),
};
constexpr size_t kStreamedText = 4;  // the one fixed text also fed to StreamingDecoder

// Texts taken from the input are cut to this many bytes: long ones only make runs slow.
constexpr size_t kMaxTextBytes = 256;

void exercise(const wick::tok::Tokenizer& t, std::string_view text, bool stream) {
  text = text.substr(0, kMaxTextBytes);
  (void)t.decode(t.encode(text, /*add_special_tokens=*/false), /*skip_special_tokens=*/false);
  std::vector<int32_t> ids = t.encode(text, /*add_special_tokens=*/true);
  for (bool skip : {false, true}) (void)t.decode(ids, skip);
  if (!stream) return;
  // Each step decodes a window of ids: a few steps cover the logic without making runs slow.
  wick::tok::StreamingDecoder streaming(t, /*skip_special_tokens=*/true);
  for (size_t i = 0; i < ids.size() && i < 16; ++i) (void)streaming.step(ids[i]);
  (void)streaming.finish();
}

void run(std::string_view tokenizer_json, std::string_view config_json, std::string_view text, bool has_text) {
  std::optional<wick::tok::Tokenizer> built;
  try {
    built.emplace(wick::tok::Tokenizer::from_json_string(tokenizer_json, config_json, "fuzz.json"));
  } catch (const wick::Error&) {
    return;  // rejected input: the expected outcome for most mutations
  }
  const wick::tok::Tokenizer& t = *built;
  // Encoding can still fail with wick::Error on valid files (e.g. a regex hitting PCRE2's match
  // limit, an unk_token missing from the vocabulary): that is a reported error, not a finding.
  try {
    for (size_t i = 0; i < std::size(kTexts); ++i) exercise(t, kTexts[i], /*stream=*/i == kStreamedText);
    if (has_text) exercise(t, text, /*stream=*/true);
    // The text of the first and the last ids (added tokens usually sit at the end), encoded again.
    const int32_t n = t.vocab_size();
    for (int32_t id : {0, 1, 2, n - 3, n - 2, n - 1}) {
      if (auto tok = t.id_to_token(id)) {
        exercise(t, *tok, /*stream=*/false);
        (void)t.token_to_id(*tok);
        (void)t.is_special(id);
      }
    }
    // Ids outside the vocabulary are skipped by decode.
    (void)t.decode({-1, n, INT32_MAX, INT32_MIN, 0}, false);
    (void)t.id_to_token(-1), (void)t.id_to_token(n);
    for (auto id : {t.bos_id(), t.eos_id(), t.pad_id(), t.unk_id()})
      if (id) (void)t.decode({*id, *id}, true);
  } catch (const wick::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t first = input.find('\0');
  if (first == std::string_view::npos) {
    run(input, {}, {}, false);
    return 0;
  }
  std::string_view rest = input.substr(first + 1);
  size_t second = rest.find('\0');
  std::string_view config = rest.substr(0, second);
  std::string_view text = second == std::string_view::npos ? std::string_view() : rest.substr(second + 1);
  run(input.substr(0, first), config, text, second != std::string_view::npos);
  return 0;
}
