// The CPU thread pool (see thread_pool.h). Workers spin briefly after each job, since the kernels
// of a decode step follow each other within microseconds, then sleep on the job counter (a futex)
// so an idle process burns no core.
#include "wick/backend/cpu/thread_pool.h"

#include <cblas.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "wick/base/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WICK_CPU_RELAX() _mm_pause()
#else
#define WICK_CPU_RELAX() std::this_thread::yield()
#endif

namespace wick::cpu {

namespace {

int cores_available() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? int(n) : 1;
}

int initial_threads() {
  if (const char* env = std::getenv("WICK_NUM_THREADS"); env && *env) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    WICK_CHECK(end && *end == '\0' && n >= 1 && n <= 4096, "WICK_NUM_THREADS must be a whole number from 1 to 4096, got '",
               env, "'");
    return int(n);
  }
  return cores_available();
}

constexpr auto kSpin = std::chrono::microseconds(200);

// Workers join a job only while it is open: the caller closes it once every range is taken, then
// waits for the workers that joined, never for one that has not woken yet (on a busy machine a
// sleeping or descheduled worker would otherwise hold up every kernel).
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work_loop(); });
  }
  ~Pool() {
    stop_.store(true);
    post();
    for (std::thread& t : workers_) t.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  void run(int64_t n, int64_t chunk, detail::RangeFn fn, const void* ctx) {
    n_ = n;
    chunk_ = chunk;
    fn_ = fn;
    ctx_ = ctx;
    next_.store(0, std::memory_order_relaxed);
    uint32_t job = ++jobs_;
    state_.store(uint64_t(job) << 32, std::memory_order_release);
    post();
    take_ranges();
    state_.fetch_or(kClosed, std::memory_order_acq_rel);
    for (int spins = 0; (state_.load(std::memory_order_acquire) & kJoined) != 0; ++spins) {
      if (spins < 4096) WICK_CPU_RELAX();
      else std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  // state_: the job's number (high 32 bits), whether it is closed, how many workers joined it.
  static constexpr uint64_t kClosed = uint64_t(1) << 31, kJoined = kClosed - 1;

  // Publishes jobs_ (or stop_) to the workers, waking those asleep.
  void post() {
    posted_.store(jobs_ + (stop_.load() ? 1u : 0u));
    if (sleepers_.load() > 0) posted_.notify_all();
  }

  // Takes ranges until none is left; the first exception stops the job and is rethrown by run().
  void take_ranges() {
    try {
      for (;;) {
        int64_t b = next_.fetch_add(chunk_, std::memory_order_relaxed);
        if (b >= n_) return;
        fn_(ctx_, b, std::min(n_, b + chunk_));
      }
    } catch (...) {
      next_.store(n_, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  // Joins the open job `job`; false when it is closed or already over.
  bool join(uint32_t job) {
    uint64_t s = state_.load(std::memory_order_acquire);
    do {
      if ((s >> 32) != job || (s & kClosed)) return false;
    } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel));
    return true;
  }

  void work_loop() {
    uint32_t seen = 0;
    for (;;) {
      auto start = std::chrono::steady_clock::now();
      uint32_t posted;
      for (int spins = 1; (posted = posted_.load(std::memory_order_acquire)) == seen; ++spins) {
        WICK_CPU_RELAX();
        if (spins % 64 == 0 && std::chrono::steady_clock::now() - start > kSpin) {
          sleepers_.fetch_add(1);
          posted_.wait(seen);
          sleepers_.fetch_sub(1);
          start = std::chrono::steady_clock::now();
        }
      }
      seen = posted;
      if (stop_.load()) return;
      if (!join(posted)) continue;
      take_ranges();
      state_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  uint32_t jobs_ = 0;                 // jobs posted (written by the calling thread only)
  std::atomic<uint32_t> posted_{0};   // what workers wait on
  std::atomic<uint64_t> state_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_{0};
  int64_t n_ = 0, chunk_ = 1;
  detail::RangeFn fn_ = nullptr;
  const void* ctx_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// The thread count is read by every parallel_for; the pool is made on first use and remade when
// the count changes. One job at a time: a second thread calling in meanwhile runs serially.
struct State {
  std::atomic<int> threads;
  std::mutex mutex;
  std::unique_ptr<Pool> pool;
  // OpenBLAS runs on the calling thread only: gemm.cpp splits large products across this pool.
  State() : threads(initial_threads()) { openblas_set_num_threads(1); }
};

State& state() {
  static State s;
  return s;
}

thread_local bool in_parallel = false;

}  // namespace

int num_threads() { return state().threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  WICK_CHECK(n >= 1 && n <= 4096, "the number of threads must be from 1 to 4096, got ", n);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.threads.store(n);
  s.pool.reset();
}

namespace detail {

void run_parallel(int64_t n, int64_t chunk, RangeFn fn, const void* ctx) {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex, std::try_to_lock);
  if (in_parallel || !lock.owns_lock()) {
    fn(ctx, 0, n);
    return;
  }
  int threads = s.threads.load();
  if (!s.pool || s.pool->size() != threads) {
    s.pool.reset();
    s.pool = std::make_unique<Pool>(threads);
  }
  in_parallel = true;
  try {
    s.pool->run(n, chunk, fn, ctx);
  } catch (...) {
    in_parallel = false;
    throw;
  }
  in_parallel = false;
}

}  // namespace detail

}  // namespace wick::cpu
