// CUDA evaluation of sample_tokens: one block per row, no host synchronisation, no memory beyond
// the block's shared memory (so a graph can capture it). Per row:
//  1. the history becomes a bitmap of seen ids (the penalty applies once per distinct id);
//  2. one pass finds the largest penalised logit (greedy rows finish here: its id and the
//     log-probability from a float sum of exp, good to ~1e-6);
//  3. sampled rows look for a short list of candidates: a radix descent over the keys of the
//     penalised logits (counts, and approximate probability mass for top-p) finds the lowest key
//     above which every token the filters can keep lies, with at most list_cap tokens; they are
//     copied to shared memory and sorted by id. Without filters, or when too many tokens can
//     survive (a flat distribution), the whole row is the source instead;
//  4. on the source, in float64: top-k (a radix select of the k-th largest key, ties kept), top-p
//     (a radix descent on fixed-point probability mass; ties at the boundary resolved by a select
//     of the ids, larger first), min-p, then the draw: the first id in vocabulary order whose
//     cumulative probability exceeds u, from per-warp and per-thread partial sums in a fixed order.
// Sums are in a fixed order and histograms count integers, so a row's result does not change
// between runs. Ordering by the penalised logit (before the temperature) equals ordering by the
// tempered score except for ties the division creates.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <mutex>

#include "wick/backend/cuda/sampling_block.cuh"
#include "wick/core/ops/sampling.h"

namespace wick {

namespace {

using namespace cuda::sampling;

constexpr int kMaxList = 8192;  // candidates a row may keep in shared memory
constexpr int kMinList = 1024;
constexpr double kFixedOne = 0x1p62;  // fixed-point scale of probability masses that sum to 1

// What went wrong in a row, reported through the device error flag as value = row * 16 + what.
enum BadValue : int {
  kBadParam = 0,  // 0..4: the params column
  kBadUniform = 5,
  kBadLogit = 6,       // limit: column << 32 | the float's bits
  kNoFiniteScore = 7,  //
  kBadHistoryId = 8,   // limit: vocab << 32 | the id's bits
  kScoreOverflow = 9,  //
};

struct Args {
  const float* logits;
  const double* params;
  const int32_t* history;
  const double* uniforms;
  double* out;
  int64_t vocab, history_len;
  int list_cap, seen_words;
  double superset_mass_scale;  // fixed-point scale of the approximate masses of the whole row
  cuda::DeviceError* err;
};

// Largest penalised logit (first index on ties), the sum of exp(u - max) for greedy rows, and the
// first column whose score is NaN or +inf.
struct Extremes {
  double max, sum;
  int64_t arg, bad;
};
__device__ __forceinline__ Extremes shfl_xor_any(Extremes v, int o) {
  return {__shfl_xor_sync(kFullMask, v.max, o), __shfl_xor_sync(kFullMask, v.sum, o),
          (int64_t)__shfl_xor_sync(kFullMask, (long long)v.arg, o),
          (int64_t)__shfl_xor_sync(kFullMask, (long long)v.bad, o)};
}
struct MergeExtremes {
  __device__ Extremes operator()(Extremes a, Extremes b) const {
    if (b.max > a.max || (b.max == a.max && b.arg < a.arg)) {
      Extremes t = a;
      a = b;
      b = t;
    }
    Extremes r{a.max, a.sum, a.arg, a.bad < b.bad ? a.bad : b.bad};
    if (b.max != -double(INFINITY)) r.sum += b.max == a.max ? b.sum : b.sum * ::exp(b.max - a.max);
    return r;
  }
};

// The k-th largest key. A bucket whose tokens with those above number exactly k holds it as its
// smallest: keys >= the bucket's lowest are then the same set, and the descent may stop there.
struct CountRule {
  double k;
  __device__ bool ok(uint64_t count, uint64_t, uint64_t, uint64_t) const { return double(count) >= k; }
  __device__ bool stop(uint64_t count, uint64_t) const { return double(count) == k; }
};
// The key of the token whose mass, with that of the tokens above it, first reaches target; a
// bucket holding that token alone decides it.
struct MassRule {
  uint64_t target;
  __device__ bool ok(uint64_t, uint64_t mass, uint64_t, uint64_t) const { return mass >= target; }
  __device__ bool stop(uint64_t, uint64_t in_bucket) const { return in_bucket == 1; }
};
// The lowest bucket above which a filter's kept set surely lies, stopping once few enough tokens
// are above it. Each bound alone contains the final set (the filters only remove tokens).
struct SupersetRule {
  bool by_count, by_mass, by_min_p;
  double k, mass_fraction;
  uint64_t min_p_key, cap;
  __device__ bool ok(uint64_t count, uint64_t mass, uint64_t low, uint64_t total) const {
    return (by_count && double(count) >= k) || (by_mass && double(mass) >= mass_fraction * double(total)) ||
           (by_min_p && low <= min_p_key);
  }
  __device__ bool stop(uint64_t count, uint64_t) const { return count <= cap; }
};

struct NoWeight {
  __device__ uint64_t operator()(int32_t, double) const { return 0; }
};
struct AnyKey {
  __device__ bool operator()(int32_t, double u, uint64_t* key) const {
    *key = order_key(u);
    return true;
  }
};

// The row's scores after the temperature and their unnormalised probabilities.
struct Tempered {
  double temperature, inverse, umax, smax;
  bool divide;
  // exp(s - max s) with s = u / temperature, the host's steps.
  __device__ double weight(double u) const { return ::exp((divide ? u / temperature : u) - smax); }
  // The same in float, for bounds: relative error below |d| 2^-22 + 2^-20 (see rest_error).
  __device__ float approx_weight(double u) const { return ::expf(float((u - umax) * inverse)); }
};

struct DrawShared {
  double seg_sum[kWarps];
  int64_t seg_last[kWarps];
  double scan[kWarps];
  int seg;
  double carry, target, z;
  int64_t last;
  unsigned long long found;
};

struct RowShared {
  DescentShared descent;
  DrawShared draw;
  double sums[32];
  Extremes extremes[32];
  int list_n;
  int bad_history;
};

__device__ void report(const Args& a, int64_t row, int what, long long limit) {
  if (threadIdx.x != 0) return;
  cuda::raise_error(a.err, cuda::kErrSampleTokens, (long long)(row * 16 + what), limit);
  a.out[2 * row] = -1.0;
  a.out[2 * row + 1] = __longlong_as_double(0x7ff8000000000000LL);
}

__device__ __forceinline__ bool finite(double x) { return x == x && x != double(INFINITY) && x != -double(INFINITY); }

// The first invalid params column (see sampling_params_error), or -1.
__device__ int bad_param(const double* p) {
  double t = p[kSampleTemperature], k = p[kSampleTopK], top_p = p[kSampleTopP], min_p = p[kSampleMinP];
  if (!(t >= 0 && finite(t))) return kSampleTemperature;
  if (!(k >= 0 && finite(k) && k == ::floor(k))) return kSampleTopK;
  if (!(top_p > 0 && top_p <= 1)) return kSampleTopP;
  if (!(min_p >= 0 && min_p <= 1)) return kSampleMinP;
  if (!(p[kSampleRepetitionPenalty] > 0)) return kSampleRepetitionPenalty;
  return -1;
}

// The first id (vocabulary order) whose cumulative weight exceeds u times the total: per-warp sums
// over contiguous segments pick a segment, per-thread sums over its chunks a chunk, then one thread
// walks it. Returns the position in the source, its weight and the total.
template <class Src, class W>
__device__ void draw(const Src& src, W weight, double u, DrawShared& sh, int64_t* pos, double* w, double* total) {
  int64_t n = src.size(), seg = (n + kWarps - 1) / kWarps;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t a = std::min(n, warp * seg), b = std::min(n, a + seg);
  double acc = 0;
  int64_t last = -1;
  for (int64_t j = a + lane; j < b; j += 32) {
    double e = weight(src.id(j), src.u(j));
    acc += e;
    if (e > 0) last = j;
  }
  acc = cuda::warp_sum(acc);
  for (int o = 16; o > 0; o >>= 1) last = std::max(last, (int64_t)__shfl_xor_sync(kFullMask, (long long)last, o));
  __syncthreads();  // sh may still be read by a previous draw
  if (lane == 0) {
    sh.seg_sum[warp] = acc;
    sh.seg_last[warp] = last;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double z = 0;
    for (int s = 0; s < kWarps; ++s) z += sh.seg_sum[s];
    double target = u * z, carry = 0;
    int pick = -1;
    int64_t last_any = -1;
    for (int s = 0; s < kWarps; ++s) {
      if (pick < 0 && sh.seg_sum[s] > 0 && carry + sh.seg_sum[s] > target) pick = s;
      if (pick < 0) carry += sh.seg_sum[s];
      last_any = std::max(last_any, sh.seg_last[s]);
    }
    sh.seg = pick;
    sh.carry = carry;
    sh.target = target;
    sh.z = z;
    sh.last = last_any;
    sh.found = ULLONG_MAX;
  }
  __syncthreads();
  int64_t chosen = sh.last;  // u at or above the total (rounding): the last token of weight > 0
  if (sh.seg >= 0) {
    int64_t s0 = sh.seg * seg, s1 = std::min(n, s0 + seg);
    int64_t chunk = (s1 - s0 + kSampleThreads - 1) / kSampleThreads;
    int64_t c0 = std::min(s1, s0 + int64_t(threadIdx.x) * chunk), c1 = std::min(s1, c0 + chunk);
    double sum = 0;
    for (int64_t j = c0; j < c1; ++j) sum += weight(src.id(j), src.u(j));
    double all;
    double base = sh.carry + block_exclusive_scan(sum, sh.scan, &all);
    if (sum > 0 && base <= sh.target && base + sum > sh.target) {
      double run = base;
      for (int64_t j = c0; j < c1; ++j) {
        double e = weight(src.id(j), src.u(j));
        run += e;
        if (e > 0 && run > sh.target) {
          atomicMin(&sh.found, (unsigned long long)j);
          break;
        }
      }
    }
    __syncthreads();
    // Partial sums that disagree by rounding leave no chunk claiming u: the segment's last token.
    chosen = sh.found != ULLONG_MAX ? int64_t(sh.found) : sh.seg_last[sh.seg];
  }
  *pos = chosen;
  *w = weight(src.id(chosen), src.u(chosen));
  *total = sh.z;
}

// The top-p boundary: tokens with key > tau, and those with key == tau and id >= tau_id, stay.
// (tau may be the lowest key of a bucket holding only the boundary token: the same set.)
struct TopPCut {
  bool found;  // false: the mass of every token is below top_p, all stay
  uint64_t tau;
  int32_t tau_id;
  uint64_t before, through, total;  // fixed-point mass before the last kept token, through it, of all
};

template <class Src>
__device__ TopPCut top_p_cut(const Src& src, const Tempered& t, double z, uint64_t target, uint64_t kth,
                             const Histogram& h, DescentShared& sh) {
  auto kept_by_top_k = [kth](int32_t, double u, uint64_t* key) {
    *key = order_key(u);
    return *key >= kth;
  };
  auto mass = [&t, z](int32_t, double u) { return (uint64_t)__double2ull_rn(t.weight(u) / z * kFixedOne); };
  Descent d = radix_descent(src, 64, kept_by_top_k, mass, true, MassRule{target}, h, sh);
  TopPCut cut{false, 0, 0, 0, 0, d.total_mass};
  if (!d.found) return cut;
  // Tokens of equal score come by larger id first; as many stay as keep the mass before each
  // below top_p (at least one).
  uint64_t count = d.count_at, each = d.mass_at / count, need = target - d.mass_above;
  uint64_t keep = each == 0 ? count : std::min(count, (need + each - 1) / each);
  cut.found = true;
  cut.tau = d.key;
  cut.before = d.mass_above + (keep - 1) * each;
  cut.through = d.mass_above + keep * each;
  if (keep < count) {
    uint64_t tau = d.key;
    auto tied = [tau](int32_t id, double u, uint64_t* key) {
      *key = uint64_t(uint32_t(id));
      return order_key(u) == tau;
    };
    Descent ids = radix_descent(src, 32, tied, NoWeight{}, false, CountRule{double(keep)}, h, sh);
    cut.tau_id = int32_t(ids.key);
  }
  return cut;
}

// Whether a cut computed with the total z stays the same for any total within z_err of it.
__device__ bool certain(const TopPCut& c, double z, double z_err, uint64_t target, int64_t n) {
  double rel = z_err / z, slack = double(n) + kFixedOne * 1e-14, t = double(target);
  if (!c.found) return double(c.total) + slack < t * (1 - rel);
  return double(c.before) + slack < t * (1 - rel) && double(c.through) - slack >= t * (1 + rel);
}

struct RowFilters {
  bool top_k, top_p, min_p;
  double k, p, m;
};

// The filters and the draw over `src` (the candidate list or the whole row). With a list and
// top-p without top-k, the mass outside the list (`rest`, within rest_err) completes the total;
// when that uncertainty could move the top-p boundary, it is summed exactly over `row`.
template <class Src>
__device__ void filter_and_draw(const Src& src, const RowSource& row, bool from_list, uint64_t theta, double rest,
                                double rest_err, const RowFilters& f, const Tempered& t, double u, int64_t r,
                                const Args& a, const Histogram& h, RowShared& sh) {
  uint64_t kth = 0;  // top-k keeps keys >= kth
  if (f.top_k) {
    Descent d = radix_descent(src, 64, AnyKey{}, NoWeight{}, false, CountRule{f.k}, h, sh.descent);
    if (d.found) kth = d.key;  // not found: fewer candidates than k, all stay
  }
  TopPCut cut{false, 0, 0, 0, 0, 0};
  if (f.top_p) {
    uint64_t target = __double2ull_ru(f.p * kFixedOne);
    double z, z_listed = 0, z_err = 0;
    if (f.top_k || !from_list) {
      z = block_sum(
          src, [&](int32_t, double v) { return order_key(v) >= kth ? t.weight(v) : 0.0; }, sh.sums);
    } else {
      z_listed = block_sum(
          src, [&](int32_t, double v) { return t.weight(v); }, sh.sums);
      z = z_listed + rest;
      z_err = rest_err;
    }
    cut = top_p_cut(src, t, z, target, kth, h, sh.descent);
    if (z_err > 0 && !certain(cut, z, z_err, target, src.size())) {
      double rest_exact = block_sum(
          row, [&](int32_t, double v) { return order_key(v) < theta ? t.weight(v) : 0.0; }, sh.sums);
      cut = top_p_cut(src, t, z_listed + rest_exact, target, kth, h, sh.descent);
    }
  }
  auto kept_weight = [&](int32_t id, double v) {
    uint64_t key = order_key(v);
    if (key < kth) return 0.0;
    if (cut.found && (key < cut.tau || (key == cut.tau && id < cut.tau_id))) return 0.0;
    double e = t.weight(v);
    return f.min_p && e < f.m ? 0.0 : e;
  };
  int64_t pos;
  double w, total;
  draw(src, kept_weight, u, sh.draw, &pos, &w, &total);
  if (threadIdx.x == 0) {
    a.out[2 * r] = double(src.id(pos));
    a.out[2 * r + 1] = ::log(w / total);
  }
}

__global__ void __launch_bounds__(kSampleThreads) sample_tokens_kernel(Args a) {
  extern __shared__ __align__(16) unsigned char dynamic_shared[];
  __shared__ RowShared sh;
  const int64_t r = blockIdx.x;
  Histogram h{nullptr, reinterpret_cast<unsigned long long*>(dynamic_shared)};
  double* list_us = reinterpret_cast<double*>(h.mass + kBins);
  h.count = reinterpret_cast<uint32_t*>(list_us + a.list_cap);
  int32_t* list_ids = reinterpret_cast<int32_t*>(h.count + kBins);
  uint32_t* seen = reinterpret_cast<uint32_t*>(list_ids + a.list_cap);

  const double* p = a.params + r * kSampleParamCount;
  int bad = bad_param(p);
  if (bad >= 0) return report(a, r, kBadParam + bad, __double_as_longlong(p[bad]));
  double temperature = p[kSampleTemperature], penalty = p[kSampleRepetitionPenalty];
  bool greedy = temperature == 0;
  double u = greedy ? 0.0 : a.uniforms[r];
  if (!(u >= 0 && u < 1)) return report(a, r, kBadUniform, __double_as_longlong(u));

  // 1. the history: ids to penalise, checked whatever the penalty
  bool penalised = penalty != 1.0;
  if (penalised)
    for (int i = threadIdx.x; i < a.seen_words; i += kSampleThreads) seen[i] = 0;
  if (threadIdx.x == 0) sh.bad_history = INT_MAX;
  __syncthreads();
  const int32_t* hist = a.history + r * a.history_len;
  for (int64_t i = threadIdx.x; i < a.history_len; i += kSampleThreads) {
    int32_t id = hist[i];
    if (id == -1) continue;
    if (id < -1 || id >= a.vocab)
      atomicMin(&sh.bad_history, int(i));
    else if (penalised)
      atomicOr(&seen[id >> 5], 1u << (id & 31));
  }
  __syncthreads();
  if (sh.bad_history != INT_MAX)
    return report(a, r, kBadHistoryId, (long long)((uint64_t(a.vocab) << 32) | uint32_t(hist[sh.bad_history])));
  RowSource row{a.logits + r * a.vocab, a.vocab, penalised ? seen : nullptr, penalty};

  // 2. the largest score (and, for greedy rows, the softmax denominator)
  Extremes mine{-double(INFINITY), 0.0, -1, INT64_MAX};
  row.for_each([&](int64_t j, bool valid, int32_t, double v) {
    if (!valid) return;
    if (v != v || v == double(INFINITY)) {
      mine.bad = std::min(mine.bad, j);
    } else if (v > mine.max) {
      if (greedy) mine.sum = (mine.max == -double(INFINITY) ? 0.0 : mine.sum * ::exp(mine.max - v)) + 1.0;
      mine.max = v;
      mine.arg = j;
    } else if (greedy && v != -double(INFINITY)) {
      mine.sum += v == mine.max ? 1.0 : double(::expf(float(v - mine.max)));
    }
  });
  Extremes ex = cuda::block_combine(mine, MergeExtremes{}, sh.extremes);
  if (ex.bad != INT64_MAX) {
    float x = row.logits[ex.bad];
    if (x != x || x == INFINITY)
      return report(a, r, kBadLogit, (long long)((uint64_t(ex.bad) << 32) | __float_as_uint(x)));
    return report(a, r, kScoreOverflow, 0);
  }
  if (ex.max == -double(INFINITY)) return report(a, r, kNoFiniteScore, 0);
  if (greedy) {
    if (threadIdx.x == 0) {
      a.out[2 * r] = double(ex.arg);
      a.out[2 * r + 1] = -::log(ex.sum);
    }
    return;
  }
  Tempered t{temperature, 1.0 / temperature, ex.max, ex.max, temperature != 1.0};
  if (t.divide) t.smax = ex.max / temperature;
  if (!finite(t.smax)) return report(a, r, kScoreOverflow, 0);
  RowFilters f{};
  f.k = p[kSampleTopK];
  f.p = p[kSampleTopP];
  f.m = p[kSampleMinP];
  f.top_k = f.k > 0 && f.k < double(a.vocab);
  f.top_p = f.p < 1.0;
  f.min_p = f.m > 0;

  // 3. the candidates: the tokens with key >= theta, when few enough
  bool from_list = a.vocab <= a.list_cap;
  uint64_t theta = 0;
  if (!from_list) {
    SupersetRule rule{};
    rule.cap = uint64_t(a.list_cap);
    rule.by_count = f.top_k && f.k <= double(a.list_cap);
    // top-p's mass is relative to the top-k set, which then has to be listed whole.
    rule.by_mass = f.top_p && !f.top_k && f.p + 1e-4 <= 1.0;
    rule.by_min_p = f.min_p && !(f.top_k && f.top_p);
    rule.k = f.k;
    rule.mass_fraction = f.p + 1e-4;  // beyond the float masses' error
    if (rule.by_min_p) {
      // min-p keeps u >= umax + T log(min_p); a margin keeps the bound below rounding.
      double log_m = ::log(f.m);
      double bound = ex.max + temperature * log_m - 1e-6 * (1 + ::fabs(ex.max) + temperature * ::fabs(log_m));
      rule.min_p_key = order_key(bound);
    }
    if (rule.by_count || rule.by_mass || rule.by_min_p) {
      double scale = a.superset_mass_scale;
      auto mass = [&t, scale](int32_t, double v) {
        return (uint64_t)__double2ull_rn(double(t.approx_weight(v)) * scale);
      };
      Descent d = radix_descent(row, 64, AnyKey{}, mass, rule.by_mass, rule, h, sh.descent);
      from_list = d.found && d.count_above + d.count_at <= rule.cap;
      theta = d.key;
    }
  }
  if (!from_list) return filter_and_draw(row, row, false, 0, 0.0, 0.0, f, t, u, r, a, h, sh);

  if (threadIdx.x == 0) sh.list_n = 0;
  __syncthreads();
  bool track_rest = f.top_p && !f.top_k;
  double rest = 0, rest_err = 0;
  int lane = threadIdx.x & 31;
  row.for_each([&](int64_t, bool valid, int32_t id, double v) {
    bool listed = valid && order_key(v) >= theta;
    unsigned ballot = __ballot_sync(kFullMask, listed);
    int first = 0;
    if (lane == 0 && ballot) first = atomicAdd(&sh.list_n, __popc(ballot));
    first = __shfl_sync(kFullMask, first, 0);
    if (listed) {
      int slot = first + __popc(ballot & ((1u << lane) - 1));
      if (slot < a.list_cap) {
        list_ids[slot] = id;
        list_us[slot] = v;
      }
    } else if (valid && track_rest) {
      // Error bound of approx_weight: float rounding of the exponent, expf's 2 ulp, and the
      // exponent's own rounding in double.
      float e = t.approx_weight(v);
      if (e > 0) {
        double d = (v - t.umax) * t.inverse;
        rest += e;
        rest_err += e * (::fabs(d) * 0x1p-22 + 0x1p-20 + 1e-15 * (::fabs(v) + ::fabs(t.umax)) * t.inverse);
      }
    }
  });
  __syncthreads();
  int n = std::min(sh.list_n, a.list_cap);
  if (track_rest) {
    rest = cuda::block_combine(rest, Plus<double>{}, sh.sums);
    rest_err = cuda::block_combine(rest_err, Plus<double>{}, sh.sums);
    rest_err = 2 * rest_err + 1e-15 * rest + 2e-45 * double(a.vocab);  // + tokens expf flushes to 0
  }
  sort_by_id(list_ids, list_us, n);
  ListSource list{list_ids, list_us, n};
  filter_and_draw(list, row, true, theta, rest, rest_err, f, t, u, r, a, h, sh);
}

size_t shared_bytes(int list_cap, int64_t seen_words) {
  return size_t(kBins) * (sizeof(unsigned long long) + sizeof(uint32_t)) +
         size_t(list_cap) * (sizeof(double) + sizeof(int32_t)) + size_t(seen_words) * sizeof(uint32_t);
}

// The dynamic shared memory a block may have on `device`, after the kernel's static part; raised
// to the device's limit once.
size_t dynamic_shared_limit(int device) {
  static std::mutex mutex;
  static size_t limits[64] = {};
  std::lock_guard<std::mutex> lock(mutex);
  WICK_CHECK(device >= 0 && device < 64, "sample_tokens: device ", device, " is out of range");
  if (limits[device] == 0) {
    int optin = 0;
    WICK_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    cudaFuncAttributes attr{};
    WICK_CUDA_CHECK(cudaFuncGetAttributes(&attr, sample_tokens_kernel));
    size_t limit = size_t(optin) - attr.sharedSizeBytes;
    WICK_CUDA_CHECK(
        cudaFuncSetAttribute(sample_tokens_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(limit)));
    limits[device] = limit;
  }
  return limits[device];
}

}  // namespace

namespace cuda {
std::string sample_tokens_error(long long value, long long limit) {
  int64_t row = value / 16;
  int what = int(value % 16);
  double number = 0;
  std::memcpy(&number, &limit, sizeof number);
  if (what < kSampleParamCount) {
    double params[kSampleParamCount] = {0, 0, 0.5, 0, 1};  // valid values, one replaced by the bad one
    params[what] = number;
    return sampling_error_message(row, sampling_params_error(params));
  }
  switch (what) {
    case kBadUniform:
      return sampling_error_message(row, str_cat("uniforms must be in [0, 1) for a sampled row, got ", number));
    case kBadLogit: {
      uint32_t bits = uint32_t(uint64_t(limit) & 0xffffffffu);
      float x;
      std::memcpy(&x, &bits, sizeof x);
      return sampling_error_message(row, str_cat("logits hold ", x, " at column ", uint64_t(limit) >> 32));
    }
    case kNoFiniteScore:
      return sampling_error_message(row, "no token has a finite logit after the repetition penalty");
    case kBadHistoryId:
      return sampling_error_message(row, str_cat("history holds id ", int32_t(uint32_t(uint64_t(limit) & 0xffffffffu)),
                                                 ", outside [0, ", uint64_t(limit) >> 32, ") (-1 pads)"));
    default:
      return sampling_error_message(row, "repetition_penalty and temperature make a logit overflow to infinity");
  }
}
}  // namespace cuda

void SampleTokens::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor logits = cuda::contiguous_on_device(in[0]), params = cuda::contiguous_on_device(in[1]);
  Tensor history = cuda::contiguous_on_device(in[2]), uniforms = cuda::contiguous_on_device(in[3]);
  out.allocate();
  int64_t rows = logits.shape(0), vocab = logits.shape(1);
  if (rows == 0) return;
  int device = out.device().index;
  cudaStream_t stream = cuda::stream(device);  // also makes the device current
  int64_t seen_words = (vocab + 31) / 32;
  size_t limit = dynamic_shared_limit(device);
  int cap = kMaxList;
  while (cap > kMinList && shared_bytes(cap, seen_words) > limit) cap /= 2;
  WICK_CHECK(shared_bytes(cap, seen_words) <= limit, "sample_tokens: a vocabulary of ", vocab, " tokens needs ",
             shared_bytes(cap, seen_words), " bytes of shared memory per block, more than the ", limit,
             " of cuda:", device);
  int bits = 0;
  while ((int64_t(1) << bits) < vocab) ++bits;
  Args a{static_cast<const float*>(logits.data_ptr()),
         static_cast<const double*>(params.data_ptr()),
         static_cast<const int32_t*>(history.data_ptr()),
         static_cast<const double*>(uniforms.data_ptr()),
         static_cast<double*>(out.data_ptr()),
         vocab,
         history.shape(1),
         cap,
         int(seen_words),
         std::ldexp(1.0, 62 - bits),
         cuda::device_error(device)};
  sample_tokens_kernel<<<unsigned(rows), kSampleThreads, shared_bytes(cap, seen_words), stream>>>(a);
  WICK_CUDA_LAUNCH_CHECK("sample_tokens_kernel");
}

}  // namespace wick
