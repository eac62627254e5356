// Finding models already downloaded by huggingface_hub, in its cache layout, without a network:
//   <cache>/models--<org>--<name>/refs/<branch>         the commit hash a branch points to
//   <cache>/models--<org>--<name>/snapshots/<hash>/...   the files (symlinks into blobs/)
//   <cache>/models--<org>--<name>/.no_exist/<hash>/<f>   "this file does not exist at that commit"
// Mirrors huggingface_hub.try_to_load_from_cache.
#pragma once

#include <optional>
#include <string>

namespace wick::io {

// huggingface_hub's cache folder: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
// else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (the same variables and order
// as huggingface_hub, so both find the same downloads).
std::string hf_hub_cache_dir();

// A relative path that stays inside its folder: no leading '/', no "." or ".." parts, no empty
// parts, no trailing '/'.
bool is_safe_relative(const std::string& path);

// <cache>/models--ORG--NAME for `repo_id` (`cache_dir` empty: hf_hub_cache_dir()); throws
// wick::Error for a malformed id.
std::string hub_repo_folder(const std::string& repo_id, const std::string& cache_dir = "");

// Whether `repo_id` has the shape of a Hub model id ("name" or "org/name", no path tricks).
bool is_hub_repo_id(const std::string& repo_id);

// The snapshot folder of `repo_id` at `revision` (a branch/tag name resolved through refs/, or a
// commit hash); std::nullopt when not cached. `cache_dir` empty means hf_hub_cache_dir().
// Throws wick::Error for a malformed repo id or revision.
std::optional<std::string> hub_cached_snapshot(const std::string& repo_id,
                                               const std::string& revision = "main",
                                               const std::string& cache_dir = "");

enum class HubCacheStatus {
  kFound,        // the file is in the snapshot (path set)
  kNotCached,    // nothing known: it would have to be downloaded
  kKnownAbsent,  // huggingface_hub recorded that the repo has no such file at this revision
};
struct HubCachedFile {
  HubCacheStatus status = HubCacheStatus::kNotCached;
  std::string path;
};

// `filename` (relative, may contain '/') inside the cached snapshot.
HubCachedFile hub_cached_file(const std::string& repo_id, const std::string& filename,
                              const std::string& revision = "main",
                              const std::string& cache_dir = "");

}  // namespace wick::io
