// models::load_decoder / load_encoder: a model with its tokenizer, chat template, EOS ids and
// generation or pooling defaults, from a GGUF file and from Hugging Face folders. The expected values
// come from the files themselves (GGUF metadata read by gguf-py, the JSON files) and from the goldens
// of HF tokenizers and jinja2 (tests/data/tokenizer, tests/data/chat).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tokenizer/tokenizer_test_util.h"
#include "wick/models/loading.h"

namespace wick::models {
namespace {

namespace fs = std::filesystem;

const fs::path kData = WICK_TEST_DATA_DIR;
const fs::path kModels = (kData / ".." / ".." / "models").lexically_normal();

// A model folder assembled for one test in the temporary directory, removed afterwards.
class TempFolder {
 public:
  explicit TempFolder(const std::string& tag)
      : path_(fs::temp_directory_path() / ("wick_loading_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempFolder() { fs::remove_all(path_); }
  void link(const fs::path& file) { fs::create_symlink(fs::absolute(file), path_ / file.filename()); }
  void write(const std::string& name, const std::string& text) { std::ofstream(path_ / name) << text; }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// The first `n` corpus strings of a tokenizer golden encode to HF's ids and decode back.
void expect_round_trip(const tok::Tokenizer& tokenizer, const std::string& golden_name, size_t n) {
  tok::test::Golden golden = tok::test::load_golden(golden_name);
  ASSERT_GE(golden.corpus.size(), n);
  for (size_t i = 0; i < n; ++i) {
    tok::test::Expected want = tok::test::expected_case(golden.cases[i], golden.corpus[i]);
    EXPECT_EQ(tokenizer.encode(golden.corpus[i], false), want.ids) << golden_name << " case " << i;
    EXPECT_EQ(tokenizer.decode(want.ids_special, false), want.decoded) << golden_name << " case " << i;
  }
}

// The chat template renders jinja2's goldens for every conversation without tools.
void expect_renders_golden(const chat::ChatTemplateConfig& config, const std::string& golden_file) {
  nlohmann::ordered_json golden = nlohmann::ordered_json::parse(std::ifstream(kData / "chat" / golden_file));
  chat::ChatTemplate tmpl(config.chat_template);
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    if (!c["tools"].is_null() || !c.contains("expected")) continue;
    EXPECT_EQ(tmpl.render(c["messages"], c["add_generation_prompt"].get<bool>(), config.options),
              c["expected"].get<std::string>())
        << golden_file << " " << c["name"];
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(LoadDecoder, SmolLM2GgufWithItsTokenizerTemplateAndEos) {
  std::string path = (kModels / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
  ASSERT_TRUE(fs::exists(path)) << "missing " << path << " (run scripts/fetch-models.sh models)";
  LoadedDecoder loaded = load_decoder(path, {});
  EXPECT_EQ(loaded.path, path);
  EXPECT_EQ(loaded.model.config().vocab_size, 49152);
  EXPECT_EQ(loaded.eos_ids, (std::vector<int32_t>{2}));  // tokenizer.ggml.eos_token_id: <|im_end|>
  EXPECT_FALSE(loaded.generation.has_value());  // a GGUF has no generation_config.json

  const tok::Tokenizer& tokenizer = loaded.require_tokenizer();
  EXPECT_EQ(tokenizer.eos_id(), 2);
  expect_round_trip(tokenizer, "gguf_smollm2", 60);

  const chat::ChatTemplateConfig& config = loaded.require_chat_template();
  std::ifstream jinja(kData / "chat" / "smollm2-135m-instruct.jinja", std::ios::binary);
  EXPECT_EQ(config.chat_template, std::string(std::istreambuf_iterator<char>(jinja), {}));
  EXPECT_EQ(config.options.bos_token, "<|im_start|>");
  EXPECT_EQ(config.options.eos_token, "<|im_end|>");
  expect_renders_golden(config, "golden_smollm2-135m-instruct.json");
}

// A Qwen2 folder: the tiny test model's weights with Qwen2.5's tokenizer files and a
// generation_config.json as Qwen2.5-Instruct ships it.
TEST(LoadDecoder, FolderWithTokenizerTemplateAndGenerationConfig) {
  TempFolder dir("qwen2");
  for (const char* f : {"config.json", "model.safetensors"}) dir.link(kData / "models" / "qwen2_tied" / f);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) dir.link(kData / "tokenizers" / "qwen2.5" / f);
  dir.write("generation_config.json", R"({"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": true,
    "eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8, "top_k": 20})");
  LoadedDecoder loaded = load_decoder(dir.path(), {});
  EXPECT_EQ(loaded.path, dir.path());
  EXPECT_EQ(loaded.eos_ids, (std::vector<int32_t>{151645, 151643}));  // config.json names none
  ASSERT_TRUE(loaded.generation.has_value());
  EXPECT_EQ(loaded.generation->temperature, 0.7);
  EXPECT_EQ(loaded.generation->top_p, 0.8);
  EXPECT_EQ(loaded.generation->top_k, 20);
  EXPECT_EQ(loaded.generation->repetition_penalty, 1.05);
  EXPECT_EQ(loaded.generation->do_sample, true);

  const tok::Tokenizer& tokenizer = loaded.require_tokenizer();
  EXPECT_EQ(tokenizer.eos_id(), 151645);
  expect_round_trip(tokenizer, "qwen2.5", 60);
  const chat::ChatTemplateConfig& config = loaded.require_chat_template();
  EXPECT_EQ(config.options.eos_token, "<|im_end|>");
  expect_renders_golden(config, "golden_qwen2.5-instruct.json");
}

// EOS ids of config.json come first, then generation_config.json's, each once.
TEST(LoadDecoder, EosIdsOfConfigAndGenerationConfigWithoutDuplicates) {
  TempFolder dir("llama");
  for (const char* f : {"config.json", "model.safetensors"}) dir.link(kData / "models" / "llama_untied" / f);
  dir.write("generation_config.json", R"({"eos_token_id": [7, 2, 9]})");  // config.json: eos_token_id 2
  LoadedDecoder loaded = load_decoder(dir.path(), {});
  EXPECT_EQ(loaded.eos_ids, (std::vector<int32_t>{2, 7, 9}));
}

// The test models have no tokenizer: the model loads, and asking for the tokenizer or template
// raises what loading them raised, naming the folder.
TEST(LoadDecoder, FolderWithoutTokenizerLoadsTheModelAlone) {
  std::string path = (kData / "models" / "llama_untied").string();
  LoadedDecoder loaded = load_decoder(path, {});
  EXPECT_EQ(loaded.eos_ids, (std::vector<int32_t>{2}));
  EXPECT_FALSE(loaded.tokenizer.has_value());
  EXPECT_FALSE(loaded.chat_template.has_value());
  try {
    loaded.require_tokenizer();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llama_untied"), std::string::npos) << e.what();
  }
  EXPECT_THROW(loaded.require_chat_template(), Error);

  LoadOptions options;
  options.with_tokenizer = false;
  std::string gguf = (kModels / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
  LoadedDecoder bare = load_decoder(gguf, options);
  EXPECT_EQ(bare.eos_ids, (std::vector<int32_t>{2}));
  EXPECT_FALSE(bare.tokenizer.has_value());
  try {
    bare.require_tokenizer();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("with_tokenizer is false"), std::string::npos) << e.what();
  }
}

TEST(LoadDecoder, BadPathsNameWhatWasWrong) {
  try {
    load_decoder((kData / "models" / "bert" / "model.safetensors").string(), {});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a decoder needs a model folder or a .gguf file"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_decoder("/no/such/model", {}), Error);
}

// all-MiniLM-L6-v2 as sentence-transformers ships it: mean pooling, Normalize, max_seq_length 256.
TEST(LoadEncoder, MiniLMWithItsTokenizerAndSentenceTransformersSettings) {
  std::string path = (kModels / "all-MiniLM-L6-v2").string();
  ASSERT_TRUE(fs::exists(path)) << "missing " << path << " (run scripts/fetch-models.sh models)";
  LoadedEncoder loaded = load_encoder(path, {});
  EXPECT_TRUE(loaded.sentence_transformers.has_value());
  EXPECT_EQ(loaded.default_pooling(), Pooling::Mean);
  EXPECT_TRUE(loaded.default_normalize());
  EXPECT_EQ(loaded.max_length(), 256);
  EXPECT_EQ(loaded.require_tokenizer().encode("Hello, world!", true),
            (std::vector<int32_t>{101, 7592, 1010, 2088, 999, 102}));

  LoadOptions quantized;
  quantized.storage.keep_file_blocks = true;
  EXPECT_THROW(load_encoder(path, quantized), Error);
}

// A plain BERT folder (no modules.json, no tokenizer): mean pooling, normalised, 512 positions at most.
TEST(LoadEncoder, FolderWithoutSentenceTransformersFiles) {
  LoadedEncoder loaded = load_encoder((kData / "models" / "bert").string(), {});
  EXPECT_FALSE(loaded.sentence_transformers.has_value());
  EXPECT_EQ(loaded.default_pooling(), Pooling::Mean);
  EXPECT_TRUE(loaded.default_normalize());
  EXPECT_EQ(loaded.max_length(), std::min<int64_t>(512, loaded.model.config().max_position_embeddings));
  EXPECT_FALSE(loaded.tokenizer.has_value());
  EXPECT_THROW(loaded.require_tokenizer(), Error);
}

}  // namespace
}  // namespace wick::models
