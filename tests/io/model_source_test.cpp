// Model path resolution and the huggingface_hub cache layout (built here the way huggingface_hub
// lays it out: refs/main holding the commit, snapshot files as symlinks into blobs/).
#include <gtest/gtest.h>

#include <filesystem>

#include "io_test_util.h"
#include "wick/io/hub_cache.h"
#include "wick/io/model_source.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;
using test::data_path;
using test::expect_error;
using test::read_bytes;
using test::ScratchDir;

constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";

// <cache>/models--org--tiny/{refs/main, blobs/<sha>, snapshots/<commit>/config.json -> blob}
void make_cached_repo(const ScratchDir& cache) {
  fs::path repo = cache.path() / "models--org--tiny";
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots" / kCommit);
  fs::create_directories(repo / ".no_exist" / kCommit);
  cache.write("models--org--tiny/refs/main", std::string(kCommit));
  cache.write("models--org--tiny/blobs/abc123", std::string("{\"model_type\": \"llama\"}"));
  fs::create_symlink("../../blobs/abc123", repo / "snapshots" / kCommit / "config.json");
  cache.write(std::string("models--org--tiny/.no_exist/") + kCommit + "/generation_config.json", std::string());
}

TEST(HubCache, FindsSnapshotsAndFiles) {
  ScratchDir cache;
  make_cached_repo(cache);
  std::string dir = cache.path().string();
  auto snap = hub_cached_snapshot("org/tiny", "main", dir);
  ASSERT_TRUE(snap);
  EXPECT_EQ(fs::path(*snap).filename(), kCommit);
  EXPECT_EQ(hub_cached_snapshot("org/tiny", kCommit, dir), snap);  // a commit hash directly
  EXPECT_EQ(hub_cached_snapshot("org/tiny", "dev", dir), std::nullopt);
  EXPECT_EQ(hub_cached_snapshot("org/other", "main", dir), std::nullopt);

  HubCachedFile cfg = hub_cached_file("org/tiny", "config.json", "main", dir);
  EXPECT_EQ(cfg.status, HubCacheStatus::kFound);
  EXPECT_EQ(read_bytes(cfg.path).size(), 23u);
  EXPECT_EQ(hub_cached_file("org/tiny", "generation_config.json", "main", dir).status,
            HubCacheStatus::kKnownAbsent);
  EXPECT_EQ(hub_cached_file("org/tiny", "model.safetensors", "main", dir).status, HubCacheStatus::kNotCached);

  expect_error([&] { hub_cached_file("org/tiny", "../x", "main", dir); }, {"'../x' is not a relative file name"});
  expect_error([&] { hub_cached_snapshot("../etc", "main", dir); }, {"'../etc' is not a Hugging Face model id"});
  expect_error([&] { hub_cached_snapshot("org/tiny", "../../x", dir); }, {"not a valid revision"});
}

TEST(HubCache, RepoIdsAndCacheDir) {
  for (const char* ok : {"gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "sentence-transformers/all-MiniLM-L6-v2", "a_b.c"})
    EXPECT_TRUE(is_hub_repo_id(ok)) << ok;
  for (const char* bad : {"", "/abs", "a/b/c", "a--b", "a/../b", "a b", "org/", ".hidden", "x/y\n"})
    EXPECT_FALSE(is_hub_repo_id(bad)) << bad;
  EXPECT_FALSE(hf_hub_cache_dir().empty());
}

TEST(ModelSource, ByContentAndFolderAndCache) {
  EXPECT_EQ(resolve_model_source(data_path("gguf/golden.gguf")).format, ModelFormat::kGguf);
  EXPECT_EQ(resolve_model_source(data_path("safetensors/golden.safetensors")).format,
            ModelFormat::kSafetensorsFile);
  ScratchDir dir;
  dir.write("m.bin", read_bytes(data_path("gguf/golden.gguf")));  // the extension does not matter
  EXPECT_EQ(resolve_model_source(dir.file("m.bin")).format, ModelFormat::kGguf);
  dir.write("notes.txt", std::string("hello world"));
  expect_error([&] { resolve_model_source(dir.file("notes.txt")); }, {"notes.txt", "neither a GGUF"});

  ScratchDir gguf_dir;
  gguf_dir.write("x.gguf", read_bytes(data_path("gguf/golden.gguf")));
  ModelSource s = resolve_model_source(gguf_dir.path().string());
  EXPECT_EQ(s.format, ModelFormat::kGguf);
  EXPECT_EQ(fs::path(s.path).filename(), "x.gguf");
  gguf_dir.write("y.gguf", std::string("GGUF"));
  expect_error([&] { resolve_model_source(gguf_dir.path().string()); }, {"holds 2 .gguf files"});

  ScratchDir cache;
  make_cached_repo(cache);
  ModelSource hub = resolve_model_source("org/tiny", cache.path().string());
  EXPECT_EQ(hub.format, ModelFormat::kHfFolder);
  EXPECT_EQ(fs::path(hub.path).filename(), kCommit);
  expect_error([&] { resolve_model_source("org/absent", cache.path().string()); },
               {"org/absent", "not in the Hugging Face cache", cache.path().string(), "wick pull org/absent"});
  expect_error([&] { resolve_model_source("/no/such/model.gguf"); }, {"/no/such/model.gguf", "no such file"});
  // Shaped like an id but named like a file: no download hint.
  try {
    resolve_model_source("models/absent.gguf", cache.path().string());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("models/absent.gguf: no such file or folder"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("wick pull"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace wick::io
