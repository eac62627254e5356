// Offline lookups in the huggingface_hub cache.
#include "wick/io/hub_cache.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "wick/base/error.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string expand_home(const std::string& path) {
  if (path.empty() || path[0] != '~') return path;
  return env("HOME") + path.substr(1);
}

}  // namespace

bool is_safe_relative(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) return false;
  for (const auto& part : fs::path(p)) {
    if (part == ".." || part == "." || part.empty()) return false;
  }
  return p.back() != '/';
}

std::string hub_repo_folder(const std::string& repo_id, const std::string& cache_dir) {
  if (!is_hub_repo_id(repo_id)) fail("'", repo_id, "' is not a Hugging Face model id (org/name)");
  std::string folder = "models";
  size_t start = 0;
  while (true) {
    size_t slash = repo_id.find('/', start);
    folder += "--" + repo_id.substr(start, slash - start);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return (fs::path(cache_dir.empty() ? hf_hub_cache_dir() : cache_dir) / folder).string();
}

namespace {

fs::path repo_folder(const std::string& repo_id, const std::string& cache_dir) {
  return hub_repo_folder(repo_id, cache_dir);
}

// The commit hash a revision stands for: refs/<revision> when that file exists, else the revision.
std::string resolve_revision(const fs::path& repo, const std::string& revision) {
  if (!is_safe_relative(revision)) fail("'", revision, "' is not a valid revision");
  std::ifstream ref(repo / "refs" / revision);
  if (!ref) return revision;
  std::stringstream text;
  text << ref.rdbuf();
  return text.str();
}

}  // namespace

std::string hf_hub_cache_dir() {
  if (std::string v = env("HF_HUB_CACHE"); !v.empty()) return expand_home(v);
  if (std::string v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return expand_home(v);
  if (std::string v = env("HF_HOME"); !v.empty()) return (fs::path(expand_home(v)) / "hub").string();
  std::string xdg = env("XDG_CACHE_HOME");
  fs::path base = xdg.empty() ? fs::path(env("HOME")) / ".cache" : fs::path(xdg);
  return (base / "huggingface" / "hub").string();
}

bool is_hub_repo_id(const std::string& id) {
  // huggingface_hub's validate_repo_id: [\w\-.]{1,96} parts, at most one '/', no "--" or "..".
  if (id.empty() || id.size() > 96 * 2 + 1) return false;
  if (id.find("--") != std::string::npos || id.find("..") != std::string::npos) return false;
  int slashes = 0;
  for (char c : id) {
    if (c == '/') {
      ++slashes;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return slashes <= 1 && id.front() != '/' && id.back() != '/' && id.front() != '.' &&
         id.front() != '-';
}

std::optional<std::string> hub_cached_snapshot(const std::string& repo_id, const std::string& revision,
                                               const std::string& cache_dir) {
  fs::path repo = repo_folder(repo_id, cache_dir);
  if (!fs::is_directory(repo)) return std::nullopt;
  std::string commit = resolve_revision(repo, revision);
  if (!is_safe_relative(commit)) fail(repo.string(), ": refs/", revision, " holds an invalid commit");
  fs::path snapshot = repo / "snapshots" / commit;
  if (!fs::is_directory(snapshot)) return std::nullopt;
  return snapshot.string();
}

HubCachedFile hub_cached_file(const std::string& repo_id, const std::string& filename,
                              const std::string& revision, const std::string& cache_dir) {
  if (!is_safe_relative(filename)) fail("'", filename, "' is not a relative file name inside a repo");
  fs::path repo = repo_folder(repo_id, cache_dir);
  HubCachedFile out;
  if (!fs::is_directory(repo)) return out;
  std::string commit = resolve_revision(repo, revision);
  if (!is_safe_relative(commit)) fail(repo.string(), ": refs/", revision, " holds an invalid commit");
  if (fs::is_regular_file(repo / ".no_exist" / commit / filename)) {
    out.status = HubCacheStatus::kKnownAbsent;
    return out;
  }
  fs::path file = repo / "snapshots" / commit / filename;
  if (fs::is_regular_file(file)) {  // follows the symlink into blobs/
    out.status = HubCacheStatus::kFound;
    out.path = file.string();
  }
  return out;
}

}  // namespace wick::io
