// Block-wide building blocks of the sampling kernel (backend/cuda/sampling.cu), one block of
// kSampleThreads threads per row of logits: where a row's tokens come from (the whole row, or a
// short list kept in shared memory), deterministic sums and scans, a bitonic sort, and the radix
// descent that finds a threshold key by counts or by probability mass.
#pragma once

#include <cstdint>

#include "wick/backend/cuda/kernel_utils.cuh"

namespace wick::cuda::sampling {

constexpr int kSampleThreads = 512;
constexpr int kWarps = kSampleThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Radix digits of 11 bits: 6 levels cover a 64-bit key, 3 a 32-bit one.
constexpr int kDigitBits = 11;
constexpr int kBins = 1 << kDigitBits;
constexpr int kBinsPerThread = kBins / kSampleThreads;
static_assert(kBins % kSampleThreads == 0, "each thread owns whole bins");

// A key whose unsigned order is the order of the doubles (-0 and +0 share one; no NaN arrives).
__device__ __forceinline__ uint64_t order_key(double u) {
  uint64_t bits = uint64_t(__double_as_longlong(u == 0.0 ? 0.0 : u));
  return (bits >> 63) ? ~bits : (bits | (uint64_t(1) << 63));
}

// ---------------------------------------------------------------- where tokens come from
// A source yields (position j, token id, penalised logit u) for positions 0..size()-1 in
// vocabulary order. for_each calls fn(j, valid, id, u) the same number of times on every thread
// (valid is false past the end), so warp-wide intrinsics inside fn see whole warps.

// The whole row: u is the logit, divided (positive) or multiplied (negative) by the penalty where
// the id was seen.
struct RowSource {
  const float* logits;
  int64_t n;
  const uint32_t* seen;  // a bit per id, or null when the row has no penalty
  double penalty;

  __device__ __forceinline__ double score(int64_t j, float x) const {
    double u = double(x);
    if (seen && ((seen[j >> 5] >> (j & 31)) & 1u)) u = u < 0 ? u * penalty : u / penalty;
    return u;
  }
  __device__ int64_t size() const { return n; }
  __device__ int32_t id(int64_t j) const { return int32_t(j); }
  __device__ double u(int64_t j) const { return score(j, logits[j]); }
  template <class Fn>
  __device__ void for_each(Fn&& fn) const {
    // Four loads in flight per thread before any is used.
    for (int64_t base = 0; base < n; base += 4 * kSampleThreads) {
      float x[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        int64_t j = base + k * kSampleThreads + threadIdx.x;
        x[k] = j < n ? logits[j] : 0.0f;
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        int64_t j = base + k * kSampleThreads + threadIdx.x;
        bool valid = j < n;
        fn(j, valid, int32_t(valid ? j : 0), valid ? score(j, x[k]) : -double(INFINITY));
      }
    }
  }
};

// Tokens kept in shared memory, sorted by id.
struct ListSource {
  const int32_t* ids;
  const double* us;
  int64_t n;

  __device__ int64_t size() const { return n; }
  __device__ int32_t id(int64_t j) const { return ids[j]; }
  __device__ double u(int64_t j) const { return us[j]; }
  template <class Fn>
  __device__ void for_each(Fn&& fn) const {
    for (int64_t base = 0; base < n; base += kSampleThreads) {
      int64_t j = base + threadIdx.x;
      bool valid = j < n;
      fn(j, valid, valid ? ids[j] : 0, valid ? us[j] : -double(INFINITY));
    }
  }
};

// ---------------------------------------------------------------- sums, scans, sort
template <typename T>
__device__ __forceinline__ T warp_inclusive_scan(T v) {
  int lane = threadIdx.x & 31;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    T other = __shfl_up_sync(kFullMask, v, o);
    if (lane >= o) v += other;
  }
  return v;
}

// The sum of v over threads before this one (in thread order), and the block's total. The order
// of additions is fixed, so doubles come out the same on every run. `scratch` holds kWarps values.
template <typename T>
__device__ T block_exclusive_scan(T v, T* scratch, T* total) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  T inclusive = warp_inclusive_scan(v);
  T exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
  if (lane == 0) exclusive = T(0);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  T before = T(0), all = T(0);
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) before = all;
    all += scratch[w];
  }
  *total = all;
  return before + exclusive;
}

template <typename T>
struct Plus {
  __device__ T operator()(T a, T b) const { return a + b; }
};
template <typename T>
struct Max {
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
template <typename T>
struct Min {
  __device__ T operator()(T a, T b) const { return a < b ? a : b; }
};

// The sum over the source of f(id, u) (0 where it does not apply), added in a fixed order.
template <class Src, class F>
__device__ double block_sum(const Src& src, F f, double* scratch) {
  double acc = 0;
  src.for_each([&](int64_t, bool valid, int32_t id, double u) {
    if (valid) acc += f(id, u);
  });
  return block_combine(acc, Plus<double>{}, scratch);
}

// Sorts the first n entries of (ids, us) by id; cap (a power of two >= n) bounds the arrays.
__device__ inline void sort_by_id(int32_t* ids, double* us, int n) {
  int padded = 1;
  while (padded < n) padded <<= 1;
  for (int i = n + threadIdx.x; i < padded; i += kSampleThreads) {
    ids[i] = 0x7fffffff;
    us[i] = -double(INFINITY);
  }
  __syncthreads();
  for (int k = 2; k <= padded; k <<= 1) {
    for (int stride = k >> 1; stride > 0; stride >>= 1) {
      for (int i = threadIdx.x; i < padded; i += kSampleThreads) {
        int partner = i ^ stride;
        if (partner <= i) continue;
        bool ascending = (i & k) == 0;
        int32_t a = ids[i], b = ids[partner];
        if ((a > b) == ascending) {
          ids[i] = b;
          ids[partner] = a;
          double t = us[i];
          us[i] = us[partner];
          us[partner] = t;
        }
      }
      __syncthreads();
    }
  }
}

// ---------------------------------------------------------------- radix descent
// Histograms in shared memory: a count and a fixed-point mass per digit.
struct Histogram {
  uint32_t* count;
  unsigned long long* mass;
};

// Adds one element per participating lane: lanes with the same digit are added together first, so
// a digit that most tokens share (the exponent of most logits) costs one atomic per warp. Every
// lane of the warp calls it.
__device__ __forceinline__ void histogram_add(const Histogram& h, bool part, uint32_t digit, uint64_t weight,
                                              bool weighted) {
  unsigned participants = __ballot_sync(kFullMask, part);
  if (!part) return;
  unsigned peers = __match_any_sync(participants, digit);
  uint64_t group_weight = 0;
  if (weighted) {
    // Three 27-bit slices, so that no 32-bit partial sum of 32 lanes overflows.
    unsigned lo = __reduce_add_sync(peers, unsigned(weight & 0x7ffffffu));
    unsigned mid = __reduce_add_sync(peers, unsigned((weight >> 27) & 0x7ffffffu));
    unsigned hi = __reduce_add_sync(peers, unsigned(weight >> 54));
    group_weight = uint64_t(lo) + (uint64_t(mid) << 27) + (uint64_t(hi) << 54);
  }
  if (int(threadIdx.x & 31) == __ffs(peers) - 1) {
    atomicAdd(&h.count[digit], unsigned(__popc(peers)));
    if (weighted) atomicAdd(&h.mass[digit], (unsigned long long)group_weight);
  }
}

// What a descent found: the largest key `key` whose elements at or above it satisfy the rule.
struct Descent {
  bool found;
  bool complete;  // every bit of key decided (else it stopped early: key is a bucket's lowest key)
  uint64_t key;
  uint64_t count_above, mass_above;  // elements with keys above key's bucket
  uint64_t count_at, mass_at;        // elements in key's bucket (complete: equal to key)
  uint64_t total_mass;               // of every participating element
};

// Shared state of a descent, written by the one thread that finds the bucket.
struct DescentShared {
  int found;
  uint32_t digit;
  unsigned long long count_above, mass_above, count_at, mass_at;
  unsigned long long scan_scratch[2][kWarps];
};

// Finds, digit by digit from the top, the largest key t such that rule.ok(count, mass, t, total)
// holds for the elements with keys >= t (count and mass of those; `total` the mass of all). ok
// must be monotone: true for t below the answer, false above. elem(id, u, &key) says whether an
// element takes part and gives its key (key_bits wide); weight(id, u) its fixed-point mass, asked
// only of participants when `weighted`. rule.stop(count, in_bucket) ends the descent early at the
// chosen bucket (count: its elements and those above; in_bucket: its own), returning the bucket's
// lowest key, when every key in it would give the same set of elements at or above the answer.
template <class Src, class Elem, class Weight, class Rule>
__device__ Descent radix_descent(const Src& src, int key_bits, Elem elem, Weight weight, bool weighted, Rule rule,
                                 const Histogram& h, DescentShared& sh) {
  Descent d{};
  uint64_t prefix = 0, mask = 0, count_above = 0, mass_above = 0;
  for (int high = key_bits; high > 0;) {
    int shift = high > kDigitBits ? high - kDigitBits : 0;
    uint32_t bins = 1u << (high - shift);
    __syncthreads();  // the previous level's readers are done with h and sh
    for (int b = threadIdx.x; b < kBins; b += kSampleThreads) {
      h.count[b] = 0;
      h.mass[b] = 0;
    }
    if (threadIdx.x == 0) sh.found = 0;
    __syncthreads();
    src.for_each([&](int64_t, bool valid, int32_t id, double u) {
      uint64_t key = 0;
      bool part = valid && elem(id, u, &key) && (key & mask) == prefix;
      uint32_t digit = part ? uint32_t((key >> shift) & (bins - 1)) : 0u;
      uint64_t w = part && weighted ? weight(id, u) : 0;
      histogram_add(h, part, digit, w, weighted);
    });
    __syncthreads();
    // Each thread owns kBinsPerThread consecutive bins; the elements in higher bins come from the
    // scan of per-thread totals.
    int first = threadIdx.x * kBinsPerThread;
    uint64_t own_count = 0, own_mass = 0;
    for (int k = 0; k < kBinsPerThread; ++k) {
      own_count += h.count[first + k];
      own_mass += h.mass[first + k];
    }
    unsigned long long total_count, total_mass;
    unsigned long long before_count =
        block_exclusive_scan((unsigned long long)own_count, sh.scan_scratch[0], &total_count);
    unsigned long long before_mass =
        block_exclusive_scan((unsigned long long)own_mass, sh.scan_scratch[1], &total_mass);
    if (high == key_bits) d.total_mass = total_mass;
    uint64_t suffix_count = count_above + (total_count - before_count - own_count);
    uint64_t suffix_mass = mass_above + (total_mass - before_mass - own_mass);
    bool ok_above = false;  // ok for the bins above this thread's (false above the top bin)
    if (uint32_t(first + kBinsPerThread) < bins)
      ok_above = rule.ok(suffix_count, suffix_mass, prefix | (uint64_t(first + kBinsPerThread) << shift), d.total_mass);
    for (int b = first + kBinsPerThread - 1; b >= first; --b) {
      if (uint32_t(b) >= bins) continue;
      uint64_t c = h.count[b], m = h.mass[b];
      bool ok = rule.ok(suffix_count + c, suffix_mass + m, prefix | (uint64_t(b) << shift), d.total_mass);
      if (ok && !ok_above) {
        sh.found = 1;
        sh.digit = uint32_t(b);
        sh.count_above = suffix_count;
        sh.mass_above = suffix_mass;
        sh.count_at = c;
        sh.mass_at = m;
      }
      suffix_count += c;
      suffix_mass += m;
      ok_above = ok;
    }
    __syncthreads();
    if (!sh.found) return d;  // only at the first level: no key satisfies the rule
    d.found = true;
    prefix |= uint64_t(sh.digit) << shift;
    mask |= uint64_t(bins - 1) << shift;
    count_above = sh.count_above;
    mass_above = sh.mass_above;
    d.key = prefix;
    d.count_above = count_above;
    d.mass_above = mass_above;
    d.count_at = sh.count_at;
    d.mass_at = sh.mass_at;
    d.complete = shift == 0;
    if (!d.complete && rule.stop(count_above + d.count_at, d.count_at)) return d;
    high = shift;
  }
  return d;
}

}  // namespace wick::cuda::sampling
