// Tokenizer API and bad input: loading from a folder, special ids, vocabulary look-ups, invalid
// UTF-8, streaming, and errors that name the file and the field.
#include <fstream>
#include <thread>

#include "tokenizer_test_util.h"
#include "wick/tokenizer/unicode.h"

namespace wick::tok::test {
namespace {

// Runs `fn`, expecting a wick::Error whose message contains every fragment.
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected a wick::Error containing '" << fragments.at(0) << "'";
  } catch (const wick::Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "message: " << e.what();
  }
}

// A tiny valid BPE tokenizer.json that tests modify.
nlohmann::json tiny() {
  return nlohmann::json::parse(R"({
    "version": "1.0", "added_tokens": [{"id": 3, "content": "<s>", "special": true, "normalized": false,
      "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3}, "merges": ["a b"]}})");
}

Tokenizer load(const nlohmann::json& j) { return Tokenizer::from_json_string(j.dump(), "", "tiny.json"); }

TEST(TokenizerApi, FolderWithConfigGivesSpecialIds) {
  Tokenizer qwen = Tokenizer::from_file(tokenizers_dir() / "qwen2.5");
  EXPECT_EQ(qwen.eos_id(), 151645);
  EXPECT_EQ(qwen.pad_id(), 151643);
  EXPECT_FALSE(qwen.bos_id().has_value());
  EXPECT_FALSE(qwen.unk_id().has_value());
  EXPECT_EQ(qwen.vocab_size(), 151665);
  EXPECT_EQ(qwen.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(qwen.token_to_id("Hello"), 9707);
  EXPECT_EQ(qwen.id_to_token(9707), "Hello");
  EXPECT_FALSE(qwen.id_to_token(1 << 30).has_value());
  EXPECT_FALSE(qwen.token_to_id("no such token at all").has_value());
  EXPECT_TRUE(qwen.is_special(151644));
  EXPECT_FALSE(qwen.is_special(9707));

  Tokenizer mistral = Tokenizer::from_file(tokenizers_dir() / "mistral");
  EXPECT_EQ(mistral.bos_id(), 1);
  EXPECT_EQ(mistral.eos_id(), 2);
  EXPECT_EQ(mistral.unk_id(), 0);
  EXPECT_EQ(mistral.vocab_size(), 32000);

  Tokenizer minilm = Tokenizer::from_file(tokenizers_dir() / "minilm");
  EXPECT_EQ(minilm.unk_id(), 100);
  EXPECT_EQ(minilm.pad_id(), 0);
  EXPECT_EQ(minilm.truncation_max_length(), 128u);
  EXPECT_EQ(minilm.encode("Hello, world!", true), (std::vector<int32_t>{101, 7592, 1010, 2088, 999, 102}));
}

TEST(TokenizerApi, InvalidUtf8IsReplacedLikeLossyDecoding) {
  Tokenizer qwen = Tokenizer::from_file(tokenizer_path("qwen2.5"));
  EXPECT_EQ(qwen.encode("a\xff" "b\xe4\xb8", false), qwen.encode("a\xEF\xBF\xBD" "b\xEF\xBF\xBD", false));
  // Decoding a partial character gives U+FFFD, as HF does.
  auto ids = qwen.encode("\xF0\xA0\x80\x80", false);  // U+20000: several byte-level tokens
  ASSERT_GT(ids.size(), 1u);
  EXPECT_EQ(qwen.decode({ids[0]}, false), "\xEF\xBF\xBD");
}

// Each maximal invalid subsequence becomes one U+FFFD (expected values from Python's
// bytes.decode("utf-8", "replace"), which follows the same rule as Rust's from_utf8_lossy).
TEST(TokenizerApi, LossyUtf8MatchesRust) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(to_valid_utf8("\xe4\xb8"), r);
  EXPECT_EQ(to_valid_utf8("\xed\xa0\x80"), r + r + r);
  EXPECT_EQ(to_valid_utf8("\xf0\x80"), r + r);
  EXPECT_EQ(to_valid_utf8("\xc0\xaf"), r + r);
  EXPECT_EQ(to_valid_utf8("a\xff" "b"), "a" + r + "b");
  EXPECT_EQ(to_valid_utf8("\xf4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(to_valid_utf8("\xe4\xb8" "a"), r + "a");
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98"), r);
  EXPECT_EQ(to_valid_utf8("ok \xe4\xb8\xad"), "ok \xe4\xb8\xad");
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x98"));
}

TEST(TokenizerApi, StreamingHoldsBackIncompleteCharacters) {
  Tokenizer qwen = Tokenizer::from_file(tokenizer_path("qwen2.5"));
  std::string text = "Hi 😀👍🏽 中文 𠀀🫠ꦧ done";
  auto ids = qwen.encode(text, false);
  StreamingDecoder stream(qwen, false);
  std::string all;
  for (int32_t id : ids) {
    std::string piece = stream.step(id);
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "broken character emitted for id " << id;
    all += piece;
  }
  all += stream.finish();
  EXPECT_EQ(all, text);
}

// encode is const and shares the BPE word cache between threads.
TEST(TokenizerApi, ConcurrentEncodeGivesTheSameIds) {
  Tokenizer qwen = Tokenizer::from_file(tokenizer_path("qwen2.5"));
  auto corpus = load_json(data_dir() / "corpus.json").get<std::vector<std::string>>();
  std::vector<std::vector<int32_t>> want;
  for (const auto& text : corpus) want.push_back(qwen.encode(text, true));
  Tokenizer fresh = Tokenizer::from_file(tokenizer_path("qwen2.5"));  // empty cache
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < corpus.size(); ++k) {
        size_t i = (k * 7 + static_cast<size_t>(t) * 13) % corpus.size();
        if (fresh.encode(corpus[i], true) != want[i]) ++mismatches[static_cast<size_t>(t)];
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(TokenizerErrors, MissingFileNamesThePath) {
  expect_error([] { Tokenizer::from_file("/nonexistent/dir/tokenizer.json"); },
               {"/nonexistent/dir/tokenizer.json", "does not exist"});
  expect_error([] { Tokenizer::from_file(data_dir()); }, {"has no tokenizer.json", data_dir().string()});
}

TEST(TokenizerErrors, MalformedJson) {
  expect_error([] { Tokenizer::from_json_string("{\"model\": {", "", "broken.json"); }, {"broken.json", "malformed JSON"});
  expect_error([] { Tokenizer::from_json_string("[1, 2]", "", "list.json"); }, {"list.json", "JSON object"});
  // A number too large for a double is nlohmann's out_of_range, not a parse_error (found by fuzzing).
  expect_error([] { Tokenizer::from_json_string("{\"model\": 1e999}", "", "huge.json"); }, {"huge.json", "malformed JSON"});
  expect_error([] { Tokenizer::from_json_string(tiny().dump(), "{\"bos_token\": -1e999}", "tiny.json"); },
               {"tokenizer_config.json", "malformed JSON", "number overflow"});
  auto j = tiny();
  j.erase("model");
  expect_error([&] { load(j); }, {"tiny.json", "missing field 'model'"});
  j = tiny();
  j["model"]["merges"] = {"a q"};
  expect_error([&] { load(j); }, {"tiny.json: model.merges[0]", "'q' is not in the vocabulary"});
  j = tiny();
  j["model"]["merges"] = {42};
  expect_error([&] { load(j); }, {"model.merges[0]", "expected \"a b\""});
  j = tiny();
  j["model"]["vocab"] = {{"a", "zero"}};
  expect_error([&] { load(j); }, {"model.vocab['a']", "integer"});
  j = tiny();
  j["added_tokens"][0].erase("content");
  expect_error([&] { load(j); }, {"added_tokens[0]", "missing field 'content'"});
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error([&] { load(j); }, {"(unclosed", "does not compile"});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  expect_error([&] { load(j); }, {"pre_tokenizer.behavior", "unknown split behavior 'Sideways'"});
}

TEST(TokenizerErrors, UnknownTypesAreNamed) {
  auto j = tiny();
  j["model"]["type"] = "Unigram";
  expect_error([&] { load(j); }, {"tiny.json: model", "unknown model type 'Unigram'"});
  j = tiny();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Precompiled"}}}}};
  expect_error([&] { load(j); }, {"normalizer.normalizers[1]", "unknown normalizer type 'Precompiled'"});
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Whitespace"}}, {{"type", "Foo"}}}}};
  expect_error([&] { load(j); }, {"pre_tokenizer.pretokenizers[1]", "unknown pre-tokenizer type 'Foo'"});
  j = tiny();
  j["decoder"] = {{"type", "CTC"}};
  expect_error([&] { load(j); }, {"decoder", "unknown decoder type 'CTC'"});
  j = tiny();
  j["post_processor"] = {{"type", "Bogus"}};
  expect_error([&] { load(j); }, {"post_processor", "unknown post-processor type 'Bogus'"});
  j = tiny();
  j["normalizer"] = {{"lowercase", true}};
  expect_error([&] { load(j); }, {"normalizer", "missing field 'type'"});
}

// Numbers of the wrong type or out of range are wick::Errors naming the field (found by
// fuzz/tokenizer/fuzz_tokenizer_json.cpp: nlohmann's type_error escaped, a float-to-size_t
// conversion was undefined, and a huge vocabulary id made the id table allocate tens of GB).
TEST(TokenizerErrors, OutOfRangeAndMistypedNumbers) {
  auto j = tiny();
  j["model"]["vocab"]["ab"] = 17899999999LL;  // used to wrap to an int32 id of 720 million
  expect_error([&] { load(j); }, {"tiny.json: model.vocab['ab']", "out of range"});
  j["model"]["vocab"]["ab"] = 2147483647;
  expect_error([&] { load(j); }, {"model.vocab['ab']", "out of range"});
  j["model"]["vocab"]["ab"] = -1;
  expect_error([&] { load(j); }, {"model.vocab['ab']", "out of range"});
  j = tiny();
  j["model"]["dropout"] = "x";
  expect_error([&] { load(j); }, {"model.dropout", "wrong type"});
  j["model"]["dropout"] = 0.0;
  EXPECT_EQ(load(j).encode("ab", false), std::vector<int32_t>{2});
  j = tiny();
  j["truncation"] = {{"max_length", "x"}};
  expect_error([&] { load(j); }, {"truncation.max_length", "non-negative integer"});
  j["truncation"] = {{"max_length", 7}};
  EXPECT_EQ(load(j).truncation_max_length(), 7u);
  j = tiny();
  j["post_processor"] = nlohmann::json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": ["x"], "tokens": ["<s>"]}}})");
  expect_error([&] { load(j); }, {"post_processor.special_tokens['<s>'].ids[0]", "integer"});
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = 3;
  expect_error([&] { load(j); }, {"post_processor.special_tokens['<s>'].ids", "expected an array"});
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = {3};
  EXPECT_EQ(load(j).encode("ab", true), (std::vector<int32_t>{3, 2}));
  j["post_processor"] = {{"type", "BertProcessing"}, {"cls", {"<s>", 99999999999LL}}, {"sep", {"<s>", 3}}};
  expect_error([&] { load(j); }, {"post_processor.cls[1]", "out of range"});
  j = tiny();
  j["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", 2e34}, {"stop", 0}};
  expect_error([&] { load(j); }, {"decoder.start", "expected an integer"});
  j["decoder"]["start"] = -1;
  expect_error([&] { load(j); }, {"decoder.start", "expected an integer"});
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", ""}};
  expect_error([&] { load(j); }, {"pre_tokenizer.replacement", "expected one character"});
}

TEST(TokenizerApi, TinyTokenizerBasics) {
  Tokenizer t = load(tiny());
  EXPECT_EQ(t.encode("ab a<s>b", false), (std::vector<int32_t>{2, 0, 3, 1}));
  EXPECT_EQ(t.decode({2, 0, 3, 1}, false), "ab a <s> b");  // no decoder: tokens joined by spaces
  EXPECT_EQ(t.decode({2, 0, 3, 1, 99}, true), "ab a b");   // unknown ids are skipped
  EXPECT_EQ(t.encode("", true), std::vector<int32_t>{});
  EXPECT_EQ(t.encode("c", false), std::vector<int32_t>{});  // no unk token: HF drops the character
}

}  // namespace
}  // namespace wick::tok::test

namespace wick::tok::test {
namespace {

// A copy of the Mistral folder with a modified tokenizer_config.json.
std::filesystem::path mistral_with_config(const nlohmann::json& changes, const std::string& tag) {
  std::filesystem::path src = tokenizers_dir() / "mistral";
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("wick_tok_" + tag);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(src / "tokenizer.json", dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  nlohmann::json config = load_json(src / "tokenizer_config.json");
  for (auto& [k, v] : changes.items()) config[k] = v;
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  return dir;
}

// tokenizer.json's post-processor decides; transformers 5.24 gives [1, 22557] for all of these too.
TEST(TokenizerApi, ConfigAddBosAddEosDoNotOverrideThePostProcessor) {
  Tokenizer eos = Tokenizer::from_file(mistral_with_config({{"add_eos_token", true}}, "eos"));
  EXPECT_EQ(eos.encode("Hello", true), (std::vector<int32_t>{1, 22557}));
  EXPECT_EQ(eos.eos_id(), 2);
  Tokenizer none = Tokenizer::from_file(mistral_with_config({{"add_bos_token", false}, {"eos_token", nullptr}}, "nobos"));
  EXPECT_EQ(none.encode("Hello", true), (std::vector<int32_t>{1, 22557}));
  EXPECT_FALSE(none.eos_id().has_value());
}

}  // namespace
}  // namespace wick::tok::test
