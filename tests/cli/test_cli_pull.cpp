// `wick pull` against the local Hub stand-in (tests/hub/fake_hub.h): a tiny real model is pulled
// into a fresh cache, then named by ORG/NAME in `wick info`; offline use and HTTP errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#if WICK_HAVE_HUB  // a build without libcurl/OpenSSL has no Hub client to test
#include "hub/fake_hub.h"

namespace {

namespace fs = std::filesystem;
using wick::test::FakeHub;

struct Result {
  int code;
  std::string out, err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CliPull : public ::testing::Test {
 protected:
  FakeHub server;
  fs::path home;

  void SetUp() override {
    home = fs::path(::testing::TempDir()) / ("wick_pull_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(home);
    fs::create_directories(home);
    std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied/";
    FakeHub::Repo repo;
    repo.commit = "1111111111111111111111111111111111111111";
    repo.refs = {{"main", repo.commit}};
    for (std::string name : {"config.json", "generation_config.json", "model.safetensors"})
      repo.files.push_back({name, read_file(dir + name), name == "model.safetensors"});
    server.add_repo("wick-test/qwen2-tiny", repo);
  }
  void TearDown() override { fs::remove_all(home); }

  // Runs wick with HF_HOME in the test's folder and HF_ENDPOINT at the stand-in.
  Result wick(const std::string& args, const std::string& env = "") {
    std::string out = (home / "out").string(), err = (home / "err").string();
    std::string cmd = "env -u HF_TOKEN -u HF_HUB_CACHE -u HUGGINGFACE_HUB_CACHE HF_HOME=" + home.string() +
                      " HF_ENDPOINT=" + server.endpoint() + " " + env + " " + WICK_BINARY + " " + args + " > " + out +
                      " 2> " + err;
    int status = std::system(cmd.c_str());
    return {WEXITSTATUS(status), read_file(out), read_file(err)};
  }
};

TEST_F(CliPull, PullsIntoTheCacheAndTheIdWorksAsAModelPath) {
  Result r = wick("pull wick-test/qwen2-tiny");
  ASSERT_EQ(r.code, 0) << r.err;
  fs::path snapshot = home / "hub" / "models--wick-test--qwen2-tiny" / "snapshots" / "1111111111111111111111111111111111111111";
  EXPECT_EQ(r.out, snapshot.string() + "\n");
  EXPECT_NE(r.err.find("3 files, 3 downloaded"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(snapshot / "model.safetensors"),
            read_file(std::string(WICK_TEST_DATA_DIR) + "/models/qwen2_tied/model.safetensors"));
  Result info = wick("info wick-test/qwen2-tiny --json");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("\"architecture\": \"qwen2\""), std::string::npos) << info.out;
  // Offline: served from the cache, no request reaches the server.
  server.clear_requests();
  Result offline = wick("pull wick-test/qwen2-tiny", "HF_HUB_OFFLINE=1");
  ASSERT_EQ(offline.code, 0) << offline.err;
  EXPECT_EQ(offline.out, r.out);
  EXPECT_NE(offline.err.find("from the cache (no network)"), std::string::npos) << offline.err;
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(CliPull, ErrorsAreOneLineWithAnExitCode) {
  Result missing = wick("pull wick-test/absent");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("wick: error: 404: repository wick-test/absent not found"), std::string::npos) << missing.err;
  Result offline = wick("pull wick-test/qwen2-tiny", "HF_HUB_OFFLINE=1");
  EXPECT_EQ(offline.code, 1);
  EXPECT_NE(offline.err.find("HF_HUB_OFFLINE is set"), std::string::npos) << offline.err;
  Result bad = wick("pull not//an-id");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("is not a Hugging Face model id"), std::string::npos) << bad.err;
}

}  // namespace
#endif  // WICK_HAVE_HUB
