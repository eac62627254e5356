// How the processes of a data-parallel run find one another: the torchrun-style environment and
// its flags, and rank 0 handing its blob to the other ranks over TCP on this host, with errors
// (not hangs) for a missing rank 0, a missing rank and a rank started with another world size.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "wick/base/error.h"
#include "wick/train/rendezvous.h"

using namespace wick;
using namespace std::chrono_literals;

namespace {

auto env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A port nothing listens on right now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(Rendezvous, EnvironmentAndFlags) {
  train::Rendezvous d = train::rendezvous_from(env_of({}), {});
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_EQ(d.master_port, 29500);
  train::Rendezvous r = train::rendezvous_from(
      env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"}}), {});
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.world_size, 4);
  EXPECT_EQ(r.local_rank, 1);
  EXPECT_EQ(r.master_addr, "node7");
  EXPECT_EQ(r.master_port, 1234);
  train::RendezvousFlags flags;
  flags.rank = 0;
  flags.master_addr = "10.0.0.1";
  train::Rendezvous f = train::rendezvous_from(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}}), flags);
  EXPECT_EQ(f.rank, 0);
  EXPECT_EQ(f.master_addr, "10.0.0.1");
  EXPECT_NE(error_of([] { train::rendezvous_from(env_of({{"RANK", "1x"}, {"WORLD_SIZE", "2"}}), {}); })
                .find("RANK must be a whole number"), std::string::npos);
  EXPECT_NE(error_of([] { train::rendezvous_from(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), {}); })
                .find("rank 2 is out of range for world size 2"), std::string::npos);
  EXPECT_NE(error_of([] { train::rendezvous_from(env_of({{"MASTER_PORT", "70000"}}), {}); }).find("MASTER_PORT"),
            std::string::npos);
  train::RendezvousFlags bad;
  bad.world_size = 0;
  EXPECT_NE(error_of([&] { train::rendezvous_from(env_of({}), bad); }).find("--world-size"), std::string::npos);
}

TEST(Rendezvous, RankZeroHandsItsBlobToEveryRank) {
  const int port = free_port();
  std::string got[3], errors[3];
  std::vector<std::thread> ranks;
  for (int r = 0; r < 3; ++r)
    ranks.emplace_back([&, r] {
      train::Rendezvous rv;
      rv.rank = r;
      rv.world_size = 3;
      rv.master_port = port;
      try {
        got[r] = train::share_from_rank0(rv, r == 0 ? std::string("unique-id\0with-nul", 18) : "", 20s);
      } catch (const Error& e) {
        errors[r] = e.what();
      }
    });
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(got[r], std::string("unique-id\0with-nul", 18)) << "rank " << r;
  }
}

TEST(Rendezvous, MissingRanksEndInErrors) {
  train::Rendezvous joiner;
  joiner.rank = 1;
  joiner.world_size = 2;
  joiner.master_port = free_port();
  EXPECT_NE(error_of([&] { train::share_from_rank0(joiner, "", 300ms); }).find("could not reach rank 0"),
            std::string::npos);
  train::Rendezvous lead;
  lead.world_size = 3;
  lead.master_port = free_port();
  std::string lead_error;
  std::thread t([&] { lead_error = error_of([&] { train::share_from_rank0(lead, "id", 1500ms); }); });
  train::Rendezvous one = lead;
  one.rank = 1;
  EXPECT_EQ(train::share_from_rank0(one, "", 1500ms), "id");
  t.join();
  EXPECT_NE(lead_error.find("waited for 1 of 2 ranks"), std::string::npos) << lead_error;
}

TEST(Rendezvous, AnotherWorldSizeIsRefused) {
  train::Rendezvous lead;
  lead.world_size = 2;
  lead.master_port = free_port();
  std::string lead_error;
  std::thread t([&] { lead_error = error_of([&] { train::share_from_rank0(lead, "id", 5s); }); });
  train::Rendezvous other = lead;
  other.rank = 1;
  other.world_size = 3;
  std::string other_error = error_of([&] { train::share_from_rank0(other, "", 5s); });
  t.join();
  EXPECT_NE(lead_error.find("rank 1 was started with world size 3, rank 0 with 2"), std::string::npos) << lead_error;
  EXPECT_NE(other_error.find("runs another world size"), std::string::npos) << other_error;
}

}  // namespace
