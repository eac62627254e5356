// Tokenizer::from_gguf: GGUF-style metadata (tokens, types, merges or scores) built from the shared
// tokenizer.json files must tokenize exactly like those files (the HF goldens).
#include "tokenizer_test_util.h"
#include "wick/tokenizer/gguf_tokenizer_json.h"

namespace wick::tok::test {
namespace {

// tokens by id (model vocabulary and added tokens), with GGUF token types.
GgufTokenizerData gguf_data_from(const std::string& name, const std::string& model) {
  nlohmann::json j = load_json(tokenizer_path(name));
  GgufTokenizerData d;
  d.model = model;
  size_t n = 0;
  for (auto& [tok, id] : j["model"]["vocab"].items()) n = std::max(n, id.get<size_t>() + 1);
  for (const auto& a : j["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
  d.tokens.resize(n);
  d.token_types.assign(n, 1);
  for (auto& [tok, id] : j["model"]["vocab"].items()) {
    d.tokens[id.get<size_t>()] = tok;
    if (tok.size() == 6 && tok.rfind("<0x", 0) == 0) d.token_types[id.get<size_t>()] = 6;
  }
  for (const auto& a : j["added_tokens"]) {
    d.tokens[a["id"].get<size_t>()] = a["content"].get<std::string>();
    d.token_types[a["id"].get<size_t>()] = a["special"].get<bool>() ? 3 : 4;
  }
  for (const auto& m : j["model"]["merges"])
    d.merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  return d;
}

void expect_ids_match_golden(const Tokenizer& tok, const std::string& name, bool with_special) {
  auto corpus = load_json(data_dir() / "corpus.json").get<std::vector<std::string>>();
  auto cases = load_json(data_dir() / ("golden_" + name + ".json"))["cases"];
  size_t failed = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    auto want = cases[i]["ids"].get<std::vector<int32_t>>();
    if (with_special && cases[i].contains("ids_special")) want = cases[i]["ids_special"].get<std::vector<int32_t>>();
    auto got = tok.encode(corpus[i], with_special);
    if (got == want) continue;
    ++failed;
    ADD_FAILURE() << name << " (gguf) case " << i << " text " << show(corpus[i]) << "\n  expected " << show(want)
                  << "\n  got      " << show(got) << "\n  " << first_mismatch(want, got);
  }
  EXPECT_EQ(failed, 0u) << failed << " of " << corpus.size() << " strings differ";
}

TEST(GgufTokenizer, Qwen2ByteLevelBpeMatchesTokenizerJson) {
  GgufTokenizerData d = gguf_data_from("qwen2.5", "gpt2");
  d.pre = "qwen2";
  d.eos_id = 151645;
  d.pad_id = 151643;
  Tokenizer tok = Tokenizer::from_gguf(d);
  expect_ids_match_golden(tok, "qwen2.5", false);
  EXPECT_EQ(tok.eos_id(), 151645);
  EXPECT_EQ(tok.vocab_size(), 151665);
  EXPECT_EQ(tok.decode(tok.encode("Hello <|im_start|>wörld 😀", false), false), "Hello <|im_start|>wörld 😀");
  EXPECT_EQ(tok.decode(tok.encode("a<|im_end|>", false), true), "a");
}

TEST(GgufTokenizer, Gpt2DefaultPreTokenizerMatchesTokenizerJson) {
  GgufTokenizerData d = gguf_data_from("gpt2", "gpt2");
  d.pre = "gpt2";
  Tokenizer tok = Tokenizer::from_gguf(d);
  expect_ids_match_golden(tok, "gpt2", false);
}

// A SentencePiece GGUF has no merges; they come from the scores. With score = -id (the order
// SentencePiece BPE vocabularies are written in) the merges reproduce Mistral's tokenizer.json.
// (A real GGUF carries the SentencePiece scores; this rebuilds them.)
GgufTokenizerData mistral_from_scores() {
  GgufTokenizerData d = gguf_data_from("mistral", "llama");
  d.merges.clear();
  d.scores.resize(d.tokens.size());
  // Runs of "▁" are user-defined pieces in SentencePiece models (score -1e9, merged last).
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    bool spaces = d.tokens[i].size() >= 6 && d.tokens[i].find_first_not_of("\xE2\x96\x81") == std::string::npos;
    d.scores[i] = d.token_types[i] != 1 ? 0.0f : spaces ? -1e9f : -static_cast<float>(i);
  }
  d.token_types[0] = 2;
  d.unk_id = 0;
  d.bos_id = 1;
  d.eos_id = 2;
  d.add_bos = true;
  return d;
}

TEST(GgufTokenizer, LlamaSentencePieceFromScoresMatchesTokenizerJson) {
  GgufTokenizerData d = mistral_from_scores();
  Tokenizer tok = Tokenizer::from_gguf(d);
  expect_ids_match_golden(tok, "mistral", true);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.decode({1, 22557, 28705, 1526}, true), "Hello  world");
}

// The tokenizer.json written beside a GGUF's model (wick merge) holds the same vocabulary and
// merges that from_gguf builds its model from apart: loaded back, it tokenizes as the goldens.
TEST(GgufTokenizer, ItsTokenizerJsonTokenizesAlike) {
  GgufTokenizerData gpt2 = gguf_data_from("gpt2", "gpt2");
  gpt2.pre = "gpt2";
  expect_ids_match_golden(Tokenizer::from_json(gguf_tokenizer_json(gpt2), nullptr, "gpt2 json"), "gpt2", false);
  nlohmann::json j = gguf_tokenizer_json(mistral_from_scores());
  EXPECT_TRUE(j["model"]["merges"][0].is_array());
  expect_ids_match_golden(Tokenizer::from_json(j, nullptr, "mistral json"), "mistral", true);
}

TEST(GgufTokenizer, UnsupportedPreTokenizerIsNamed) {
  GgufTokenizerData d;
  d.model = "gpt2";
  d.tokens = {"a", "b", "ab"};
  d.merges = {"a b"};
  d.pre = "deepseek-coder";
  try {
    Tokenizer::from_gguf(d);
    FAIL() << "expected an error";
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported tokenizer.ggml.pre 'deepseek-coder'"), std::string::npos) << e.what();
  }
  d.pre = "default";
  d.model = "bert";
  EXPECT_THROW(Tokenizer::from_gguf(d), wick::Error);
  d.model = "llama";  // no scores
  EXPECT_THROW(Tokenizer::from_gguf(d), wick::Error);
}

TEST(GgufTokenizer, AddBosAndEosWrapTheSequence) {
  GgufTokenizerData d;
  d.model = "gpt2";
  d.tokens = {"<s>", "</s>", "a", "b", "ab"};
  d.token_types = {3, 3, 1, 1, 1};
  d.merges = {"a b"};
  d.bos_id = 0, d.eos_id = 1;
  d.add_bos = d.add_eos = true;
  Tokenizer tok = Tokenizer::from_gguf(d);
  EXPECT_EQ(tok.encode("ab", true), (std::vector<int32_t>{0, 4, 1}));
  EXPECT_EQ(tok.encode("ab</s>", false), (std::vector<int32_t>{4, 1}));
  EXPECT_EQ(tok.decode({0, 4, 1}, true), "ab");
  EXPECT_EQ(tok.decode({0, 4, 1}, false), "<s>ab</s>");
}

}  // namespace
}  // namespace wick::tok::test
