// `wick generate` and `wick embed` on the real default models (fetched by scripts/fetch-models.sh):
// the semantic-search ranking published in sentence-transformers' documentation for
// all-MiniLM-L6-v2, SmolLM2's chat answer, the JSON output contract, stop strings and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

using json = nlohmann::json;
const std::string kModels = std::string(WICK_TEST_DATA_DIR) + "/../../models";

struct Result {
  int code;
  std::string out, err;
};

Result run_wick(const std::string& args, const std::string& input) {
  std::string dir = ::testing::TempDir();
  // Unique per process: ctest runs the tests of this file in parallel.
  std::string base = dir + "/wick_m_" + std::to_string(getpid());
  std::string in = base + "_in", out = base + "_out", err = base + "_err";
  std::ofstream(in, std::ios::binary) << input;
  int status = std::system((std::string(WICK_BINARY) + " " + args + " < " + in + " > " + out + " 2> " + err).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  return {WEXITSTATUS(status), slurp(out), slurp(err)};
}

std::string need(const std::string& path) {
  if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing " << path << " (run scripts/fetch-models.sh models)";
  return path;
}

TEST(CliModels, MiniLMSemanticSearchRanksAsSentenceTransformersDocuments) {
  std::string model = need(kModels + "/all-MiniLM-L6-v2");
  const std::vector<std::string> corpus = {
      "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
      "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
      "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
      "A cheetah is running behind its prey."};
  std::string input;
  for (const auto& s : corpus) input += json(s).dump() + "\n";
  Result r = run_wick("embed --device cpu --model " + model + " --rank \"A man is eating pasta.\"", input);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<int> order;
  std::vector<double> scores;
  std::stringstream ss(r.out);
  for (std::string line; std::getline(ss, line);) {
    json j = json::parse(line);
    order.push_back(j["index"]);
    scores.push_back(j["score"]);
  }
  // sentence-transformers' semantic search example: food 0.7035, bread 0.5272, horse 0.1889,
  // white horse 0.1047, cheetah 0.0980.
  ASSERT_GE(order.size(), 5u);
  EXPECT_EQ(std::vector<int>(order.begin(), order.begin() + 5), (std::vector<int>{0, 1, 3, 6, 8}));
  EXPECT_NEAR(scores[0], 0.7035, 1e-3);
  EXPECT_NEAR(scores[1], 0.5272, 1e-3);
  EXPECT_NEAR(scores[2], 0.1889, 1e-3);
}

// 24 varied sentences (incl. empty, non-Latin, code, and one past the 256-token limit) against
// sentence-transformers' own embeddings of the same model files.
TEST(CliModels, MiniLMEmbeddingsMatchSentenceTransformers) {
  std::string model = need(kModels + "/all-MiniLM-L6-v2");
  std::ifstream in(std::string(WICK_TEST_DATA_DIR) + "/models/minilm_st_golden.json");
  ASSERT_TRUE(in.good()) << "missing tests/data/models/minilm_st_golden.json";
  json golden = json::parse(in);
  std::string input;
  for (const auto& s : golden["sentences"]) input += s.dump() + "\n";
  Result r = run_wick("embed --device cpu --model " + model, input);
  ASSERT_EQ(r.code, 0) << r.err;
  std::stringstream ss(r.out);
  size_t i = 0;
  for (std::string line; std::getline(ss, line); ++i) {
    ASSERT_LT(i, golden["embeddings"].size());
    auto got = json::parse(line).get<std::vector<double>>();
    auto want = golden["embeddings"][i].get<std::vector<double>>();
    ASSERT_EQ(got.size(), want.size());
    double dot = 0, gn = 0, wn = 0;
    for (size_t k = 0; k < got.size(); ++k) {
      dot += got[k] * want[k];
      gn += got[k] * got[k];
      wn += want[k] * want[k];
    }
    EXPECT_GE(dot / std::sqrt(gn * wn), 0.9999) << "sentence " << i << ": " << golden["sentences"][i];
  }
  EXPECT_EQ(i, golden["sentences"].size());
}

TEST(CliModels, EmbedRowsAreUnitVectorsOfTheModelWidth) {
  std::string model = need(kModels + "/all-MiniLM-L6-v2");
  Result r = run_wick("embed --device cpu --model " + model, "\"hello\"\n\"\"\n\"" + std::string(3000, 'a') + " b\"\n");
  ASSERT_EQ(r.code, 0) << r.err;  // a text far past 512 tokens is truncated, not a crash
  std::stringstream ss(r.out);
  int rows = 0;
  for (std::string line; std::getline(ss, line); ++rows) {
    auto v = json::parse(line).get<std::vector<double>>();
    ASSERT_EQ(v.size(), 384u);
    double n = 0;
    for (double x : v) n += x * x;
    EXPECT_NEAR(n, 1.0, 1e-5);
  }
  EXPECT_EQ(rows, 3);
}

TEST(CliModels, SmolLM2AnswersAChatQuestion) {
  std::string model = need(kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  Result r = run_wick("generate --device cpu --model " + model +
                          " --chat --prompt \"What is the capital of France?\" --max-tokens 24 --temperature 0 --json",
                      "");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_NE(j["text"].get<std::string>().find("Paris"), std::string::npos) << j.dump();
  EXPECT_EQ(j["finish_reason"], "eos") << j.dump();
  EXPECT_FALSE(j["token_ids"].empty());
}

TEST(CliModels, StopStringEndsTheTextBeforeIt) {
  std::string model = need(kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  Result r = run_wick("generate --device cpu --model " + model +
                          " --chat --prompt \"What is the capital of France?\" --max-tokens 24 --temperature 0 --json "
                          "--stop \"of France\"",
                      "");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "stop") << j.dump();
  EXPECT_EQ(j["text"].get<std::string>().find("of France"), std::string::npos) << j.dump();
}

// SmolLM2 fine-tune killed with SIGKILL after a checkpoint, then --resume: every step's loss equals
// the uninterrupted run's, and training and validation loss fall.
TEST(CliModels, TrainKilledAndResumedReproducesTheUninterruptedRun) {
  std::string model = need(kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  std::string data = std::string(WICK_TEST_DATA_DIR) + "/../../data/demo/";
  std::string base = ::testing::TempDir() + "/wick_kill_" + std::to_string(getpid());
  std::string args = " --model " + model + " --data " + data + "pirate_train.jsonl --validation " + data +
                     "pirate_validation.jsonl --steps 16 --batch-size 2 --lr 5e-4 --rank 4 --targets q_proj,v_proj"
                     " --eval-every 8 --checkpoint-every 6 --seed 1 --device cpu";
  std::string wick = WICK_BINARY;
  ASSERT_EQ(std::system(("rm -rf " + base + " && mkdir -p " + base).c_str()), 0);
  ASSERT_EQ(std::system((wick + " train --out " + base + "/full" + args + " 2>/dev/null").c_str()), 0);
  // Start, wait for the step-6 checkpoint, kill -9 mid-run.
  std::string kill = "(" + wick + " train --out " + base + "/killed" + args + " >/dev/null 2>&1 & pid=$!; "
                     "for i in $(seq 600); do [ -d " + base + "/killed/checkpoint-6 ] && break; sleep 0.1; done; "
                     "kill -9 $pid; wait $pid 2>/dev/null; true)";
  ASSERT_EQ(std::system(kill.c_str()), 0);
  ASSERT_TRUE(std::filesystem::exists(base + "/killed/checkpoint-6"));
  ASSERT_FALSE(std::filesystem::exists(base + "/killed/checkpoint-16")) << "the run finished before it was killed";
  ASSERT_EQ(std::system((wick + " train --resume --out " + base + "/killed" + args + " 2>/dev/null").c_str()), 0);
  auto read = [](const std::string& path) {
    std::vector<json> rows;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
    return rows;
  };
  auto full = read(base + "/full/metrics.jsonl"), resumed = read(base + "/killed/metrics.jsonl");
  ASSERT_EQ(full.size(), 16u);
  ASSERT_EQ(resumed.size(), 16u);
  for (size_t i = 0; i < full.size(); ++i) {
    EXPECT_EQ(resumed[i]["step"], full[i]["step"]);
    EXPECT_EQ(resumed[i]["loss"].get<double>(), full[i]["loss"].get<double>()) << "step " << i + 1;
  }
  EXPECT_LT(full.back()["loss"].get<double>(), full.front()["loss"].get<double>());
  EXPECT_LT(full[15]["val_loss"].get<double>(), full[7]["val_loss"].get<double>());
  std::system(("rm -rf " + base).c_str());
}

// Two turns: the second question only makes sense with the first in the history.
TEST(CliModels, ChatIsMultiTurn) {
  std::string model = need(kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  Result r = run_wick("chat --device cpu --temperature 0 --max-tokens 30 --model " + model,
                      "What is the capital of France?\nAnd of Germany?\n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::stringstream ss(r.out);
  std::string first, second;
  std::getline(ss, first);
  std::getline(ss, second);
  EXPECT_NE(first.find("Paris"), std::string::npos) << r.out;
  EXPECT_NE(second.find("Berlin"), std::string::npos) << r.out;
}

TEST(CliModels, BadArgumentsAreOneLineErrors) {
  std::string model = need(kModels + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  Result r = run_wick("generate --device cpu --model " + model + " --prompt-ids 1,x,3 --max-tokens 2", "");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--prompt-ids"), std::string::npos) << r.err;
  r = run_wick("generate --device cpu --model /no/such/model --prompt hi", "");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/no/such/model"), std::string::npos) << r.err;
  r = run_wick("embed --device cpu --model " + need(kModels + "/all-MiniLM-L6-v2"), "not json\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("stdin line 1"), std::string::npos) << r.err;
}

}  // namespace
