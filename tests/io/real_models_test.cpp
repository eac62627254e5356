// The real model files fetched by scripts/fetch-models.sh (SmolLM2-135M-Instruct Q4_1 GGUF and
// all-MiniLM-L6-v2 safetensors). Expected values were read with the reference Python libraries
// (gguf 0.19.0 GGUFReader + gguf.quants.dequantize; safetensors 0.8 safe_open, framework="np").
// Skipped, naming the path, when <repo>/models is absent.
#include <gtest/gtest.h>

#include <filesystem>

#include "io_test_util.h"
#include "wick/io/gguf_model.h"
#include "wick/io/hf_config.h"
#include "wick/io/safetensors.h"

namespace wick::io {
namespace {

using test::models_dir;

std::string model_path(const std::string& name) {
  std::string p = models_dir() + "/" + name;
  if (!std::filesystem::exists(p)) return {};
  return p;
}

#define REQUIRE_MODEL(var, name)                                                            \
  std::string var = model_path(name);                                                      \
  if (var.empty()) GTEST_SKIP() << models_dir() << "/" << name                             \
                                << " is absent: run scripts/fetch-models.sh " << models_dir()

double sum(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s;
}

TEST(RealSmolLM2, HeaderConfigAndTypes) {
  REQUIRE_MODEL(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.keys().size(), 33u);
  EXPECT_EQ(f.data_offset(), 1785664u);
  ModelConfig c = model_config_from_gguf(f);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.rms_norm_eps, double(1e-5f));
  EXPECT_TRUE(c.tie_word_embeddings);  // no output.weight in the file
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});

  std::map<std::string, int> types;
  for (const GgufTensor& t : f.tensors()) {
    types[std::string(ggml::ggml_type_name(t.type))]++;
    EXPECT_TRUE(gguf_to_hf_name(t.name).has_value()) << t.name;
  }
  EXPECT_EQ(types, (std::map<std::string, int>{{"Q4_1", 210}, {"F32", 61}, {"Q8_0", 1}}));
  const GgufTensor& k = f.tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k.type, ggml::GgmlType::Q4_1);
  EXPECT_EQ(k.shape, (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").shape, (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(f.tensor("token_embd.weight").shape, (std::vector<int64_t>{49152, 576}));
}

TEST(RealSmolLM2, DequantizedValuesMatchReference) {
  REQUIRE_MODEL(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  GgufFile f = GgufFile::open(path);
  std::vector<float> q = f.dequantize("blk.0.attn_q.weight");
  ASSERT_EQ(q.size(), 576u * 576u);
  EXPECT_EQ(q[0], -0.0963134765625f);
  EXPECT_EQ(q[1], 0.1573486328125f);
  EXPECT_EQ(q[3], -0.73046875f);
  EXPECT_NEAR(sum(q), 59.22322082519531, 1e-6);  // reference summed the same floats in f64
  std::vector<float> e = f.dequantize("token_embd.weight");
  EXPECT_EQ(e[576 + 0], -0.0238037109375f);
  EXPECT_EQ(e[576 + 2], -0.0396728515625f);
  EXPECT_NEAR(sum(e), -15353.04449415207, 1e-6);
  std::vector<float> norm = f.dequantize("output_norm.weight");
  EXPECT_EQ(norm[0], 1.7578125f);
  EXPECT_EQ(norm[2], 1.78125f);
}

TEST(RealSmolLM2, TokenizerMetadata) {
  REQUIRE_MODEL(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  GgufTokenizerData t = gguf_tokenizer_data(GgufFile::open(path));
  EXPECT_EQ(t.model, "gpt2");
  EXPECT_EQ(t.pre, "smollm");
  ASSERT_EQ(t.tokens.size(), 49152u);
  EXPECT_EQ(t.tokens[0], "<|endoftext|>");
  EXPECT_EQ(t.tokens.back(), "ectable");
  EXPECT_EQ(t.token_type.size(), 49152u);
  EXPECT_EQ(t.token_type[0], 3);
  EXPECT_TRUE(t.scores.empty());
  ASSERT_EQ(t.merges.size(), 48900u);
  EXPECT_EQ(t.merges.front(), "\xC4\xA0 t");
  EXPECT_EQ(t.merges.back(), "ect able");
  EXPECT_EQ(t.bos_token_id, 1);
  EXPECT_EQ(t.eos_token_id, 2);
  EXPECT_EQ(t.unknown_token_id, 0);
  EXPECT_EQ(t.padding_token_id, 2);
  EXPECT_EQ(t.add_bos_token, false);
  EXPECT_EQ(t.add_space_prefix, false);
  ASSERT_TRUE(t.chat_template);
  EXPECT_EQ(t.chat_template->rfind("{% for message in messages %}", 0), 0u);
}

TEST(RealMiniLM, SafetensorsAndConfig) {
  REQUIRE_MODEL(dir, "all-MiniLM-L6-v2");
  SafeTensors st = SafeTensors::open_dir(dir);
  EXPECT_EQ(st.size(), 104u);
  EXPECT_EQ(st.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  int f32 = 0, i64 = 0;
  for (const auto& name : st.names()) {
    FileDtype d = st.get(name).dtype;
    f32 += d == FileDtype::F32;
    i64 += d == FileDtype::I64;
  }
  EXPECT_EQ(f32, 103);
  EXPECT_EQ(i64, 1);
  EXPECT_EQ(st.get("embeddings.position_ids").shape, (std::vector<int64_t>{1, 512}));
  const TensorView& w = st.get("embeddings.word_embeddings.weight");
  EXPECT_EQ(w.dtype, FileDtype::F32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{30522, 384}));
  float row101[3];
  std::memcpy(row101, w.data + (101 * 384) * 4, sizeof row101);
  EXPECT_EQ(row101[0], -0.01761939749121666f);
  EXPECT_EQ(row101[1], -0.007600549608469009f);
  EXPECT_EQ(row101[2], 0.047105543315410614f);
  double s = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    float x;
    std::memcpy(&x, w.data + i * 4, 4);
    s += x;
  }
  EXPECT_NEAR(s, 138.05072214923618, 1e-6);
  const TensorView& ln = st.get("encoder.layer.5.output.LayerNorm.bias");
  float b0;
  std::memcpy(&b0, ln.data, 4);
  EXPECT_EQ(b0, -0.03630739822983742f);

  ModelConfig c = load_model_config(dir + "/config.json");
  EXPECT_EQ(c.model_type, "bert");
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.num_hidden_layers, 6);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  TokenizerConfig t = load_tokenizer_config(dir + "/tokenizer_config.json");
  EXPECT_EQ(t.cls_token, "[CLS]");
  EXPECT_EQ(t.model_max_length, 512);
  EXPECT_EQ(t.do_lower_case, true);
  EXPECT_EQ(t.tokenizer_class, "BertTokenizer");
}

}  // namespace
}  // namespace wick::io

namespace wick::io {
namespace {

// Only fetched with `scripts/fetch-models.sh --qwen-coder` (1.1 GB): real Q4_K and Q6_K blocks.
TEST(RealQwenCoder, ConfigAndKQuantsMatchReference) {
  std::string path = model_path("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
  if (path.empty())
    GTEST_SKIP() << models_dir() << "/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf is absent: run "
                 << "scripts/fetch-models.sh --qwen-coder " << models_dir();
  GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.tensors().size(), 339u);
  EXPECT_EQ(f.data_offset(), 5950528u);
  ModelConfig c = model_config_from_gguf(f);
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.hidden_size, 1536);
  EXPECT_EQ(c.intermediate_size, 8960);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.rope_theta, 1000000.0);
  EXPECT_EQ(c.rms_norm_eps, double(1e-6f));
  EXPECT_TRUE(c.attention_bias);
  // The HF model ties embeddings, but this converter wrote output.weight anyway.
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
  EXPECT_FALSE(gguf_qk_rows_permuted(c.model_type));

  std::map<std::string, int> types;
  for (const GgufTensor& t : f.tensors()) types[std::string(ggml::ggml_type_name(t.type))]++;
  EXPECT_EQ(types, (std::map<std::string, int>{{"Q4_K", 169}, {"F32", 141}, {"Q6_K", 29}}));

  struct Fact {
    const char* name;
    std::vector<int64_t> shape;
    float first[3];
    double sum;
  };
  const Fact facts[] = {
      {"blk.0.attn_q.weight", {1536, 1536}, {-0.0014102458953857422f, 0.0010180473327636719f, 0.0010180473327636719f}, 52.21810698509216},
      {"blk.0.attn_q.bias", {1536}, {0.287109375f, -0.232421875f, -0.2041015625f}, 85.83779335021973},
      {"blk.0.ffn_down.weight", {1536, 8960}, {-0.009367287158966064f, 0.015131771564483643f, 0.006485044956207275f}, 64.13414138555527},
      {"blk.0.attn_v.weight", {256, 1536}, {0.008039116859436035f, -0.007145881652832031f, 0.008932352066040039f}, 17.10420972108841},
  };
  for (const Fact& fact : facts) {
    SCOPED_TRACE(fact.name);
    EXPECT_EQ(f.tensor(fact.name).shape, fact.shape);
    std::vector<float> v = f.dequantize(fact.name);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(v[size_t(i)], fact.first[i]);
    EXPECT_NEAR(sum(v), fact.sum, 1e-6);
  }

  GgufTokenizerData t = gguf_tokenizer_data(f);
  EXPECT_EQ(t.pre, "qwen2");
  EXPECT_EQ(t.tokens.size(), 151936u);
  EXPECT_EQ(t.tokens.back(), "[PAD151935]");
  EXPECT_EQ(t.merges.size(), 151387u);
  EXPECT_EQ(t.bos_token_id, 151643);
}

}  // namespace
}  // namespace wick::io
