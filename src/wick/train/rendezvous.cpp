#include "wick/train/rendezvous.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "wick/base/error.h"

namespace wick::train {

namespace {

using Clock = std::chrono::steady_clock;

int parse_int(const std::string& text, const std::string& what, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  WICK_CHECK(!text.empty() && end && *end == '\0' && errno == 0 && v >= lo && v <= hi, what, " must be a whole number from ",
             lo, " to ", hi, ", got '", text, "'");
  return int(v);
}

// A socket closed when it goes out of scope.
struct Socket {
  int fd = -1;
  explicit Socket(int f) : fd(f) {}
  Socket(const Socket&) = delete;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? int(left) : 0;
}

// Waits until `fd` is ready for `events`; false at the deadline.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms_left(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    WICK_CHECK(errno == EINTR, "rendezvous: poll failed: ", std::strerror(errno));
  }
}

void send_all(int fd, const void* data, size_t n, Clock::time_point deadline, const std::string& peer) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    WICK_CHECK(wait_for(fd, POLLOUT, deadline), "rendezvous: timed out sending to ", peer);
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    WICK_CHECK(k > 0, "rendezvous: sending to ", peer, " failed: ", std::strerror(errno));
    p += k;
    n -= size_t(k);
  }
}

void recv_all(int fd, void* data, size_t n, Clock::time_point deadline, const std::string& peer) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    WICK_CHECK(wait_for(fd, POLLIN, deadline), "rendezvous: timed out waiting for ", peer);
    ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    WICK_CHECK(k != 0, "rendezvous: ", peer, " closed the connection");
    WICK_CHECK(k > 0, "rendezvous: reading from ", peer, " failed: ", std::strerror(errno));
    p += k;
    n -= size_t(k);
  }
}

// Hello of a rank: its rank and world size; the answer: a status word, then the blob's length and bytes.
constexpr uint32_t kAccepted = 0, kWrongWorld = 1, kDuplicate = 2;

std::string serve(const Rendezvous& r, const std::string& blob, Clock::time_point deadline) {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  const bool v6 = fd >= 0;
  if (!v6) fd = ::socket(AF_INET, SOCK_STREAM, 0);
  Socket listener(fd);
  WICK_CHECK(listener.fd >= 0, "rendezvous: cannot open a socket: ", std::strerror(errno));
  int one = 1, zero = 0;
  ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (v6) {
    ::setsockopt(listener.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));  // IPv4 peers too
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(uint16_t(r.master_port));
    rc = ::bind(listener.fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(uint16_t(r.master_port));
    rc = ::bind(listener.fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  WICK_CHECK(rc == 0, "rendezvous: rank 0 cannot listen on port ", r.master_port, ": ", std::strerror(errno));
  WICK_CHECK(::listen(listener.fd, 128) == 0, "rendezvous: listen failed: ", std::strerror(errno));
  std::vector<bool> seen(size_t(r.world_size), false);
  seen[0] = true;
  for (int joined = 1; joined < r.world_size;) {
    int missing = 0;
    for (bool s : seen) missing += s ? 0 : 1;
    WICK_CHECK(wait_for(listener.fd, POLLIN, deadline), "rendezvous: rank 0 waited for ", missing, " of ",
               r.world_size - 1, " ranks, which did not connect to port ", r.master_port, " in time");
    Socket peer(::accept(listener.fd, nullptr, nullptr));
    if (peer.fd < 0) continue;
    int32_t hello[2];
    try {
      recv_all(peer.fd, hello, sizeof(hello), deadline, "a connecting rank");
    } catch (const Error&) {
      continue;  // not a rank of this run (a port scan, a dropped connection)
    }
    uint32_t status = kAccepted;
    if (hello[1] != r.world_size) status = kWrongWorld;
    else if (hello[0] <= 0 || hello[0] >= r.world_size || seen[size_t(hello[0])]) status = kDuplicate;
    uint32_t head[2] = {status, uint32_t(blob.size())};
    send_all(peer.fd, head, sizeof(head), deadline, str_cat("rank ", hello[0]));
    WICK_CHECK(status != kWrongWorld, "rendezvous: rank ", hello[0], " was started with world size ", hello[1],
               ", rank 0 with ", r.world_size);
    WICK_CHECK(status != kDuplicate, "rendezvous: rank ", hello[0], " joined twice or is out of range (world size ",
               r.world_size, ")");
    send_all(peer.fd, blob.data(), blob.size(), deadline, str_cat("rank ", hello[0]));
    seen[size_t(hello[0])] = true;
    ++joined;
  }
  return blob;
}

std::string join(const Rendezvous& r, Clock::time_point deadline) {
  const std::string where = str_cat(r.master_addr, ":", r.master_port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int gai = ::getaddrinfo(r.master_addr.c_str(), std::to_string(r.master_port).c_str(), &hints, &found);
  WICK_CHECK(gai == 0, "rendezvous: cannot resolve MASTER_ADDR '", r.master_addr, "': ", ::gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> hold(found, ::freeaddrinfo);
  for (;;) {
    for (addrinfo* a = found; a; a = a->ai_next) {
      Socket s(::socket(a->ai_family, a->ai_socktype, a->ai_protocol));
      if (s.fd < 0) continue;
      timeval limit{ms_left(deadline) / 1000, (ms_left(deadline) % 1000) * 1000};  // bounds the connect
      ::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
      if (::connect(s.fd, a->ai_addr, a->ai_addrlen) != 0) continue;
      const std::string peer = str_cat("rank 0 at ", where);
      int32_t hello[2] = {r.rank, r.world_size};
      send_all(s.fd, hello, sizeof(hello), deadline, peer);
      uint32_t head[2];
      recv_all(s.fd, head, sizeof(head), deadline, peer);
      WICK_CHECK(head[0] != kWrongWorld, "rendezvous: rank 0 at ", where, " runs another world size than ", r.world_size);
      WICK_CHECK(head[0] != kDuplicate, "rendezvous: rank 0 at ", where, " already has a rank ", r.rank);
      WICK_CHECK(head[0] == kAccepted && head[1] <= (1u << 20), "rendezvous: ", peer, " sent a malformed answer");
      std::string blob(head[1], '\0');
      recv_all(s.fd, blob.data(), blob.size(), deadline, peer);
      return blob;
    }
    WICK_CHECK(ms_left(deadline) > 0, "rendezvous: rank ", r.rank, " could not reach rank 0 at ", where,
               " in time (is MASTER_ADDR/MASTER_PORT right, and rank 0 started?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100, ms_left(deadline))));
  }
}

}  // namespace

Rendezvous rendezvous_from(const std::function<const char*(const char*)>& env, const RendezvousFlags& flags) {
  Rendezvous r;
  auto read = [&](const char* var, const std::optional<int>& flag, const char* flag_name, long lo, long hi, int& out) {
    if (flag) {
      WICK_CHECK(*flag >= lo && *flag <= hi, flag_name, " must be from ", lo, " to ", hi, ", got ", *flag);
      out = *flag;
    } else if (const char* v = env(var)) {
      out = parse_int(v, str_cat("the environment variable ", var), lo, hi);
    }
  };
  read("WORLD_SIZE", flags.world_size, "--world-size", 1, 1 << 16, r.world_size);
  read("RANK", flags.rank, "--process-rank", 0, 1 << 16, r.rank);
  read("LOCAL_RANK", flags.local_rank, "--local-rank", 0, 1 << 16, r.local_rank);
  read("MASTER_PORT", flags.master_port, "--master-port", 1, 65535, r.master_port);
  if (flags.master_addr) r.master_addr = *flags.master_addr;
  else if (const char* v = env("MASTER_ADDR")) r.master_addr = v;
  WICK_CHECK(!r.master_addr.empty(), "the address of rank 0 (MASTER_ADDR, --master-addr) is empty");
  WICK_CHECK(r.rank < r.world_size, "rank ", r.rank, " is out of range for world size ", r.world_size,
             " (RANK, --process-rank; WORLD_SIZE, --world-size)");
  return r;
}

std::string share_from_rank0(const Rendezvous& r, const std::string& blob, std::chrono::milliseconds timeout) {
  WICK_CHECK(r.world_size >= 1 && r.rank >= 0 && r.rank < r.world_size, "rendezvous: rank ", r.rank, " of ", r.world_size);
  if (r.world_size == 1) return blob;
  const Clock::time_point deadline = Clock::now() + timeout;
  return r.rank == 0 ? serve(r, blob, deadline) : join(r, deadline);
}

}  // namespace wick::train
