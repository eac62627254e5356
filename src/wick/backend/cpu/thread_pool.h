// The one thread pool of the CPU backend: every CPU kernel that splits its work across cores does so
// through parallel_for, matrix products included (gemm.h: OpenBLAS itself runs on one thread), so
// no second set of threads competes for the cores the pool was given.
#pragma once

#include <algorithm>
#include <cstdint>

namespace wick::cpu {

// Threads the CPU kernels use (the calling thread included): WICK_NUM_THREADS when set, else the
// cores this process may run on. At least 1.
int num_threads();

// Sets the number of threads (>= 1) of the pool; `wick --threads N` calls it.
// Not to be called while a kernel runs.
void set_num_threads(int n);

namespace detail {
using RangeFn = void (*)(const void* ctx, int64_t begin, int64_t end);
void run_parallel(int64_t n, int64_t chunk, RangeFn fn, const void* ctx);
}  // namespace detail

// Calls f(begin, end) over consecutive ranges covering [0, n), each at least `grain` long (except
// the last), on up to num_threads() threads; the calling thread takes part and the call returns
// when every range is done. Work of fewer than 2 * grain items runs on the calling thread alone,
// so tiny tensors pay nothing. An exception thrown by f stops the ranges not yet started and is
// rethrown here (the first one). A parallel_for inside f runs serially on its thread.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int threads = num_threads();
  if (threads <= 1 || n < 2 * grain) {
    f(int64_t(0), n);
    return;
  }
  // A few ranges per thread evens out threads that start late or run slower.
  int64_t chunks = std::min<int64_t>(n / grain, int64_t(threads) * 4);
  int64_t chunk = (n + chunks - 1) / chunks;
  detail::run_parallel(
      n, chunk, [](const void* ctx, int64_t b, int64_t e) { (*static_cast<const F*>(ctx))(b, e); }, &f);
}

// Rows per range of the thread pool for kernels doing a few operations per value of a row of
// `width` values: about 4096 values of work per range.
inline int64_t row_grain(int64_t width) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(width, 1)); }

}  // namespace wick::cpu
