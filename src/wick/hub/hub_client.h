// Downloading models from the Hugging Face Hub (or a mirror named by HF_ENDPOINT) into
// huggingface_hub's cache layout, so wick and the Python libraries share one cache:
//   <cache>/models--ORG--NAME/blobs/<etag>                 file contents, named by sha256 (LFS
//                                                          files) or git blob id (small files)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<path>    relative symlinks into blobs/
//   <cache>/models--ORG--NAME/refs/<revision>              the commit a branch or tag points to
//   <cache>/.locks/models--ORG--NAME/<etag>.lock            held while a blob is being written
// Protocol: GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true lists the files of a
// commit with their sizes and digests; GET {endpoint}/{repo}/resolve/{commit}/{path} serves a file
// (LFS files through a redirect). Partial downloads live in blobs/<etag>.incomplete and are resumed
// with a Range request; every blob is checked for size and digest before it enters the cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "wick/base/error.h"

namespace wick::hub {

// A Hub request that failed: `status` is the HTTP status (0 when no answer came).
class HubError : public Error {
 public:
  HubError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct FileProgress {
  std::string file;      // path inside the repo
  uint64_t done = 0;     // bytes of the file present so far (resumed bytes included)
  uint64_t total = 0;    // the file's size
  bool finished = false; // the file is verified and in the cache
};

struct HubOptions {
  std::string endpoint = "https://huggingface.co";
  std::string token;      // sent as "Authorization: Bearer <token>" when not empty
  std::string cache_dir;  // empty: io::hf_hub_cache_dir()
  bool offline = false;   // never touch the network; answer from the cache or fail
  // Glob patterns (fnmatch, '*' crosses '/') on file paths: a file is fetched when it matches one
  // of `include` (all files when empty) and none of `exclude`.
  std::vector<std::string> include, exclude;
  int retries = 4;                 // further attempts after a dropped or failed transfer
  double retry_delay_s = 1.0;      // doubled after each attempt
  long connect_timeout_s = 15;
  long stall_timeout_s = 60;       // abort a transfer that moves no byte for this long
  std::function<void(const FileProgress&)> progress;

  // The same environment huggingface_hub reads: HF_ENDPOINT, HF_TOKEN (else
  // HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token), HF_HUB_OFFLINE
  // (1/true/yes/on), and the cache variables of io::hf_hub_cache_dir().
  static HubOptions from_env();
};

struct PullResult {
  std::string commit;               // the 40-hex commit the revision resolved to
  std::string snapshot;             // <cache>/models--ORG--NAME/snapshots/<commit>
  std::vector<std::string> files;   // paths inside the snapshot that this pull covers
  uint64_t bytes_downloaded = 0;    // fetched over the network by this call
  size_t files_downloaded = 0;      // blobs that were not in the cache before
  bool from_cache = false;          // answered from the cache without the network
};

// Downloads every file of `repo_id` ("ORG/NAME") at `revision` (branch, tag or commit) that the
// include/exclude patterns select, into the cache; files already there are not fetched again.
// Offline: answers from the cache, or throws naming what is missing. Throws HubError for HTTP
// failures (401: credentials, 404: repository, revision or file) and wick::Error for bad input,
// digest mismatches and file-system failures.
PullResult pull(const std::string& repo_id, const std::string& revision, const HubOptions& options);

// Whether a file path matches a glob pattern the way huggingface_hub's allow_patterns do
// (fnmatch without FNM_PATHNAME: '*' also matches '/'; a pattern ending in '/' matches a folder).
bool matches_pattern(const std::string& path, const std::string& pattern);

}  // namespace wick::hub
