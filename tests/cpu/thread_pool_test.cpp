// The CPU thread pool: parallel_for covers every index exactly once whatever the size, grain and
// thread count; small work stays on the calling thread; nested calls run serially.
#include "wick/backend/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace wick {
namespace {

// Restores the thread count a test changed.
struct ThreadCount {
  int saved = cpu::num_threads();
  ~ThreadCount() { cpu::set_num_threads(saved); }
};

TEST(ThreadPool, EveryIndexRunsOnceForAnySizeGrainAndThreadCount) {
  ThreadCount restore;
  for (int threads : {1, 2, 3, 5}) {
    cpu::set_num_threads(threads);
    EXPECT_EQ(cpu::num_threads(), threads);
    for (int64_t n : {0, 1, 7, 64, 1001, 4099})
      for (int64_t grain : {1, 3, 100}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        cpu::parallel_for(n, grain, [&](int64_t b, int64_t e) {
          EXPECT_LT(b, e);
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1) << "threads " << threads << " n " << n << " grain " << grain << " i " << i;
      }
  }
}

TEST(ThreadPool, WorkBelowTwoGrainsStaysOnTheCallingThread) {
  ThreadCount restore;
  cpu::set_num_threads(4);
  std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  cpu::parallel_for(99, 50, [&](int64_t b, int64_t e) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 99);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

TEST(ThreadPool, LargeWorkUsesSeveralThreadsAndNestedCallsRunSerially) {
  ThreadCount restore;
  cpu::set_num_threads(3);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  std::atomic<int64_t> inner_total{0};
  for (int attempt = 0; attempt < 50 && ids.size() < 2; ++attempt)
    cpu::parallel_for(3000, 1, [&](int64_t b, int64_t e) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        ids.insert(std::this_thread::get_id());
      }
      std::thread::id me = std::this_thread::get_id();
      cpu::parallel_for(100, 1, [&](int64_t ib, int64_t ie) {
        EXPECT_EQ(std::this_thread::get_id(), me);
        inner_total += ie - ib;
      });
      volatile double sink = 0;
      for (int64_t i = b; i < e; ++i)
        for (int k = 0; k < 200; ++k) sink = sink + double(i * k);
    });
  EXPECT_GE(ids.size(), 2u);
  EXPECT_EQ(inner_total.load() % 100, 0);
}

TEST(ThreadPool, AnExceptionInARangeReachesTheCaller) {
  ThreadCount restore;
  cpu::set_num_threads(3);
  for (int attempt = 0; attempt < 3; ++attempt)
    EXPECT_THROW(cpu::parallel_for(1000, 1,
                                   [&](int64_t b, int64_t e) {
                                     if (b <= 500 && 500 < e) throw std::runtime_error("range with 500");
                                   }),
                 std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> total{0};
  cpu::parallel_for(1000, 1, [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total.load(), 1000);
}

TEST(ThreadPool, RejectsAThreadCountBelowOne) { EXPECT_THROW(cpu::set_num_threads(0), std::exception); }

}  // namespace
}  // namespace wick
