// The Hub client: list a commit's files, fetch the missing blobs with resume and verification,
// link them into the snapshot.
#include "wick/hub/hub_client.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "wick/hub/http.h"
#include "wick/io/hub_cache.h"
#include "wick/io/safetensors.h"

namespace wick::hub {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool is_hex(const std::string& s, size_t length) {
  return s.size() == length &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); });
}

// Content digests: sha256 for LFS files, git's blob id (sha1 of "blob <size>\0" + content) otherwise.
std::string file_digest(const fs::path& path, bool git_blob) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  WICK_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), git_blob ? EVP_sha1() : EVP_sha256(), nullptr) == 1,
             "cannot initialise a digest");
  std::ifstream in(path, std::ios::binary);
  WICK_CHECK(in.good(), "cannot read ", path.string());
  if (git_blob) {
    std::string prefix = "blob " + std::to_string(fs::file_size(path));
    EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size() + 1);  // with the terminating '\0'
  }
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), size_t(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// An exclusive advisory lock on a file, as huggingface_hub holds one per blob being written.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    WICK_CHECK(fd_ >= 0, "cannot create the lock file ", path.string());
    WICK_CHECK(::flock(fd_, LOCK_EX) == 0, "cannot lock ", path.string());
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

struct RepoFile {
  std::string path;  // inside the repo
  uint64_t size = 0;
  std::string etag;  // blob name: sha256 (LFS) or git blob id
  bool lfs = false;
};

struct Context {
  const HubOptions& o;
  std::string repo_id, revision;
  fs::path repo_dir, locks_dir;

  std::vector<std::string> auth_headers() const {
    std::vector<std::string> h;
    if (!o.token.empty()) h.push_back("Authorization: Bearer " + o.token);
    return h;
  }

  // The HubError for a non-2xx answer to `url` (`file` names the file asked for, if any).
  [[noreturn]] void fail_status(const HttpResponse& r, const std::string& url, const std::string& file) const {
    std::string code = r.header("x-error-code");
    std::string message = r.header("x-error-message");
    if (message.empty()) {
      nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) message = j["error"].get<std::string>();
    }
    std::string detail = message.empty() ? "" : " (" + message + ")";
    std::string who = repo_id + (file.empty() ? "" : ": " + file);
    switch (r.status) {
      case 401:
        throw HubError(401, str_cat("401 Unauthorized for ", who, detail, ": the repository is private or gated, or does not exist; ",
                                    o.token.empty() ? "set HF_TOKEN to a token that can read it"
                                                    : "the token in HF_TOKEN cannot read it"));
      case 403:
        throw HubError(403, str_cat("403 Forbidden for ", who, detail,
                                    ": access is refused (a gated model needs its conditions accepted on the Hub first)"));
      case 404:
        if (code == "RevisionNotFound")
          throw HubError(404, str_cat("404: revision '", revision, "' not found in ", repo_id, detail));
        if (code == "EntryNotFound" || !file.empty())
          throw HubError(404, str_cat("404: ", file, " not found in ", repo_id, " at revision ", revision, detail));
        throw HubError(404, str_cat("404: repository ", repo_id, " not found at ", o.endpoint, detail));
      default:
        throw HubError(r.status, str_cat("HTTP ", r.status, " from ", url, detail));
    }
  }
};

std::vector<RepoFile> parse_listing(const Context& c, const std::string& body, std::string& commit) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  std::string what = "the Hub's answer for " + c.repo_id + " at " + c.revision;
  WICK_CHECK(j.is_object(), what, " is not a JSON object");
  WICK_CHECK(j.contains("sha") && j["sha"].is_string() && is_hex(j["sha"].get<std::string>(), 40), what,
             " has no 40-hex commit 'sha'");
  commit = j["sha"];
  WICK_CHECK(j.contains("siblings") && j["siblings"].is_array(), what, " has no 'siblings' list");
  std::vector<RepoFile> files;
  for (const auto& s : j["siblings"]) {
    WICK_CHECK(s.is_object() && s.contains("rfilename") && s["rfilename"].is_string(), what,
               " lists a file without 'rfilename'");
    RepoFile f;
    f.path = s["rfilename"];
    WICK_CHECK(io::is_safe_relative(f.path), what, " lists an unsafe file path '", f.path, "'");
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      WICK_CHECK(lfs.contains("sha256") && lfs["sha256"].is_string() && is_hex(lfs["sha256"].get<std::string>(), 64) &&
                     lfs.contains("size") && lfs["size"].is_number_unsigned(),
                 what, ": ", f.path, " has no valid lfs sha256/size");
      f.lfs = true;
      f.etag = lfs["sha256"];
      f.size = lfs["size"];
    } else {
      WICK_CHECK(s.contains("blobId") && s["blobId"].is_string() && is_hex(s["blobId"].get<std::string>(), 40) &&
                     s.contains("size") && s["size"].is_number_unsigned(),
                 what, ": ", f.path, " has no blobId/size (the endpoint must support ?blobs=true)");
      f.etag = s["blobId"];
      f.size = s["size"];
    }
    files.push_back(f);
  }
  return files;
}

bool selected(const HubOptions& o, const std::string& path) {
  bool in = o.include.empty();
  for (const auto& p : o.include) in = in || matches_pattern(path, p);
  for (const auto& p : o.exclude) in = in && !matches_pattern(path, p);
  return in;
}

void sleep_seconds(double s) {
  if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

// Makes blobs/<etag> hold `f`, downloading (and resuming) as needed. Returns the bytes fetched,
// or nullopt when the blob was already in the cache.
std::optional<uint64_t> ensure_blob(const Context& c, const std::string& commit, const RepoFile& f) {
  fs::path blob = c.repo_dir / "blobs" / f.etag;
  std::error_code ec;
  if (fs::is_regular_file(blob) && fs::file_size(blob, ec) == f.size) return std::nullopt;
  FileLock lock(c.locks_dir / (f.etag + ".lock"));
  if (fs::is_regular_file(blob) && fs::file_size(blob, ec) == f.size) return std::nullopt;  // another process did it
  fs::path part = blob;
  part += ".incomplete";
  std::string url = c.o.endpoint + "/" + url_encode(c.repo_id, true) + "/resolve/" + commit + "/" + url_encode(f.path, true);
  uint64_t fetched = 0;
  double delay = c.o.retry_delay_s;
  for (int attempt = 0;; ++attempt) {
    uint64_t have = fs::is_regular_file(part) ? fs::file_size(part) : 0;
    if (have > f.size) {
      fs::remove(part);
      have = 0;
    }
    if (have == f.size && fs::exists(part)) break;
    HttpRequest req;
    req.url = url;
    req.headers = c.auth_headers();
    req.headers.push_back("Accept-Encoding: identity");
    if (have > 0) req.headers.push_back("Range: bytes=" + std::to_string(have) + "-");
    req.connect_timeout_s = c.o.connect_timeout_s;
    req.stall_timeout_s = c.o.stall_timeout_s;
    std::FILE* out = nullptr;
    bool write_failed = false;
    req.on_body = [&](int status, const char* data, size_t n) {
      if (out == nullptr) {
        // 206: the rest of the file follows; 200: the whole file (the server ignored the range).
        out = std::fopen(part.c_str(), status == 206 ? "ab" : "wb");
        if (out == nullptr) return !(write_failed = true);
        if (status != 206) have = 0;
      }
      if (std::fwrite(data, 1, n, out) != n) return !(write_failed = true);
      fetched += n;
      return true;
    };
    req.on_progress = [&](uint64_t now, uint64_t) {
      if (c.o.progress) c.o.progress({f.path, have + now, f.size, false});
    };
    if (have == 0 && f.size == 0) std::fclose(std::fopen(part.c_str(), "wb"));
    HttpResponse r = http_get(req);
    if (out != nullptr) write_failed = (std::fclose(out) != 0) || write_failed;
    WICK_CHECK(!write_failed, "cannot write ", part.string(), " (disk full or not writable?)");
    if (r.status == 416) {  // the partial file does not fit the server's: start over
      fs::remove(part);
    } else if (!r.transport_failed() && (r.status < 200 || r.status >= 300)) {
      c.fail_status(r, url, f.path);
    }
    uint64_t now_have = fs::is_regular_file(part) ? fs::file_size(part) : 0;
    if (now_have == f.size && !r.transport_failed()) break;
    if (attempt >= c.o.retries) {
      throw HubError(r.status, str_cat("downloading ", f.path, " from ", c.repo_id, " failed after ", attempt + 1,
                                       " attempts", r.transport_failed() ? ": " + r.error : "", " (", now_have, " of ",
                                       f.size, " bytes kept in ", part.string(), "; run the same command again to resume)"));
    }
    sleep_seconds(delay);
    delay *= 2;
  }
  uint64_t size = fs::file_size(part);
  if (size != f.size) {
    fs::remove(part);
    fail(f.path, ": downloaded ", size, " bytes but the Hub lists ", f.size, "; the file was discarded");
  }
  std::string digest = file_digest(part, !f.lfs);
  if (digest != f.etag) {
    fs::remove(part);
    fail(f.path, ": the ", f.lfs ? "sha256" : "git blob id", " of the download is ", digest, " but the Hub lists ", f.etag,
         "; the file was discarded");
  }
  fs::rename(part, blob);
  return fetched;
}

// snapshots/<commit>/<path> -> ../../blobs/<etag> (one more "../" per folder in path).
void link_into_snapshot(const fs::path& snapshot, const RepoFile& f) {
  fs::path link = snapshot / f.path;
  fs::create_directories(link.parent_path());
  std::string target;
  for (size_t i = 0, n = size_t(std::count(f.path.begin(), f.path.end(), '/')) + 2; i < n; ++i) target += "../";
  target += "blobs/" + f.etag;
  std::error_code ec;
  if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == target) return;
  fs::remove(link, ec);
  fs::create_symlink(target, link);
}

PullResult from_cache(const Context& c, const std::string& why) {
  std::optional<std::string> snapshot = io::hub_cached_snapshot(c.repo_id, c.revision, c.o.cache_dir);
  if (!snapshot)
    fail(why, ", and ", c.repo_id, " at revision '", c.revision, "' is not in the cache (", c.repo_dir.string(), ")");
  PullResult out;
  out.snapshot = *snapshot;
  out.commit = fs::path(*snapshot).filename().string();
  out.from_cache = true;
  for (auto it = fs::recursive_directory_iterator(*snapshot); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory()) continue;
    std::string rel = fs::relative(it->path(), *snapshot).generic_string();
    if (!selected(c.o, rel)) continue;
    WICK_CHECK(fs::is_regular_file(it->path()), c.repo_id, ": the cached ", rel, " points to a missing blob (",
               it->path().string(), "); pull again online");
    out.files.push_back(rel);
  }
  std::sort(out.files.begin(), out.files.end());
  WICK_CHECK(!out.files.empty(), c.repo_id, ": no cached file matches the include/exclude patterns");
  return out;
}

}  // namespace

HubOptions HubOptions::from_env() {
  HubOptions o;
  if (std::string e = env("HF_ENDPOINT"); !e.empty()) o.endpoint = e;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.token = env("HF_TOKEN");
  if (o.token.empty()) o.token = env("HUGGING_FACE_HUB_TOKEN");
  if (o.token.empty()) {
    std::string path = env("HF_TOKEN_PATH");
    if (path.empty()) {
      std::string home = env("HF_HOME");
      path = home.empty() ? env("HOME") + "/.cache/huggingface/token" : home + "/token";
    }
    std::ifstream in(path);
    std::getline(in, o.token);
    while (!o.token.empty() && std::isspace(static_cast<unsigned char>(o.token.back()))) o.token.pop_back();
  }
  std::string off = env("HF_HUB_OFFLINE");
  for (char& ch : off) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  o.offline = off == "1" || off == "true" || off == "yes" || off == "on";
  return o;
}

bool matches_pattern(const std::string& path, const std::string& pattern) {
  std::string p = !pattern.empty() && pattern.back() == '/' ? pattern + "*" : pattern;
  return ::fnmatch(p.c_str(), path.c_str(), 0) == 0;
}

PullResult pull(const std::string& repo_id, const std::string& revision, const HubOptions& options) {
  WICK_CHECK(io::is_hub_repo_id(repo_id), "'", repo_id, "' is not a Hugging Face model id (ORG/NAME)");
  WICK_CHECK(io::is_safe_relative(revision), "'", revision, "' is not a valid revision");
  Context c{options, repo_id, revision, fs::path(io::hub_repo_folder(repo_id, options.cache_dir)), {}};
  c.locks_dir = c.repo_dir.parent_path() / ".locks" / c.repo_dir.filename();
  if (options.offline) return from_cache(c, "HF_HUB_OFFLINE is set");
  WICK_CHECK(options.endpoint.rfind("http://", 0) == 0 || options.endpoint.rfind("https://", 0) == 0,
             "HF_ENDPOINT '", options.endpoint, "' is not an http(s) URL");

  std::string url = options.endpoint + "/api/models/" + url_encode(repo_id, true) + "/revision/" +
                    url_encode(revision, false) + "?blobs=true";
  HttpRequest req;
  req.url = url;
  req.headers = c.auth_headers();
  req.connect_timeout_s = options.connect_timeout_s;
  req.stall_timeout_s = options.stall_timeout_s;
  HttpResponse r;
  double delay = options.retry_delay_s;
  for (int attempt = 0;; ++attempt) {
    r = http_get(req);
    if (!r.transport_failed() || attempt >= options.retries) break;
    sleep_seconds(delay);
    delay *= 2;
  }
  if (r.transport_failed()) {
    std::string why = "cannot reach " + options.endpoint + " (" + r.error + ")";
    if (io::hub_cached_snapshot(repo_id, revision, options.cache_dir)) return from_cache(c, why);
    throw HubError(0, why + " and " + repo_id + " at revision '" + revision + "' is not in the cache");
  }
  if (r.status != 200) c.fail_status(r, url, "");
  std::string commit;
  std::vector<RepoFile> files = parse_listing(c, r.body, commit);

  PullResult out;
  out.commit = commit;
  fs::path snapshot = c.repo_dir / "snapshots" / commit;
  out.snapshot = snapshot.string();
  fs::create_directories(c.repo_dir / "blobs");
  fs::create_directories(snapshot);
  for (const RepoFile& f : files) {
    if (!selected(options, f.path)) continue;
    if (std::optional<uint64_t> fetched = ensure_blob(c, commit, f)) {
      out.bytes_downloaded += *fetched;
      ++out.files_downloaded;
    }
    link_into_snapshot(snapshot, f);
    out.files.push_back(f.path);
    if (options.progress) options.progress({f.path, f.size, f.size, true});
  }
  WICK_CHECK(!out.files.empty(), repo_id, " at ", revision, ": no file matches the include/exclude patterns (",
             files.size(), " files in the repository)");
  if (revision != commit) {
    fs::path ref = c.repo_dir / "refs" / revision;
    fs::create_directories(ref.parent_path());
    io::write_text_atomic(ref.string(), commit);
  }
  std::sort(out.files.begin(), out.files.end());
  return out;
}

}  // namespace wick::hub
