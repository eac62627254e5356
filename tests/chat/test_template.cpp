// Chat templates against transformers' apply_chat_template (goldens written by
// scripts/golden/template_golden.py), plus error reporting.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "wick/base/error.h"
#include "wick/chat/template.h"

namespace {

using nlohmann::ordered_json;
using wick::chat::ChatTemplate;
using wick::chat::TemplateOptions;

const std::string kDataDir = std::string(WICK_TEST_DATA_DIR) + "/chat/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing test data file: " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json read_json(const std::string& path) { return ordered_json::parse(read_file(path)); }

// Renders every golden conversation of one template; returns how many matched.
void check_golden(const std::string& golden_file) {
  ordered_json golden = read_json(kDataDir + golden_file);
  ChatTemplate tpl(read_file(kDataDir + golden["template"].get<std::string>()));
  TemplateOptions base;
  for (const auto& [k, v] : golden["special_tokens"].items()) {
    if (k == "bos_token") base.bos_token = v.get<std::string>();
    else if (k == "eos_token") base.eos_token = v.get<std::string>();
    else base.extra[k] = v;
  }
  size_t matched = 0, total = 0;
  for (const auto& c : golden["cases"]) {
    ++total;
    TemplateOptions options = base;
    options.tools = c["tools"];
    const std::string name = c["name"].get<std::string>() + (c["add_generation_prompt"].get<bool>() ? "+gen" : "");
    if (c.contains("error")) {
      try {
        tpl.render(c["messages"], c["add_generation_prompt"].get<bool>(), options);
        ADD_FAILURE() << golden_file << " " << name << ": expected error " << c["error"];
      } catch (const wick::Error& e) {
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos)
            << name << ": " << e.what();
        ++matched;
      }
      continue;
    }
    std::string out = tpl.render(c["messages"], c["add_generation_prompt"].get<bool>(), options);
    EXPECT_EQ(out, c["expected"].get<std::string>()) << golden_file << " case " << name;
    matched += out == c["expected"].get<std::string>();
  }
  EXPECT_EQ(matched, total) << golden_file;
  EXPECT_GE(total, 30u) << golden_file;
}

TEST(TemplateGolden, Qwen25Instruct) { check_golden("golden_qwen2.5-instruct.json"); }
TEST(TemplateGolden, Qwen25CoderInstruct) { check_golden("golden_qwen2.5-coder-1.5b-instruct.json"); }
TEST(TemplateGolden, SmolLM2Instruct) { check_golden("golden_smollm2-135m-instruct.json"); }
// A probe template that prints every variable: messages as transformers prepares them, tools, tokens.
TEST(TemplateGolden, ContextProbe) { check_golden("golden_context-probe.json"); }

TEST(TemplateGolden, LanguageFeatures) {
  ordered_json golden = read_json(kDataDir + "golden_features.json");
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const auto& c : golden["cases"]) {
    const std::string name = c["name"].get<std::string>();
    try {
      ChatTemplate tpl(c["template"].get<std::string>());
      TemplateOptions options;
      options.extra = c["context"];
      std::string out = tpl.render(ordered_json::array(), false, options);
      if (c.contains("error")) ADD_FAILURE() << name << ": expected error " << c["error"] << ", got " << out;
      else EXPECT_EQ(out, c["expected"].get<std::string>()) << name;
    } catch (const wick::Error& e) {
      if (!c.contains("error")) ADD_FAILURE() << name << ": " << e.what();
      else EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos) << name << ": " << e.what();
    }
  }
}

TEST(TemplateConfig, ReadsQwenTokenizerConfig) {
  const std::string path = std::string(WICK_TEST_DATA_DIR) + "/tokenizers/qwen2.5/tokenizer_config.json";
  auto config = wick::chat::load_chat_template_config(path);
  EXPECT_EQ(config.chat_template, read_file(kDataDir + "qwen2.5-instruct.jinja"));
  EXPECT_FALSE(config.options.bos_token.has_value());  // null in the config
  EXPECT_EQ(config.options.eos_token, "<|im_end|>");
  EXPECT_EQ(config.options.extra["pad_token"], "<|endoftext|>");
  ordered_json messages = ordered_json::parse(R"([{"role": "user", "content": "Hi"}])");
  EXPECT_EQ(ChatTemplate(config.chat_template).render(messages, true, config.options),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TemplateConfig, ModelFolderPrefersChatTemplateJinja) {
  auto qwen = wick::chat::load_chat_template_config(std::string(WICK_TEST_DATA_DIR) + "/tokenizers/qwen2.5");
  EXPECT_EQ(qwen.chat_template, read_file(kDataDir + "qwen2.5-instruct.jinja"));

  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("wick_template_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "old", "eos_token": "</s>"})";
  std::ofstream(dir / "chat_template.jinja") << "{{ eos_token }}new";
  auto cfg = wick::chat::load_chat_template_config(dir.string());
  fs::remove_all(dir);
  EXPECT_EQ(cfg.chat_template, "{{ eos_token }}new");
  EXPECT_EQ(ChatTemplate(cfg.chat_template).render(ordered_json::array(), false, cfg.options), "</s>new");
}

TEST(TemplateConfig, TemplateListAndAddedTokens) {
  auto config = nlohmann::json::parse(R"({
    "chat_template": [{"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"},
                      {"name": "tool_use", "template": "tools"}],
    "bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"},
    "eos_token": "</s>", "unk_token": null})");
  auto cfg = wick::chat::chat_template_config_from_json(config);
  EXPECT_EQ(ChatTemplate(cfg.chat_template).render(ordered_json::parse(R"([{"role":"user","content":"x"}])"), false,
                                                   cfg.options),
            "<s>x</s>");
  EXPECT_EQ(wick::chat::chat_template_config_from_json(config, "tool_use").chat_template, "tools");
  EXPECT_THROW(wick::chat::chat_template_config_from_json(config, "nope"), wick::Error);
  EXPECT_THROW(wick::chat::chat_template_config_from_json(nlohmann::json::parse(R"({"eos_token": "x"})")), wick::Error);
  EXPECT_THROW(wick::chat::load_chat_template_config("/nonexistent/tokenizer_config.json"), wick::Error);
}

// The error message of rendering (or parsing) `source`, or "" when it succeeds.
std::string error_of(const std::string& source, const std::string& messages_json = "[]") {
  try {
    ChatTemplate(source).render(ordered_json::parse(messages_json), false);
  } catch (const wick::Error& e) {
    return e.what();
  }
  return "";
}

TEST(TemplateErrors, UnknownFilterNamesLineAndColumn) {
  std::string e = error_of("line one\n{{ 'x' | frobnicate }}");
  EXPECT_NE(e.find("no filter named 'frobnicate'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2, column 10"), std::string::npos) << e;
}

TEST(TemplateErrors, UnknownTest) {
  std::string e = error_of("{% if x is frobbed %}{% endif %}");
  EXPECT_NE(e.find("no test named 'frobbed'"), std::string::npos) << e;
}

TEST(TemplateErrors, UnclosedBlock) {
  std::string e = error_of("a\n  {% for m in messages %}\n{{ m }}");
  EXPECT_NE(e.find("unclosed 'for' block"), std::string::npos) << e;
  EXPECT_NE(e.find("'endfor'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2, column 3"), std::string::npos) << e;
  e = error_of("{% if true %}x{% else %}y");
  EXPECT_NE(e.find("unclosed 'if' block"), std::string::npos) << e;
  e = error_of("{{ 'x' ");
  EXPECT_NE(e.find("unclosed '{{'"), std::string::npos) << e;
  e = error_of("{# never closed");
  EXPECT_NE(e.find("missing end of comment"), std::string::npos) << e;
}

TEST(TemplateErrors, RaiseExceptionMessage) {
  const std::string source =
      "{% for m in messages %}\n{% if m.role not in ['user', 'assistant'] %}"
      "{{ raise_exception('Conversation roles must be user or assistant') }}{% endif %}{% endfor %}";
  std::string e = error_of(source, R"([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])");
  EXPECT_NE(e.find("Conversation roles must be user or assistant"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  EXPECT_EQ(error_of(source, R"([{"role": "user", "content": "a"}])"), "");
}

TEST(TemplateErrors, SyntaxErrors) {
  std::string e = error_of("{{ 1 + }}");
  EXPECT_NE(e.find("line 1, column 8"), std::string::npos) << e;
  e = error_of("ok\n{% endif %}");
  EXPECT_NE(e.find("unexpected 'endif'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  e = error_of("{% frob %}");
  EXPECT_NE(e.find("unknown tag 'frob'"), std::string::npos) << e;
  e = error_of("{{ (1, 2] }}");
  EXPECT_NE(e.find("unexpected ']'"), std::string::npos) << e;
  e = error_of("{{ 'abc }}");
  EXPECT_NE(e.find("unterminated string"), std::string::npos) << e;
  e = error_of("{% break %}");
  EXPECT_NE(e.find("outside of a loop"), std::string::npos) << e;
  e = error_of("{{ a b }}");
  EXPECT_NE(e.find("expected '}}'"), std::string::npos) << e;
}

TEST(TemplateErrors, RuntimeErrorsNamePosition) {
  // jinja2's Undefined: printing is fine, arithmetic and attribute access on it fail.
  EXPECT_EQ(error_of("{{ nothing }}{{ messages[5] }}"), "");
  std::string e = error_of("\n  {{ messages[0]['content'] + '!' }}", R"([{"role": "user"}])");
  EXPECT_NE(e.find("'dict object' has no attribute 'content'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  e = error_of("{{ nothing.attr }}");
  EXPECT_NE(e.find("'nothing' is undefined"), std::string::npos) << e;
  e = error_of("{{ 1 / 0 }}");
  EXPECT_NE(e.find("division by zero"), std::string::npos) << e;
  e = error_of("{{ 'a' + 1 }}");
  EXPECT_NE(e.find("can only concatenate str"), std::string::npos) << e;
  e = error_of("{% for x in 5 %}{% endfor %}");
  EXPECT_NE(e.find("not iterable"), std::string::npos) << e;
  e = error_of("{% set ns = 3 %}{% set ns.x = 1 %}");
  EXPECT_NE(e.find("non-namespace"), std::string::npos) << e;
}

TEST(TemplateErrors, BadMessages) {
  EXPECT_THROW(ChatTemplate("x").render(ordered_json::object(), false), wick::Error);
  EXPECT_THROW(ChatTemplate("x").render(ordered_json::parse("[1]"), false), wick::Error);
}

TEST(TemplateRender, NullKeysAreDroppedAndExtraOverrides) {
  ChatTemplate tpl("{% for m in messages %}{{ m.content is defined }}{% endfor %}|{{ eos_token }}|{{ flavour }}");
  TemplateOptions options;
  options.eos_token = "</s>";
  options.extra["flavour"] = "mint";
  options.extra["eos_token"] = "<eos>";
  EXPECT_EQ(tpl.render(ordered_json::parse(R"([{"role": "a", "content": null}, {"content": "x"}])"), false, options),
            "FalseTrue|<eos>|mint");
}

TEST(TemplateErrors, HostileInputFailsCleanly) {
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 2 ** 9999999999999 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error_of("{{ 'ab' * 9999999999999 }}").find("too large"), std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000) | length }}").find("range too big"), std::string::npos);
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("recursed too deeply"),
            std::string::npos);
}

TEST(TemplateRender, CopiesShareTheParsedTemplate) {
  ChatTemplate a("{{ messages | length }}");
  ChatTemplate b = a;
  EXPECT_EQ(b.render(ordered_json::parse("[{}, {}]"), false), "2");
  EXPECT_EQ(b.source(), "{{ messages | length }}");
}

}  // namespace
