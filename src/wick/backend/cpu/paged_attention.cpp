// CPU kernels of the paged KV cache: writing new keys (rotated when asked) and values into their
// blocks, and attention of each new token over its row's cached positions (sums in double).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/vec_math.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/ops/paged_attention.h"
#include "wick/core/primitives.h"

#if defined(__AVX512F__)
// GCC 12 takes the undefined vectors inside its AVX-512 intrinsics for uninitialised variables.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "wick/backend/cpu/transpose16.h"
#endif

namespace wick {

using cpu::cdata;
using cpu::mdata;
using cpu::dot_product;

namespace {

// Where position `pos` of `row` lives: block * block_size + slot. Errors name the bad value.
struct Paging {
  const int32_t* tables;
  int64_t rows, width, block_size, num_blocks;
  const char* op;

  int64_t slot(int32_t row, int64_t pos) const {
    WICK_CHECK(row >= 0 && row < rows, op, ": token row ", row, " is out of range for ", rows, " block-table rows");
    WICK_CHECK(pos >= 0 && pos < width * block_size, op, ": position ", pos, " is out of range for a block table of ",
               width, " blocks of ", block_size);
    int32_t block = tables[row * width + pos / block_size];
    WICK_CHECK(block >= 0 && block < num_blocks, op, ": block ", block, " (row ", row, ", position ", pos,
               ") is out of range for a cache of ", num_blocks, " blocks");
    return int64_t(block) * block_size + pos % block_size;
  }
};

Paging paging_of(const char* op, const Tensor& cache, const Tensor& tables) {
  return Paging{cdata<int32_t>(tables), tables.shape(0), tables.shape(1), cache.shape(3), cache.shape(0), op};
}

#if defined(__AVX512F__)
// f32 heads of C * 16 values: the scores and the weighted sum of one query head, with the same
// sums as the portable loops (dot_product's 16 lanes, each a chain of fused multiply-adds over the
// head's 16-value chunks, then the lanes added in order; the values' sum a fused multiply-add per
// position in order), so the same bits, but 16 positions' lanes transposed and added at once and
// the output kept in registers.
template <int C>
void scores16(const float* q, const float* const* keys, int64_t len, float* scores) {
  for (int64_t p0 = 0; p0 < len; p0 += 16) {
    const int count = int(std::min<int64_t>(16, len - p0));
    __m512i part[16];
    for (int l = 0; l < 16; ++l) {
      __m512 acc = _mm512_setzero_ps();
      if (l < count)
        for (int c = 0; c < C; ++c)
          acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(keys[p0 + l] + 16 * c), acc);
      part[l] = _mm512_castps_si512(acc);
    }
    cpu::transpose16(part);  // part[l]: lane l of the 16 positions' sums
    __m512 dot = _mm512_setzero_ps();
    for (int l = 0; l < 16; ++l) dot = _mm512_add_ps(dot, _mm512_castsi512_ps(part[l]));
    _mm512_mask_storeu_ps(scores + p0, __mmask16((1u << count) - 1), dot);
  }
}

template <int C>
void weighted_sum16(const float* weights, const float* const* values, int64_t len, float scale, float* out) {
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < len; ++p) {
    const __m512 w = _mm512_set1_ps(weights[p]);
    for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(values[p] + 16 * c), acc[c]);
  }
  const __m512 total = _mm512_set1_ps(scale);
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + 16 * c, _mm512_div_ps(acc[c], total));
}
#endif


}  // namespace

void PagedKVWrite::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& cache = in[0];
  if (!take_over_input(in, out)) {
    out.allocate();
    Tensor whole = cpu::contiguous_copy(cache);
    std::memcpy(out.data_ptr(), whole.data_ptr(), size_t(out.numel()) * out.itemsize());
  }
  Tensor k = cpu::contiguous_copy(in[1]), v = cpu::contiguous_copy(in[2]);
  Tensor tables = cpu::contiguous_copy(in[3]), rows = cpu::contiguous_copy(in[4]), pos = cpu::contiguous_copy(in[5]);
  const float* inv = rope_ ? cdata<float>(in[6]) : nullptr;
  Paging paging = paging_of(name(), out, tables);
  int64_t heads = out.shape(2), bs = out.shape(3), d = out.shape(4), n = k.shape(0), half = d / 2;
  const int32_t* pr = cdata<int32_t>(rows);
  const int32_t* pp = cdata<int32_t>(pos);
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    using C = compute_t<T>;
    T* dst = mdata<T>(out);
    const T* pk = cdata<T>(k);
    const T* pv = cdata<T>(v);
    std::vector<C> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t t = 0; t < n; ++t) {
      int64_t slot = paging.slot(pr[t], pp[t]);
      int64_t block = slot / bs, offset = slot % bs;
      if (inv)
        for (int64_t i = 0; i < half; ++i) {
          // The angle in f32 as the rope op forms it (and HF), unless the data is f64.
          C angle = std::is_same_v<C, double> ? C(double(pp[t]) * double(inv[i])) : C(float(pp[t]) * inv[i]);
          cs[i] = std::cos(angle);
          sn[i] = std::sin(angle);
        }
      for (int64_t h = 0; h < heads; ++h) {
        T* kd = dst + (((block * 2 + 0) * heads + h) * bs + offset) * d;
        T* vd = dst + (((block * 2 + 1) * heads + h) * bs + offset) * d;
        const T* ks = pk + (t * heads + h) * d;
        std::memcpy(vd, pv + (t * heads + h) * d, size_t(d) * sizeof(T));
        if (!inv) {
          std::memcpy(kd, ks, size_t(d) * sizeof(T));
          continue;
        }
        for (int64_t i = 0; i < half; ++i) {
          C x1 = C(ks[i]), x2 = C(ks[i + half]);
          kd[i] = T(x1 * cs[i] - x2 * sn[i]);
          kd[i + half] = T(x2 * cs[i] + x1 * sn[i]);
        }
      }
    }
  });
}

// Per (token, head): scores q.k over the token's context, softmax, then the weighted sum of the
// values. Sums run in float (double for f64 data) over contiguous rows, the scores' in independent
// lanes (dot_product), so that compilers vectorise them; with AVX-512, f32 heads of 64 or 128 take
// kernels that give the same bits 16 positions at a time (scores16, weighted_sum16).
// The (token, kv head) pairs are split across the thread pool; each pair's query heads share the
// gathered rows of its context.
void PagedAttention::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor q = cpu::contiguous_copy(in[0]), cache = cpu::contiguous_copy(in[1]);
  Tensor tables = cpu::contiguous_copy(in[2]), rows = cpu::contiguous_copy(in[3]), pos = cpu::contiguous_copy(in[4]);
  out.allocate();
  Paging paging = paging_of(name(), cache, tables);
  int64_t n = q.shape(0), hq = q.shape(1), d = q.shape(2), hkv = cache.shape(2), bs = cache.shape(3);
  int64_t group = hq / hkv;
  const int32_t* pr = cdata<int32_t>(rows);
  const int32_t* pp = cdata<int32_t>(pos);
  Tensor inv_freq = rope_ ? cpu::contiguous_copy(in[5]) : Tensor();
  const float* inv = rope_ ? cdata<float>(inv_freq) : nullptr;
  const int64_t half = d / 2;
  int64_t longest = 1;
  for (int64_t t = 0; t < n; ++t) {
    WICK_CHECK(pp[t] < max_context_, name(), ": position ", pp[t], " is not below max_context ", max_context_);
    longest = std::max<int64_t>(longest, int64_t(pp[t]) + 1);
  }
  dispatch_float(q.dtype(), name(), [&]<typename T>() {
    using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
    using C = compute_t<T>;
    const T* pq = cdata<T>(q);
    const T* pc = cdata<T>(cache);
    T* po = mdata<T>(out);
    int64_t grain = std::max<int64_t>(1, 8192 / (longest * d * group));
    // Units of (token, kv head): each scores the token's context for the query heads of its group.
    cpu::parallel_for(n * hkv, grain, [&](int64_t u0, int64_t u1) {
      std::vector<A> scores, acc(static_cast<size_t>(d)), qa(static_cast<size_t>(d));
      std::vector<C> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
      std::vector<T> qr(static_cast<size_t>(d));
      std::vector<const T*> keys, values;
      int64_t rotated_for = -1;  // the token whose angles cs, sn hold
      for (int64_t u = u0; u < u1; ++u) {
        int64_t t = u / hkv, g = u % hkv;
        int64_t len = int64_t(pp[t]) + 1;
        scores.resize(static_cast<size_t>(len));
        keys.resize(static_cast<size_t>(len));
        values.resize(static_cast<size_t>(len));
        for (int64_t p = 0; p < len; ++p) {  // the rows of this token's context for kv head g
          int64_t slot = paging.slot(pr[t], p), block = slot / bs, offset = slot % bs;
          keys[p] = pc + (((block * 2 + 0) * hkv + g) * bs + offset) * d;
          values[p] = pc + (((block * 2 + 1) * hkv + g) * bs + offset) * d;
        }
        if (inv && rotated_for != t) {
          for (int64_t i = 0; i < half; ++i) {
            // The angle in f32 as the rope op forms it (and HF), unless the data is f64.
            C angle = std::is_same_v<C, double> ? C(double(pp[t]) * double(inv[i])) : C(float(pp[t]) * inv[i]);
            cs[i] = std::cos(angle);
            sn[i] = std::sin(angle);
          }
          rotated_for = t;
        }
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const T* qv = pq + (t * hq + h) * d;
          if (inv) {  // rotated and rounded to T, as the rope op leaves q
            for (int64_t i = 0; i < half; ++i) {
              C x1 = C(qv[i]), x2 = C(qv[i + half]);
              qr[i] = T(x1 * cs[i] - x2 * sn[i]);
              qr[i + half] = T(x2 * cs[i] + x1 * sn[i]);
            }
            qv = qr.data();
          }
          for (int64_t j = 0; j < d; ++j) qa[j] = A(qv[j]) * A(scale_);
          A* oh = nullptr;  // the output row, when a vector kernel fills it
#if defined(__AVX512F__)
          if constexpr (std::is_same_v<T, float>) {
            if (d == 64 || d == 128) {
              oh = po + (t * hq + h) * d;
              if (d == 64) scores16<4>(qa.data(), keys.data(), len, scores.data());
              else scores16<8>(qa.data(), keys.data(), len, scores.data());
            }
          }
#endif
          A best = -INFINITY;
          if (oh) {
            for (int64_t p = 0; p < len; ++p) best = std::max(best, scores[p]);
          } else {
            for (int64_t p = 0; p < len; ++p) {
              const A dot = dot_product(qa.data(), keys[p], d);
              scores[p] = dot;
              best = std::max(best, dot);
            }
          }
          A total = 0;
          for (A& s : scores) total += (s = std::exp(s - best));
#if defined(__AVX512F__)
          if constexpr (std::is_same_v<T, float>) {
            if (oh) {
              if (d == 64) weighted_sum16<4>(scores.data(), values.data(), len, total, oh);
              else weighted_sum16<8>(scores.data(), values.data(), len, total, oh);
              continue;
            }
          }
#endif
          std::fill(acc.begin(), acc.end(), A(0));
          for (int64_t p = 0; p < len; ++p) {
            const T* vv = values[p];
            A w = scores[p];
            for (int64_t j = 0; j < d; ++j) acc[j] += w * A(vv[j]);
          }
          for (int64_t j = 0; j < d; ++j) po[(t * hq + h) * d + j] = T(compute_t<T>(acc[j] / total));
        }
      }
    });
  });
}

}  // namespace wick
