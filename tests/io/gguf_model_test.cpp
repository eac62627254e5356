// GGUF → Hugging Face meaning: tensor names, config fields and tokenizer data (golden.gguf's
// values are set in scripts/golden/io_gguf.py).
#include <gtest/gtest.h>

#include "gguf_builder.h"
#include "io_test_util.h"
#include "wick/io/gguf_model.h"

namespace wick::io {
namespace {

using test::data_path;
using test::expect_error;

TEST(GgufNames, MapToHuggingFaceAndBack) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
      {"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
      {"blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"},
      {"blk.12.attn_q.bias", "model.layers.12.self_attn.q_proj.bias"},
      {"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"},
      {"blk.1.attn_v.bias", "model.layers.1.self_attn.v_proj.bias"},
      {"blk.29.attn_output.weight", "model.layers.29.self_attn.o_proj.weight"},
      {"blk.2.ffn_norm.weight", "model.layers.2.post_attention_layernorm.weight"},
      {"blk.2.ffn_gate.weight", "model.layers.2.mlp.gate_proj.weight"},
      {"blk.2.ffn_up.weight", "model.layers.2.mlp.up_proj.weight"},
      {"blk.2.ffn_down.weight", "model.layers.2.mlp.down_proj.weight"},
  };
  for (const auto& [g, h] : pairs) {
    EXPECT_EQ(gguf_to_hf_name(g), h);
    EXPECT_EQ(hf_to_gguf_name(h), g);
  }
  for (const char* odd : {"rope_freqs.weight", "blk.x.attn_q.weight", "blk.1.attn_q", "blk..attn_q.weight",
                          "blk.1.unknown.weight", ""})
    EXPECT_EQ(gguf_to_hf_name(odd), std::nullopt) << odd;
  EXPECT_EQ(hf_to_gguf_name("model.layers.1.self_attn.rotary_emb.inv_freq"), std::nullopt);
}

TEST(GgufModel, ConfigFromGoldenLlama) {
  GgufFile f = GgufFile::open(data_path("gguf/golden.gguf"));
  ModelConfig c = model_config_from_gguf(f);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rms_norm_eps, double(1e-5f));
  EXPECT_EQ(c.vocab_size, 5);  // from the token list: no llama.vocab_size key
  EXPECT_TRUE(c.tie_word_embeddings);  // no output.weight
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{0});
  EXPECT_EQ(c.pad_token_id, 4);
  EXPECT_TRUE(gguf_qk_rows_permuted(c.model_type));
  EXPECT_FALSE(gguf_qk_rows_permuted("qwen2"));
}

TEST(GgufModel, TokenizerDataFromGolden) {
  GgufFile f = GgufFile::open(data_path("gguf/golden.gguf"));
  GgufTokenizerData t = gguf_tokenizer_data(f);
  EXPECT_EQ(t.model, "gpt2");
  EXPECT_EQ(t.pre, "smollm");
  EXPECT_EQ(t.tokens, (std::vector<std::string>{"<|endoftext|>", "a", "b", "ab", "\xC4\xA0" "c"}));
  EXPECT_EQ(t.scores, (std::vector<float>{0, -1, -2, -3, -4}));
  EXPECT_EQ(t.token_type, (std::vector<int32_t>{3, 1, 1, 1, 1}));
  EXPECT_EQ(t.merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(t.bos_token_id, 0);
  EXPECT_EQ(t.eos_token_id, 0);
  EXPECT_EQ(t.padding_token_id, 4);
  EXPECT_EQ(t.unknown_token_id, std::nullopt);
  EXPECT_EQ(t.add_bos_token, false);
  EXPECT_EQ(t.chat_template, "{% for m in messages %}{{ m['content'] }}{% endfor %}");
}

TEST(GgufModel, Qwen2ConfigAndBadInput) {
  test::GgufBuilder b;
  b.kv_string("general.architecture", "qwen2");
  for (auto [k, v] : {std::pair{"qwen2.context_length", 32768u}, std::pair{"qwen2.embedding_length", 1536u},
                      std::pair{"qwen2.block_count", 28u}, std::pair{"qwen2.feed_forward_length", 8960u},
                      std::pair{"qwen2.attention.head_count", 12u}, std::pair{"qwen2.attention.head_count_kv", 2u}})
    b.kv_u32(k, v);
  auto bytes = b.build();
  GgufFile f = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "qwen.gguf");
  ModelConfig c = model_config_from_gguf(f);
  EXPECT_EQ(c.architectures, std::vector<std::string>{"Qwen2ForCausalLM"});
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.rope_theta, 10000.0);  // absent key: the HF default

  test::GgufBuilder missing;
  missing.kv_string("general.architecture", "qwen2");
  bytes = missing.build();
  GgufFile g = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "short.gguf");
  expect_error([&] { model_config_from_gguf(g); }, {"short.gguf", "qwen2.context_length", "missing"});

  test::GgufBuilder other;
  other.kv_string("general.architecture", "gpt2");
  bytes = other.build();
  GgufFile h = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "gpt2.gguf");
  expect_error([&] { model_config_from_gguf(h); }, {"gpt2.gguf", "'gpt2' is not supported"});

  test::GgufBuilder bad_id;
  bad_id.kv_u32("tokenizer.ggml.bos_token_id", 7);
  bytes = bad_id.build();
  GgufFile i = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "ids.gguf");
  expect_error([&] { gguf_tokenizer_data(i); }, {"tokenizer.ggml.bos_token_id = 7", "outside the token list"});

  // A vocabulary entry that does not fit is named with its index: token_type as u64, the third
  // entry past int64.
  test::GgufBuilder bad_entry;
  std::vector<uint8_t> kv;
  test::GgufBuilder::put_string(kv, "tokenizer.ggml.token_type");
  test::GgufBuilder::put<uint32_t>(kv, 9);   // array
  test::GgufBuilder::put<uint32_t>(kv, 10);  // of u64
  test::GgufBuilder::put<uint64_t>(kv, 3);
  for (uint64_t v : {uint64_t(1), uint64_t(1), uint64_t(1) << 63}) test::GgufBuilder::put<uint64_t>(kv, v);
  bad_entry.kv_raw(kv);
  bytes = bad_entry.build();
  GgufFile j = GgufFile::parse(nullptr, bytes.data(), bytes.size(), "types.gguf");
  expect_error([&] { gguf_tokenizer_data(j); }, {"types.gguf", "tokenizer.ggml.token_type[2]"});
}

}  // namespace
}  // namespace wick::io
