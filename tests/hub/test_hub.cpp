// The Hub client against a local stand-in of the Hub (fake_hub.h): cache layout, no second
// download, resume of a partial file and of a cut transfer, digest checks, offline use, 401/404.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "hub/fake_hub.h"
#include "wick/hub/hub_client.h"
#include "wick/io/hub_cache.h"
#include "wick/io/model_source.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kCommitV1 = "89abcdef0123456789abcdef0123456789abcdef";

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = char(rng() & 0xff);
  return s;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Hub : public ::testing::Test {
 protected:
  FakeHub server;
  fs::path cache;
  std::string weights = random_bytes(700000, 1);
  std::string config = R"({"model_type": "llama"})";

  void SetUp() override {
    cache = fs::temp_directory_path() / ("wick-hub-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(cache);
    FakeHub::Repo repo;
    repo.commit = kCommit;
    repo.refs = {{"main", kCommit}, {"v1.0", kCommitV1}};
    repo.files = {{"config.json", config, false},
                  {"model.safetensors", weights, true},
                  {"nested/dir/notes.txt", "hello\n", false},
                  {"empty.txt", "", false}};
    server.add_repo("org/tiny", repo);
    FakeHub::Repo secret = repo;
    secret.is_private = true;
    server.add_repo("org/private", secret);
  }
  void TearDown() override { fs::remove_all(cache); }

  hub::HubOptions options() {
    hub::HubOptions o;
    o.endpoint = server.endpoint();
    o.cache_dir = cache.string();
    o.retry_delay_s = 0;
    o.retries = 2;
    return o;
  }
  fs::path repo_dir() { return cache / "models--org--tiny"; }
  std::string blob_name(const std::string& content, bool lfs) { return lfs ? sha256_hex(content) : git_blob_id(content); }
};

// The stand-in's digests are anchored to known values (sha256 of "abc"; `git hash-object` of "hello\n").
TEST(FakeHubDigests, MatchKnownValues) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(git_blob_id("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
}

TEST_F(Hub, PullWritesTheHuggingfaceHubCacheLayout) {
  hub::PullResult r = hub::pull("org/tiny", "main", options());
  EXPECT_EQ(r.commit, kCommit);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.files_downloaded, 4u);
  EXPECT_EQ(r.bytes_downloaded, weights.size() + config.size() + 6);
  EXPECT_EQ(r.files, (std::vector<std::string>{"config.json", "empty.txt", "model.safetensors", "nested/dir/notes.txt"}));
  EXPECT_EQ(fs::path(r.snapshot), repo_dir() / "snapshots" / kCommit);
  EXPECT_EQ(read(repo_dir() / "refs" / "main"), kCommit);
  // Snapshot entries are relative symlinks into blobs/, named as huggingface_hub names them.
  fs::path link = repo_dir() / "snapshots" / kCommit / "model.safetensors";
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link).string(), "../../blobs/" + blob_name(weights, true));
  EXPECT_EQ(read(link), weights);
  fs::path nested = repo_dir() / "snapshots" / kCommit / "nested/dir/notes.txt";
  EXPECT_EQ(fs::read_symlink(nested).string(), "../../../../blobs/" + blob_name("hello\n", false));
  EXPECT_EQ(read(nested), "hello\n");
  EXPECT_EQ(read(repo_dir() / "snapshots" / kCommit / "config.json"), config);
  EXPECT_TRUE(fs::is_regular_file(repo_dir() / "snapshots" / kCommit / "empty.txt"));
  for (const auto& e : fs::directory_iterator(repo_dir() / "blobs"))
    EXPECT_EQ(e.path().extension(), "") << "left over: " << e.path();
  // The offline lookups (and so every --model ORG/NAME) find the files.
  io::HubCachedFile cached = io::hub_cached_file("org/tiny", "config.json", "main", cache.string());
  EXPECT_EQ(cached.status, io::HubCacheStatus::kFound);
  // LFS files come through the redirect; the Hub saw the revision API once.
  EXPECT_EQ(server.requests_to("/api/models/org/tiny/revision/main").size(), 1u);
  EXPECT_EQ(server.requests_to("/cdn/").size(), 1u);
}

TEST_F(Hub, ASecondPullDownloadsNothing) {
  hub::pull("org/tiny", "main", options());
  server.clear_requests();
  hub::PullResult r = hub::pull("org/tiny", "main", options());
  EXPECT_EQ(r.files_downloaded, 0u);
  EXPECT_EQ(r.bytes_downloaded, 0u);
  EXPECT_EQ(r.files.size(), 4u);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);  // only the listing
  EXPECT_EQ(reqs[0].target.rfind("/api/models/", 0), 0u);
}

TEST_F(Hub, ResumesAPartialFileWithARangeRequest) {
  fs::create_directories(repo_dir() / "blobs");
  const size_t have = 300000;
  {
    std::ofstream part(repo_dir() / "blobs" / (blob_name(weights, true) + ".incomplete"), std::ios::binary);
    part << weights.substr(0, have);
  }
  hub::HubOptions o = options();
  o.include = {"model.safetensors"};
  hub::PullResult r = hub::pull("org/tiny", "main", o);
  EXPECT_EQ(r.bytes_downloaded, weights.size() - have);
  auto cdn = server.requests_to("/cdn/");
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].headers["range"], "bytes=300000-");
  EXPECT_EQ(read(repo_dir() / "snapshots" / kCommit / "model.safetensors"), weights);
  EXPECT_EQ(r.files, std::vector<std::string>{"model.safetensors"});
}

TEST_F(Hub, AResumeTheServerIgnoresStartsOver) {
  fs::create_directories(repo_dir() / "blobs");
  {
    std::ofstream part(repo_dir() / "blobs" / (blob_name(weights, true) + ".incomplete"), std::ios::binary);
    part << weights.substr(0, 1000);
  }
  server.ignore_range = true;
  hub::PullResult r = hub::pull("org/tiny", "main", options());
  EXPECT_EQ(read(repo_dir() / "snapshots" / kCommit / "model.safetensors"), weights);
  EXPECT_GE(r.bytes_downloaded, weights.size());
}

TEST_F(Hub, ACutTransferIsResumedWithinThePull) {
  server.cut_next_file_after = 123456;  // the first file body (config.json is smaller: the cut hits it whole)
  hub::HubOptions o = options();
  o.include = {"*.safetensors"};
  std::vector<uint64_t> progress;
  o.progress = [&](const hub::FileProgress& p) { progress.push_back(p.done); };
  hub::PullResult r = hub::pull("org/tiny", "main", o);
  EXPECT_EQ(read(repo_dir() / "snapshots" / kCommit / "model.safetensors"), weights);
  auto cdn = server.requests_to("/cdn/");
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[0].headers.count("range"), 0u);
  EXPECT_EQ(cdn[1].headers["range"], "bytes=123456-");
  EXPECT_EQ(r.bytes_downloaded, weights.size());
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), weights.size());
}

TEST_F(Hub, AnInterruptedPullLeavesAPartialFileTheNextPullResumes) {
  hub::HubOptions o = options();
  o.retries = 0;
  o.include = {"model.safetensors"};
  server.cut_next_file_after = 200000;
  try {
    hub::pull("org/tiny", "main", o);
    FAIL() << "expected the cut transfer to fail with no retries";
  } catch (const hub::HubError& e) {
    EXPECT_NE(std::string(e.what()).find("run the same command again to resume"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("200000 of 700000 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::file_size(repo_dir() / "blobs" / (blob_name(weights, true) + ".incomplete")), 200000u);
  server.clear_requests();
  hub::PullResult r = hub::pull("org/tiny", "main", o);
  EXPECT_EQ(r.bytes_downloaded, 500000u);
  EXPECT_EQ(server.requests_to("/cdn/").at(0).headers["range"], "bytes=200000-");
  EXPECT_EQ(read(repo_dir() / "snapshots" / kCommit / "model.safetensors"), weights);
}

TEST_F(Hub, ACorruptDownloadIsDiscardedAndNamed) {
  server.corrupt_next_file = 1;
  hub::HubOptions o = options();
  o.include = {"model.safetensors"};
  try {
    hub::pull("org/tiny", "main", o);
    FAIL() << "expected a digest mismatch";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("model.safetensors: the sha256 of the download is"), std::string::npos) << m;
    EXPECT_NE(m.find(sha256_hex(weights)), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / blob_name(weights, true)));
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (blob_name(weights, true) + ".incomplete")));
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots" / kCommit / "model.safetensors"));
  // Small files are checked by their git blob id.
  server.corrupt_next_file = 1;
  o.include = {"config.json"};
  try {
    hub::pull("org/tiny", "main", o);
    FAIL() << "expected a digest mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: the git blob id of the download is"), std::string::npos) << e.what();
  }
  // A clean pull afterwards succeeds.
  o.include = {};
  EXPECT_EQ(hub::pull("org/tiny", "main", o).files.size(), 4u);
}

TEST_F(Hub, OfflineServesFromTheCacheWithoutTheNetwork) {
  hub::HubOptions o = options();
  o.offline = true;
  try {
    hub::pull("org/tiny", "main", o);
    FAIL() << "expected an error: nothing is cached";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("HF_HUB_OFFLINE is set"), std::string::npos) << m;
    EXPECT_NE(m.find("org/tiny at revision 'main' is not in the cache"), std::string::npos) << m;
  }
  EXPECT_TRUE(server.requests().empty());
  hub::pull("org/tiny", "main", options());
  server.clear_requests();
  hub::PullResult r = hub::pull("org/tiny", "main", o);
  EXPECT_TRUE(r.from_cache);
  EXPECT_EQ(r.commit, kCommit);
  EXPECT_EQ(r.files.size(), 4u);
  EXPECT_TRUE(server.requests().empty());
  // A model id resolves through the cache for every --model option.
  io::ModelSource src = io::resolve_model_source("org/tiny", cache.string());
  EXPECT_EQ(fs::path(src.path), repo_dir() / "snapshots" / kCommit);
}

TEST_F(Hub, AnUnreachableEndpointFallsBackToTheCache) {
  hub::pull("org/tiny", "main", options());
  hub::HubOptions o = options();
  o.endpoint = "http://127.0.0.1:1";  // nothing listens there
  o.retries = 0;
  hub::PullResult r = hub::pull("org/tiny", "main", o);
  EXPECT_TRUE(r.from_cache);
  o.cache_dir = (cache / "empty").string();
  try {
    hub::pull("org/tiny", "main", o);
    FAIL() << "expected an error";
  } catch (const hub::HubError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(std::string(e.what()).find("cannot reach http://127.0.0.1:1"), std::string::npos) << e.what();
  }
}

TEST_F(Hub, PrivateReposNeedTheToken) {
  try {
    hub::pull("org/private", "main", options());
    FAIL() << "expected 401";
  } catch (const hub::HubError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_NE(std::string(e.what()).find("401 Unauthorized for org/private"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("set HF_TOKEN"), std::string::npos) << e.what();
  }
  hub::HubOptions o = options();
  o.token = "hf_wrong";
  try {
    hub::pull("org/private", "main", o);
    FAIL() << "expected 401";
  } catch (const hub::HubError& e) {
    EXPECT_NE(std::string(e.what()).find("the token in HF_TOKEN cannot read it"), std::string::npos) << e.what();
  }
  o.token = server.token;
  hub::PullResult r = hub::pull("org/private", "main", o);
  EXPECT_EQ(r.files.size(), 4u);
  for (const auto& req : server.requests_to("/org/private/resolve/"))
    EXPECT_EQ(req.headers.at("authorization"), "Bearer " + server.token);
}

TEST_F(Hub, MissingRepoRevisionAndFileAre404s) {
  try {
    hub::pull("org/nothing", "main", options());
    FAIL();
  } catch (const hub::HubError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("404: repository org/nothing not found at " + server.endpoint()), std::string::npos)
        << e.what();
  }
  try {
    hub::pull("org/tiny", "no-such-branch", options());
    FAIL();
  } catch (const hub::HubError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("revision 'no-such-branch' not found in org/tiny"), std::string::npos) << e.what();
  }
  // A file the listing names but the server does not serve.
  FakeHub::Repo broken;
  broken.commit = kCommit;
  broken.refs = {{"main", kCommit}};
  broken.files = {{"config.json", config, false}, {"gone.bin", "abc", false}};
  broken.unserved = {"gone.bin"};
  server.add_repo("org/broken", broken);
  try {
    hub::pull("org/broken", "main", options());
    FAIL();
  } catch (const hub::HubError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("404: gone.bin not found in org/broken at revision main"), std::string::npos)
        << e.what();
  }
}

TEST_F(Hub, RevisionsResolveThroughRefs) {
  hub::PullResult r = hub::pull("org/tiny", "v1.0", options());
  EXPECT_EQ(r.commit, kCommitV1);
  EXPECT_EQ(read(repo_dir() / "refs" / "v1.0"), kCommitV1);
  // A commit hash is its own revision: no ref is written for it.
  hub::PullResult byhash = hub::pull("org/tiny", kCommit, options());
  EXPECT_EQ(byhash.commit, kCommit);
  EXPECT_FALSE(fs::exists(repo_dir() / "refs" / kCommit));
  EXPECT_TRUE(fs::exists(repo_dir() / "snapshots" / kCommitV1 / "config.json"));
}

TEST_F(Hub, IncludeAndExcludePatterns) {
  hub::HubOptions o = options();
  o.include = {"*.json", "nested/"};
  o.exclude = {"*notes*"};
  hub::PullResult r = hub::pull("org/tiny", "main", o);
  EXPECT_EQ(r.files, std::vector<std::string>{"config.json"});
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots" / kCommit / "model.safetensors"));
  o.include = {"*.bin"};
  o.exclude = {};
  EXPECT_THROW(hub::pull("org/tiny", "main", o), Error);
  EXPECT_TRUE(hub::matches_pattern("a/b/c.json", "*.json"));
  EXPECT_TRUE(hub::matches_pattern("nested/dir/x", "nested/"));
  EXPECT_FALSE(hub::matches_pattern("model.bin", "*.json"));
}

TEST_F(Hub, UnsafePathsFromTheServerAreRefused) {
  FakeHub::Repo evil;
  evil.commit = kCommit;
  evil.refs = {{"main", kCommit}};
  evil.files = {{"../../../escape.txt", "x", false}};
  server.add_repo("org/evil", evil);
  try {
    hub::pull("org/evil", "main", options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsafe file path '../../../escape.txt'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(cache / "escape.txt"));
  EXPECT_THROW(hub::pull("../etc", "main", options()), Error);
  EXPECT_THROW(hub::pull("org/tiny", "../main", options()), Error);
}

TEST(HubOptionsFromEnv, ReadsTheHuggingfaceHubVariables) {
  ::setenv("HF_ENDPOINT", "http://mirror.example/", 1);
  ::setenv("HF_TOKEN", "hf_abc", 1);
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  hub::HubOptions o = hub::HubOptions::from_env();
  EXPECT_EQ(o.endpoint, "http://mirror.example");
  EXPECT_EQ(o.token, "hf_abc");
  EXPECT_TRUE(o.offline);
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  ::unsetenv("HF_TOKEN");
  fs::path home = fs::temp_directory_path() / ("wick-hf-home-" + std::to_string(::getpid()));
  fs::create_directories(home);
  std::ofstream(home / "token") << "hf_from_file\n";
  ::setenv("HF_HOME", home.c_str(), 1);
  o = hub::HubOptions::from_env();
  EXPECT_FALSE(o.offline);
  EXPECT_EQ(o.token, "hf_from_file");
  ::unsetenv("HF_ENDPOINT");
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_HOME");
  fs::remove_all(home);
  EXPECT_EQ(hub::HubOptions::from_env().endpoint, "https://huggingface.co");
}

}  // namespace
}  // namespace wick::test
