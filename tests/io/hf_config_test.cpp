// Hugging Face folder JSON files: config.json, generation_config.json, tokenizer_config.json.
// The JSON snippets are copied from real model folders (SmolLM2, Llama 3.2, Qwen2.5, MiniLM).
#include <gtest/gtest.h>

#include "io_test_util.h"
#include "wick/io/hf_config.h"

namespace wick::io {
namespace {

using nlohmann::json;
using test::expect_error;
using test::ScratchDir;

TEST(HfConfig, Llama32WithRopeScaling) {
  json j = json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "intermediate_size": 8192, "max_position_embeddings": 131072,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "vocab_size": 128256, "some_future_key": {"x": [1, 2]}})");
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_hidden_layers, 16);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 500000.0);
  ASSERT_TRUE(c.rope_scaling);
  EXPECT_EQ(c.rope_scaling->rope_type, "llama3");
  EXPECT_EQ(c.rope_scaling->factor, 32.0);
  EXPECT_EQ(c.rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{128000});
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
}

TEST(HfConfig, NewerRopeParametersAndDtype) {
  json j = json::parse(R"({"model_type": "llama", "hidden_size": 576, "num_attention_heads": 9,
    "dtype": "float32", "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 100000.0},
    "eos_token_id": 2, "pad_token_id": null})");
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.torch_dtype, "float32");
  EXPECT_EQ(c.rope_theta, 100000.0);
  ASSERT_TRUE(c.rope_scaling);
  EXPECT_EQ(c.rope_scaling->rope_type, "linear");
  EXPECT_EQ(c.rope_scaling->factor, 2.0);
  EXPECT_EQ(c.head_dim, 64);               // hidden_size / heads
  EXPECT_EQ(c.num_key_value_heads, 9);     // defaults to the head count
  EXPECT_FALSE(c.tie_word_embeddings);     // LlamaConfig default
  EXPECT_EQ(c.pad_token_id, std::nullopt);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});

  json old = json::parse(R"({"model_type": "qwen2", "rope_scaling": {"type": "dynamic", "factor": 4}})");
  EXPECT_EQ(parse_model_config(old, "c").rope_scaling->rope_type, "dynamic");
  json none = json::parse(R"({"rope_scaling": {"rope_type": "default"}})");
  EXPECT_EQ(parse_model_config(none, "c").rope_scaling, std::nullopt);
}

TEST(HfConfig, BertDefaults) {
  json j = json::parse(R"({"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 384,
    "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
    "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
    "type_vocab_size": 2, "vocab_size": 30522})");
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.hidden_act, "gelu");
}

TEST(HfConfig, WrongTypesAreNamedByField) {
  expect_error([] { parse_model_config(json::parse(R"({"hidden_size": "big"})"), "m/config.json"); },
               {"m/config.json", "field 'hidden_size' must be an integer", "\"big\""});
  expect_error([] { parse_model_config(json::parse(R"({"eos_token_id": [1, "x"]})"), "c"); },
               {"field 'eos_token_id'", "integer or a list of integers"});
  expect_error([] { parse_model_config(json::parse(R"({"rope_scaling": {"factor": "x", "rope_type": "linear"}})"), "c"); },
               {"c: rope_scaling", "field 'factor' must be a number"});
  expect_error([] { parse_model_config(json::parse(R"({"tie_word_embeddings": 1})"), "c"); },
               {"'tie_word_embeddings' must be true or false"});
  expect_error([] { parse_model_config(json::parse(R"([1, 2])"), "c"); }, {"expected a JSON object"});
  expect_error([] { parse_model_config(json::parse(R"({"num_hidden_layers": -1})"), "c"); },
               {"num_hidden_layers", "negative"});
  ScratchDir dir;
  std::string bad = dir.write("config.json", std::string("{\"hidden_size\": 5,"));
  expect_error([&] { load_model_config(bad); }, {"config.json", "invalid JSON"});
  expect_error([&] { load_model_config(dir.file("absent.json")); }, {"absent.json", "cannot open"});
}

TEST(HfGenerationConfig, EosListsAndSamplingDefaults) {
  json j = json::parse(R"({"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643],
    "pad_token_id": 151643, "repetition_penalty": 1.1, "temperature": 0.7, "top_k": 20, "top_p": 0.8,
    "transformers_version": "4.37.0"})");
  GenerationConfig g = parse_generation_config(j, "generation_config.json");
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_EQ(g.bos_token_id, 151643);
  EXPECT_EQ(g.pad_token_id, 151643);
  EXPECT_EQ(g.do_sample, true);
  EXPECT_EQ(g.temperature, 0.7);
  EXPECT_EQ(g.top_p, 0.8);
  EXPECT_EQ(g.top_k, 20);
  EXPECT_EQ(g.repetition_penalty, 1.1);
  EXPECT_EQ(g.max_new_tokens, std::nullopt);
  GenerationConfig single = parse_generation_config(json::parse(R"({"eos_token_id": 2, "max_new_tokens": 64})"), "g");
  EXPECT_EQ(single.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(single.max_new_tokens, 64);
  expect_error([] { parse_generation_config(json::parse(R"({"top_k": 1.5})"), "g.json"); },
               {"g.json", "'top_k' must be an integer"});
}

TEST(HfTokenizerConfig, SpecialTokensTemplatesAndFlags) {
  json j = json::parse(R"({
    "add_bos_token": true, "add_eos_token": false,
    "added_tokens_decoder": {"2": {"content": "</s>", "lstrip": false, "normalized": false,
                                   "rstrip": false, "single_word": false, "special": true},
                             "0": {"content": "<unk>", "special": true}},
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "</s>", "pad_token": null, "unk_token": "<unk>",
    "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}],
    "clean_up_tokenization_spaces": false, "model_max_length": 1000000000000000019884624838656,
    "tokenizer_class": "LlamaTokenizer"})");
  TokenizerConfig t = parse_tokenizer_config(j, "tokenizer_config.json");
  EXPECT_EQ(t.bos_token, "<s>");
  EXPECT_EQ(t.eos_token, "</s>");
  EXPECT_EQ(t.unk_token, "<unk>");
  EXPECT_EQ(t.pad_token, std::nullopt);
  EXPECT_EQ(t.chat_template, "D");
  EXPECT_EQ(t.named_chat_templates.at("tool_use"), "T");
  EXPECT_EQ(t.add_bos_token, true);
  EXPECT_EQ(t.add_eos_token, false);
  EXPECT_EQ(t.model_max_length, std::nullopt);
  EXPECT_EQ(t.clean_up_tokenization_spaces, false);
  EXPECT_EQ(t.tokenizer_class, "LlamaTokenizer");
  ASSERT_EQ(t.added_tokens.size(), 2u);
  EXPECT_EQ(t.added_tokens[0].id, 0);
  EXPECT_EQ(t.added_tokens[1].content, "</s>");
  EXPECT_TRUE(t.added_tokens[1].special);

  TokenizerConfig s = parse_tokenizer_config(
      json::parse(R"({"chat_template": "{{ x }}", "model_max_length": 512, "do_lower_case": true})"), "t");
  EXPECT_EQ(s.chat_template, "{{ x }}");
  EXPECT_EQ(s.model_max_length, 512);
  EXPECT_EQ(s.do_lower_case, true);

  expect_error([] { parse_tokenizer_config(json::parse(R"({"eos_token": 5})"), "tc.json"); },
               {"tc.json", "'eos_token'", "AddedToken"});
  expect_error([] { parse_tokenizer_config(json::parse(R"({"chat_template": [{"name": "x"}]})"), "t"); },
               {"'chat_template'"});
  expect_error([] { parse_tokenizer_config(json::parse(R"({"added_tokens_decoder": {"x": {"content": "a"}}})"), "t"); },
               {"added_tokens_decoder", "'x' is not a token id"});
}

TEST(HfTokenizerConfig, ChatTemplateJinjaFileNextToConfig) {
  ScratchDir dir;
  std::string cfg = dir.write("tokenizer_config.json", std::string(R"({"eos_token": "</s>"})"));
  dir.write("chat_template.jinja", std::string("{{ messages }}"));
  EXPECT_EQ(load_tokenizer_config(cfg).chat_template, "{{ messages }}");
}

}  // namespace
}  // namespace wick::io
