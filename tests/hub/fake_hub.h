// A Hugging Face Hub stand-in on 127.0.0.1 for tests: serves the Hub's URL layout
//   GET /api/models/ORG/NAME/revision/REV[?blobs=true]  -> {"sha", "siblings": [{rfilename, size, blobId, lfs}]}
//   GET /ORG/NAME/resolve/REV/PATH                       -> the file (LFS files: 302 to /cdn/<sha256>)
//   GET /cdn/<sha256>                                     -> an LFS file's bytes
// with Range requests (206), private repos (401 without the right bearer token), 404s carrying
// X-Error-Code like the Hub's, and injected faults: a transfer cut after N bytes, corrupted bytes.
// One thread, one connection at a time, "Connection: close". Digests come from OpenSSL.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::test {

inline std::string hex_digest(const EVP_MD* md, const std::string& prefix, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, nullptr);
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  EVP_DigestUpdate(ctx, data.data(), data.size());
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < n; ++i) {
    snprintf(buf, sizeof buf, "%02x", out[i]);
    hex += buf;
  }
  return hex;
}
inline std::string sha256_hex(const std::string& data) { return hex_digest(EVP_sha256(), "", data); }
// git's blob id: sha1 of "blob <size>\0" + content.
inline std::string git_blob_id(const std::string& data) {
  return hex_digest(EVP_sha1(), "blob " + std::to_string(data.size()) + std::string(1, '\0'), data);
}

class FakeHub {
 public:
  struct File {
    std::string path, content;
    bool lfs = false;
  };
  struct Repo {
    std::string commit;                          // 40 hex
    std::map<std::string, std::string> refs;     // branch/tag -> commit
    std::vector<File> files;
    bool is_private = false;
    std::vector<std::string> unserved;           // listed by the API, 404 on resolve
  };
  struct Request {
    std::string method, target;
    std::map<std::string, std::string> headers;  // lower-case names
  };

  std::string token = "hf_test_token";
  std::atomic<long> cut_next_file_after{-1};   // the next file body stops after this many bytes
  std::atomic<long> corrupt_next_file{0};      // flip a byte in the next N file bodies
  std::atomic<bool> ignore_range{false};       // answer 200 with the whole file to Range requests

  FakeHub() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("FakeHub: cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeHub() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void add_repo(const std::string& id, Repo repo) {
    std::lock_guard<std::mutex> lock(mu_);
    repos_[id] = std::move(repo);
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  void clear_requests() {
    std::lock_guard<std::mutex> lock(mu_);
    log_.clear();
  }
  // The requests whose target starts with `prefix`.
  std::vector<Request> requests_to(const std::string& prefix) {
    std::vector<Request> out;
    for (auto& r : requests())
      if (r.target.rfind(prefix, 0) == 0) out.push_back(r);
    return out;
  }

 private:
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Repo> repos_;
  std::vector<Request> log_;

  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  static std::string url_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }

  static void send_all(int c, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(c, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += size_t(n);
    }
  }

  static void respond(int c, int status, const std::string& reason, const std::vector<std::string>& headers,
                      const std::string& body, size_t content_length) {
    std::ostringstream head;
    head << "HTTP/1.1 " << status << " " << reason << "\r\n";
    for (const auto& h : headers) head << h << "\r\n";
    head << "Content-Length: " << content_length << "\r\nConnection: close\r\n\r\n";
    send_all(c, head.str());
    send_all(c, body);
  }

  static void error(int c, int status, const std::string& reason, const std::string& code, const std::string& message) {
    std::string body = nlohmann::json{{"error", message}}.dump();
    respond(c, status, reason, {"X-Error-Code: " + code, "X-Error-Message: " + message, "Content-Type: application/json"},
            body, body.size());
  }

  bool authorised(const Repo& repo, const Request& r) const {
    if (!repo.is_private) return true;
    auto it = r.headers.find("authorization");
    return it != r.headers.end() && it->second == "Bearer " + token;
  }

  // Sends `content` honouring Range, with the injected faults.
  void send_file(int c, const Request& r, std::string content, const std::vector<std::string>& extra) {
    if (corrupt_next_file > 0 && !content.empty()) {
      --corrupt_next_file;
      content[content.size() / 2] ^= 0x5a;
    }
    size_t start = 0;
    int status = 200;
    std::vector<std::string> headers = extra;
    headers.push_back("Accept-Ranges: bytes");
    auto range = r.headers.find("range");
    if (range != r.headers.end() && !ignore_range && range->second.rfind("bytes=", 0) == 0) {
      start = std::stoul(range->second.substr(6));
      if (start >= content.size()) {
        respond(c, 416, "Range Not Satisfiable", {"Content-Range: bytes */" + std::to_string(content.size())}, "", 0);
        return;
      }
      status = 206;
      headers.push_back("Content-Range: bytes " + std::to_string(start) + "-" + std::to_string(content.size() - 1) + "/" +
                        std::to_string(content.size()));
    }
    std::string body = content.substr(start);
    size_t length = body.size();
    long cut = cut_next_file_after.exchange(-1);
    if (cut >= 0 && size_t(cut) < body.size()) body.resize(size_t(cut));  // promise more than is sent
    respond(c, status, status == 206 ? "Partial Content" : "OK", headers, body, length);
  }

  void handle(int c) {
    std::string data;
    char buf[4096];
    while (data.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, size_t(n));
    }
    Request r;
    std::istringstream in(data.substr(0, data.find("\r\n\r\n")));
    std::string line;
    std::getline(in, line);
    std::istringstream first(line);
    first >> r.method >> r.target;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(r);
    }
    route(c, r);
  }

  void route(int c, const Request& r) {
    std::string target = r.target.substr(0, r.target.find('?'));
    std::lock_guard<std::mutex> lock(mu_);  // repos_ is read below; requests are served one at a time
    if (target.rfind("/cdn/", 0) == 0) {
      std::string sha = target.substr(5);
      for (auto& [id, repo] : repos_)
        for (auto& f : repo.files)
          if (f.lfs && sha256_hex(f.content) == sha) return send_file(c, r, f.content, {});
      return error(c, 404, "Not Found", "EntryNotFound", "no such object");
    }
    bool api = target.rfind("/api/models/", 0) == 0;
    std::string rest = api ? target.substr(12) : target.substr(1);
    std::string marker = api ? "/revision/" : "/resolve/";
    size_t at = rest.find(marker);
    if (at == std::string::npos) return error(c, 404, "Not Found", "RepoNotFound", "Repository not found");
    std::string id = url_decode(rest.substr(0, at));
    std::string tail = rest.substr(at + marker.size());
    auto it = repos_.find(id);
    if (it == repos_.end()) return error(c, 404, "Not Found", "RepoNotFound", "Repository not found");
    const Repo& repo = it->second;
    if (!authorised(repo, r)) return error(c, 401, "Unauthorized", "RepoNotFound", "Invalid username or password.");
    std::string revision = api ? url_decode(tail) : url_decode(tail.substr(0, tail.find('/')));
    std::string commit = revision == repo.commit ? repo.commit : "";
    for (const auto& [name, hash] : repo.refs)
      if (hash == revision) commit = hash;
    if (auto ref = repo.refs.find(revision); ref != repo.refs.end()) commit = ref->second;
    if (commit.empty()) return error(c, 404, "Not Found", "RevisionNotFound", "Invalid rev id: " + revision);
    if (api) {
      nlohmann::json siblings = nlohmann::json::array();
      for (const auto& f : repo.files) {
        nlohmann::json s{{"rfilename", f.path}, {"size", f.content.size()}, {"blobId", git_blob_id(f.content)}};
        if (f.lfs) s["lfs"] = {{"sha256", sha256_hex(f.content)}, {"size", f.content.size()}, {"pointerSize", 134}};
        siblings.push_back(s);
      }
      std::string body = nlohmann::json{{"id", id}, {"sha", commit}, {"siblings", siblings}}.dump();
      return respond(c, 200, "OK", {"Content-Type: application/json"}, body, body.size());
    }
    std::string path = url_decode(tail.substr(tail.find('/') + 1));
    for (const auto& f : repo.files) {
      if (f.path != path || std::find(repo.unserved.begin(), repo.unserved.end(), path) != repo.unserved.end()) continue;
      if (f.lfs)
        return respond(c, 302, "Found", {"Location: /cdn/" + sha256_hex(f.content), "X-Repo-Commit: " + commit}, "", 0);
      return send_file(c, r, f.content, {"X-Repo-Commit: " + commit, "ETag: \"" + git_blob_id(f.content) + "\""});
    }
    error(c, 404, "Not Found", "EntryNotFound", path + " does not exist on \"" + revision + "\"");
  }
};

}  // namespace wick::test
