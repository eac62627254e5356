// `wick generate` as a first-time user runs it: sampling defaults from the model (greedy for a GGUF,
// generation_config.json's otherwise) with a random seed reported in --json; token ids that agree
// with the text; log-probabilities; the prompt from --system, a file, stdin or a JSONL batch; token
// ids in and out for a model without a tokenizer; prompt progress and the summary line on stderr.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/wick_process.h"

namespace {

using json = nlohmann::json;
using wick_test::run_wick;
namespace fs = std::filesystem;
const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/../../models";
const std::string kSmol = kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kTiny = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied";

json generate_json(const std::string& args, const std::string& input = "") {
  auto r = run_wick("generate --device cpu --json " + args, input);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? json::parse(r.out) : json();
}

// A copy of the tiny test decoder (it has no tokenizer) with `generation` as its generation_config.json.
struct TinyModel {
  std::string dir = wick_test::temp_path("tiny");
  explicit TinyModel(const json& generation, int64_t max_positions = 128) {
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(kTiny + "/" + f, dir + "/" + f);
    std::ofstream(dir + "/generation_config.json") << generation.dump();
    json config = json::parse(wick_test::read_file(kTiny + "/config.json"));
    config["max_position_embeddings"] = max_positions;
    std::ofstream(dir + "/config.json") << config.dump();
  }
  ~TinyModel() { fs::remove_all(dir); }
};

// The acceptance of the first-user session: the default options answer the question.
TEST(CliGenerate, DefaultsAnswerTheCapitalOfFrance) {
  json first = generate_json("--model " + kSmol + " --chat --prompt \"What is the capital of France?\"");
  EXPECT_NE(first.value("text", "").find("Paris"), std::string::npos) << first.dump();
  EXPECT_EQ(first["finish_reason"], "eos") << first.dump();
  // A GGUF has no generation_config.json: greedy, so a second run (another random seed) agrees.
  json second = generate_json("--model " + kSmol + " --chat --prompt \"What is the capital of France?\"");
  EXPECT_EQ(second["token_ids"], first["token_ids"]);
  EXPECT_NE(second["seed"], first["seed"]) << "the seed is drawn at random when --seed is not given";
}

TEST(CliGenerate, SamplingDefaultsComeFromGenerationConfig) {
  TinyModel plain(json{{"bos_token_id", 1}});
  TinyModel sampled(json{{"do_sample", true}, {"temperature", 0.7}, {"top_k", 20}, {"top_p", 0.9}});
  std::string prompt = " --prompt-ids 5,6,7,8 --max-tokens 12";
  // No do_sample: greedy, whatever the seed.
  json greedy = generate_json("--model " + plain.dir + prompt + " --temperature 0");
  EXPECT_EQ(generate_json("--model " + plain.dir + prompt)["token_ids"], greedy["token_ids"]);
  // do_sample: the file's temperature, top-k and top-p, exactly as if given on the command line.
  json from_file = generate_json("--model " + sampled.dir + prompt + " --seed 11");
  json from_flags =
      generate_json("--model " + plain.dir + prompt + " --seed 11 --temperature 0.7 --top-k 20 --top-p 0.9");
  EXPECT_EQ(from_file["token_ids"], from_flags["token_ids"]);
  EXPECT_EQ(from_file["seed"], 11);
  // A flag overrides the file.
  EXPECT_EQ(generate_json("--model " + sampled.dir + prompt + " --temperature 0")["token_ids"], greedy["token_ids"]);
  // Without --seed the seed is random, printed, and reproduces the run when given back.
  json a = generate_json("--model " + sampled.dir + prompt), b = generate_json("--model " + sampled.dir + prompt);
  EXPECT_NE(a["seed"], b["seed"]);
  json again = generate_json("--model " + sampled.dir + prompt + " --seed " + a["seed"].dump());
  EXPECT_EQ(again["token_ids"], a["token_ids"]);
}

// chat takes the same defaults: greedy for a GGUF, so its reply is the --temperature 0 reply.
TEST(CliGenerate, ChatDefaultsAreTheModelsDefaults) {
  auto r = run_wick("chat --device cpu --model " + kSmol, "What is the capital of France?\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Paris"), std::string::npos) << r.out;
  std::string open_question = "Tell me about the moon.\n";
  auto defaults = run_wick("chat --device cpu --max-tokens 40 --model " + kSmol, open_question);
  auto greedy = run_wick("chat --device cpu --max-tokens 40 --temperature 0 --model " + kSmol, open_question);
  ASSERT_EQ(defaults.code, 0) << defaults.err;
  EXPECT_EQ(defaults.out, greedy.out);
}

std::string detokenize(const json& ids) {
  auto r = run_wick("detokenize --tokenizer " + kSmol, ids.dump() + "\n");
  EXPECT_EQ(r.code, 0) << r.err;
  return json::parse(r.out).get<std::string>();
}

TEST(CliGenerate, TokenIdsAgreeWithTheTextAtAStopString) {
  std::string args =
      "--model " + kSmol + " --chat --prompt \"What is the capital of France?\" --max-tokens 24 --temperature 0";
  json full = generate_json(args);
  json stopped = generate_json(args + " --stop \"of France\"");
  ASSERT_EQ(stopped["finish_reason"], "stop");
  std::string text = stopped["text"], spelled = detokenize(stopped["token_ids"]);
  // The ids spell the text up to (not into) the stop string: a prefix of the text, short of it by
  // less than one token, and the same ids as the run without the stop string.
  EXPECT_EQ(text.rfind(spelled, 0), 0u) << "'" << spelled << "' vs '" << text << "'";
  EXPECT_EQ(spelled.find("of France"), std::string::npos);
  std::vector<int> ids = stopped["token_ids"], all = full["token_ids"];
  ASSERT_LT(ids.size(), all.size());
  EXPECT_TRUE(std::equal(ids.begin(), ids.end(), all.begin()));
  EXPECT_NE(detokenize(json(std::vector<int>(all.begin(), all.begin() + ids.size() + 1))).find(text), std::string::npos)
      << "one more id covers the whole text";
}

TEST(CliGenerate, LogprobsListEachTokenWithItsAlternatives) {
  json r = generate_json("--model " + kSmol +
                         " --prompt \"The capital of France is\" --max-tokens 5 --temperature 0 --logprobs 3");
  ASSERT_EQ(r["logprobs"].size(), r["token_ids"].size());
  double first_mass = 0;
  for (size_t i = 0; i < r["logprobs"].size(); ++i) {
    const json& t = r["logprobs"][i];
    EXPECT_EQ(t["id"], r["token_ids"][i]);
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    // Greedy: the chosen token is the most likely one; alternatives are in order and are log-probabilities.
    EXPECT_EQ(t["top_logprobs"][0]["id"], t["id"]);
    EXPECT_DOUBLE_EQ(t["top_logprobs"][0]["logprob"].get<double>(), t["logprob"].get<double>());
    double mass = 0, previous = 0;
    for (const json& alt : t["top_logprobs"]) {
      double lp = alt["logprob"];
      EXPECT_LE(lp, 0.0);
      if (&alt != &t["top_logprobs"][0]) EXPECT_LE(lp, previous);
      previous = lp;
      mass += std::exp(lp);
    }
    EXPECT_LE(mass, 1.0 + 1e-9);
    if (i == 0) first_mass = mass;
  }
  EXPECT_GT(first_mass, 0.3) << "the continuation of 'The capital of France is' is not a guess";
  EXPECT_EQ(r["logprobs"][0]["token"], detokenize(json::array({r["token_ids"][0]})));
  auto plain = run_wick("generate --device cpu --model " + kSmol + " --prompt hi --logprobs 2");
  EXPECT_EQ(plain.code, 2);
  EXPECT_NE(plain.err.find("--logprobs needs --json"), std::string::npos) << plain.err;
}

// --system makes the prompt a chat turn after that system message: the same ids as rendering the
// conversation with `wick template`, tokenizing it with `wick tokenize` and generating from the ids.
TEST(CliGenerate, SystemMessageIsTheTemplatesSystemTurn) {
  json messages = json::array({{{"role", "system"}, {"content", "You are a pirate."}},
                               {{"role", "user"}, {"content", "Who are you?"}}});
  auto rendered = run_wick("template --add-generation-prompt --tokenizer " + kSmol, messages.dump());
  ASSERT_EQ(rendered.code, 0) << rendered.err;
  auto ids = run_wick("tokenize --tokenizer " + kSmol, json(rendered.out).dump() + "\n");
  ASSERT_EQ(ids.code, 0) << ids.err;
  std::string csv;
  for (int id : json::parse(ids.out)) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  json want = generate_json("--model " + kSmol + " --prompt-ids " + csv + " --max-tokens 8 --temperature 0");
  json got = generate_json("--model " + kSmol +
                           " --system \"You are a pirate.\" --prompt \"Who are you?\" --max-tokens 8 --temperature 0");
  EXPECT_EQ(got["token_ids"], want["token_ids"]);
  json no_system =
      generate_json("--model " + kSmol + " --chat --prompt \"Who are you?\" --max-tokens 8 --temperature 0");
  EXPECT_NE(no_system["token_ids"], got["token_ids"]);
}

TEST(CliGenerate, PromptFromAFileOrStdin) {
  std::string args = "--model " + kSmol + " --max-tokens 6 --temperature 0";
  json direct = generate_json(args + " --prompt \"Once upon a time\"");
  std::string file = wick_test::temp_path("prompt");
  std::ofstream(file) << "Once upon a time";
  EXPECT_EQ(generate_json(args + " --prompt-file " + file)["token_ids"], direct["token_ids"]);
  EXPECT_EQ(generate_json(args + " --prompt -", "Once upon a time")["token_ids"], direct["token_ids"]);
  fs::remove(file);
  auto missing = run_wick("generate --device cpu " + args + " --prompt-file /no/such/file");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("--prompt-file: cannot open /no/such/file"), std::string::npos) << missing.err;
}

// A JSONL of prompts runs as one batch: one result line per prompt, in order, each what the prompt
// gives alone.
TEST(CliGenerate, PromptsFileGivesOneResultPerLine) {
  std::string args = "--model " + kSmol + " --max-tokens 8 --temperature 0";
  std::string input = json("The capital of France is").dump() + "\n" + json{{"prompt", "1, 2, 3,"}}.dump() + "\n" +
                      json{{"messages", json::array({{{"role", "user"}, {"content", "Say hi."}}})}}.dump() + "\n";
  auto r = run_wick("generate --device cpu " + args + " --prompts -", input);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> rows;
  std::stringstream ss(r.out);
  for (std::string line; std::getline(ss, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 3u) << r.out;
  json alone[3] = {generate_json(args + " --prompt \"The capital of France is\""),
                   generate_json(args + " --prompt \"1, 2, 3,\""),
                   generate_json(args + " --chat --prompt \"Say hi.\"")};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rows[size_t(i)]["index"], i);
    EXPECT_EQ(rows[size_t(i)]["token_ids"], alone[i]["token_ids"]) << i;
    EXPECT_EQ(rows[size_t(i)]["text"], alone[i]["text"]) << i;
  }
  auto bad = run_wick("generate --device cpu " + args + " --prompts -", "\"ok\"\n{\"prompt\": 5}\n");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--prompts line 2"), std::string::npos) << bad.err;
}

// The tiny decoder folder has no tokenizer: token ids in, token ids out, no text.
TEST(CliGenerate, PromptIdsWorkWithoutATokenizer) {
  json r = generate_json("--model " + kTiny + " --prompt-ids 5,6,7 --max-tokens 4 --temperature 0");
  EXPECT_EQ(r["token_ids"].size(), 4u) << r.dump();
  EXPECT_FALSE(r.contains("text")) << r.dump();
  auto plain =
      run_wick("generate --device cpu --model " + kTiny + " --prompt-ids 5,6,7 --max-tokens 4 --temperature 0");
  ASSERT_EQ(plain.code, 0) << plain.err;
  std::string csv;
  for (int id : r["token_ids"]) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  EXPECT_EQ(plain.out, csv + "\n");
  auto text = run_wick("generate --device cpu --model " + kTiny + " --prompt hello");
  EXPECT_EQ(text.code, 1);
  EXPECT_NE(text.err.find("tokenizer"), std::string::npos) << text.err;
}

TEST(CliGenerate, SummaryLineCountsTokens) {
  auto r = run_wick("generate --device cpu --json --model " + kTiny +
                    " --prompt-ids 5,6,7,8,9 --max-tokens 7 --temperature 0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("wick: prompt 5 tokens ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("first token after "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("; generated 7 tokens ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" tokens/s)"), std::string::npos) << r.err;
}

// On a terminal, a prompt longer than one step's chunk (2048 tokens) shows its progress.
TEST(CliGenerate, LongPromptShowsProgressOnATerminal) {
  TinyModel tiny(json::object(), 4096);
  std::string ids;
  for (int i = 0; i < 2100; ++i) ids += (i ? "," : "") + std::to_string(3 + i % 200);
  auto r = wick_test::run_wick_on_terminal("generate --device cpu --model " + tiny.dir + " --prompt-ids " + ids +
                                           " --max-tokens 2 --temperature 0", "");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("prompt: 2048/2100 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wick: prompt 2100 tokens"), std::string::npos) << r.out;
}

}  // namespace
