// A thin, blocking HTTP(S) client over libcurl: what the Hub client needs and no more.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace wick::hub {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  bool follow_redirects = true;
  long connect_timeout_s = 15;
  long stall_timeout_s = 60;  // abort when no byte arrives for this long
  // Receives the body of a 2xx answer in pieces, with the answer's status; return false to abort.
  // Absent: the body is kept in HttpResponse::body. Bodies of other answers are always kept (up to
  // 64 KiB) for the error message.
  std::function<bool(int status, const char* data, size_t size)> on_body;
  // Called with (bytes of the body so far, Content-Length or 0).
  std::function<void(uint64_t now, uint64_t total)> on_progress;
};

struct HttpResponse {
  int status = 0;                             // 0: no answer (see error)
  std::map<std::string, std::string> headers; // of the final answer, names lower-case
  std::string body;
  std::string error;                          // transport failure (curl's words), empty if none
  bool transport_failed() const { return !error.empty(); }
  std::string header(const std::string& lower_name) const;
};

HttpResponse http_get(const HttpRequest& request);

// Percent-encodes a URL path segment ('/' too when `keep_slash` is false).
std::string url_encode(const std::string& s, bool keep_slash);

}  // namespace wick::hub
