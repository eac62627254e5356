// CPU kernels of the batched-adapter LoRA update: per token, its slot's x @ A^T (the shrink), then
// t @ B^T added to the base (the expand), over the thread pool. With AVX-512, f32 operands take
// vector kernels that serve up to kGroup consecutive tokens of one slot at once (a prompt's tokens
// share theirs): the shrink reads a row of A once for the group, the expand (ranks that are
// multiples of 16, 16 outputs at a time) transposes a 16 x 16 block of B in registers once for it.
// Each token's sums are the same chain of fused multiply-adds in a group as alone, so a token's
// values depend only on its own row and slot, never on the rest of the batch. An expand with output
// parts (a stacked projection's compact B) walks each part's outputs with its own rank columns of t.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/backend/cpu/vec_math.h"
#include "wick/core/ops/lora_gather.h"
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

namespace {
// The sums: f64 for f64 operands, else f32 in interleaved lanes (dot_product), which vectorise; a
// decode step's adapters would otherwise cost as much as its products.
template <typename T>
using sum_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// The tokens' slots, each checked against the S stacked adapters (-1: none).
const int32_t* checked_slots(const char* op, const Tensor& slots, int64_t s) {
  const int32_t* ps = cdata<int32_t>(slots);
  for (int64_t i = 0; i < slots.numel(); ++i)
    WICK_CHECK(ps[i] < s, op, ": token ", i, " has slot ", ps[i], " but only ", s, " adapters are stacked");
  return ps;
}

// Work items per task when each reads `per_item` values: about 32K values a task.
int64_t grain_for(int64_t per_item) {
  return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(per_item, 1));
}

#if defined(__AVX512F__)
constexpr int kGroup = 8;  // tokens of one slot a vector kernel serves at once

// Consecutive tokens of one slot (>= 0), at most kGroup of them.
struct TokenGroup {
  int64_t first;
  int count;
  int32_t slot;
};
std::vector<TokenGroup> groups_of(const int32_t* slots, int64_t n) {
  std::vector<TokenGroup> groups;
  for (int64_t i = 0; i < n;) {
    if (slots[i] < 0) {
      ++i;
      continue;
    }
    int count = 1;
    while (count < kGroup && i + count < n && slots[i + count] == slots[i]) ++count;
    groups.push_back({i, count, slots[i]});
    i += count;
  }
  return groups;
}

// t[first + g][j] = A_j . x[first + g] for the K tokens of a group: 16-lane fused multiply-adds over
// `din` (the tail masked), then the lanes' sum.
template <int K>
void shrink_group(const float* x, const float* a_row, int64_t din, float* t, int64_t r) {
  __m512 acc[K];
  for (int g = 0; g < K; ++g) acc[g] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= din; k += 16) {
    const __m512 av = _mm512_loadu_ps(a_row + k);
    for (int g = 0; g < K; ++g) acc[g] = _mm512_fmadd_ps(_mm512_loadu_ps(x + g * din + k), av, acc[g]);
  }
  if (k < din) {
    const __mmask16 m = __mmask16((1u << (din - k)) - 1);
    const __m512 av = _mm512_maskz_loadu_ps(m, a_row + k);
    for (int g = 0; g < K; ++g) acc[g] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + g * din + k), av, acc[g]);
  }
  for (int g = 0; g < K; ++g) t[g * r] = _mm512_reduce_add_ps(acc[g]);
}

// y[g][o0 .. o0 + 16) (the first `valid` of them) += scale * B[o] . t[g] for the K tokens of a
// group, f32 rows of B (r a multiple of 16, row pitch r; the row pitches of y and t: dout, t_pitch):
// each 16 x 16 block of B transposed in registers once, then one fused multiply-add per rank j in
// order for each token.
template <int K>
void expand_group16(float* y, int64_t dout, const float* b, const float* t, int64_t t_pitch, int64_t r, int valid,
                    float scale) {
  const __mmask16 rows = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
  __m512 acc[K];
  for (int g = 0; g < K; ++g) acc[g] = _mm512_setzero_ps();
  for (int64_t j0 = 0; j0 < r; j0 += 16) {
    __m512i x[16];
    for (int l = 0; l < 16; ++l)
      x[l] = l < valid ? _mm512_loadu_si512(b + l * r + j0) : _mm512_setzero_si512();
    cpu::transpose16(x);
    for (int c = 0; c < 16; ++c)
      for (int g = 0; g < K; ++g)
        acc[g] = _mm512_fmadd_ps(_mm512_set1_ps(t[g * t_pitch + j0 + c]), _mm512_castsi512_ps(x[c]), acc[g]);
  }
  for (int g = 0; g < K; ++g) {
    __m512 old = _mm512_maskz_loadu_ps(rows, y + g * dout);
    _mm512_mask_storeu_ps(y + g * dout, rows, _mm512_fmadd_ps(_mm512_set1_ps(scale), acc[g], old));
  }
}

// f(std::integral_constant<int, K>) for K = count (1 .. kGroup).
template <class F>
void with_group_size(int count, F&& f) {
  switch (count) {
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    case 4: return f(std::integral_constant<int, 4>());
    case 5: return f(std::integral_constant<int, 5>());
    case 6: return f(std::integral_constant<int, 6>());
    case 7: return f(std::integral_constant<int, 7>());
    default: return f(std::integral_constant<int, 8>());
  }
}
static_assert(kGroup == 8, "with_group_size covers 1 .. 8");
#endif

// An expand's output part: columns [begin, end) of y, multiplied by t's rank columns t0 .. t0 + r - 1.
struct OutputPart {
  int64_t begin, end, t0;
};
std::vector<OutputPart> output_parts(const std::vector<int64_t>& widths, int64_t dout, int64_t r) {
  if (widths.empty()) return {{0, dout, 0}};
  std::vector<OutputPart> parts;
  int64_t begin = 0;
  for (int64_t w : widths) {
    parts.push_back({begin, begin + w, int64_t(parts.size()) * r});
    begin += w;
  }
  return parts;
}
}  // namespace

void LoraGatherShrink::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  Tensor x = cpu::contiguous_copy(in[0]), slots = cpu::contiguous_copy(in[1]), a = cpu::contiguous_copy(in[2]);
  int64_t n = x.shape(0), din = x.shape(1), s = a.shape(0), r = a.shape(1);
  const int32_t* ps = checked_slots(name(), slots, s);
#if defined(__AVX512F__)
  if (x.dtype() == Dtype::F32) {
    const float* px = cdata<float>(x);
    const float* pa = cdata<float>(a);
    float* pt = mdata<float>(out);
    for (int64_t i = 0; i < n; ++i)
      if (ps[i] < 0) std::fill(pt + i * r, pt + (i + 1) * r, 0.f);
    // Work items are (group, rank row); each reads din values of A and of each token.
    const std::vector<TokenGroup> groups = groups_of(ps, n);
    cpu::parallel_for(int64_t(groups.size()) * r, grain_for(2 * din), [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const TokenGroup& gr = groups[size_t(w / r)];
        const int64_t j = w % r;
        with_group_size(gr.count, [&](auto k) {
          shrink_group<k()>(px + gr.first * din, pa + (int64_t(gr.slot) * r + j) * din, din, pt + gr.first * r + j, r);
        });
      }
    });
    return;
  }
#endif
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    using A = sum_t<T>;
    const T* px = cdata<T>(x);
    const T* pa = cdata<T>(a);
    A* pt = mdata<A>(out);  // f32, or f64 for f64 operands (lora_gather_shrink)
    // Work items are (token, rank row); each reads din values of x and of A.
    cpu::parallel_for(n * r, grain_for(din), [&](int64_t begin, int64_t end) {
      std::vector<A> xi(static_cast<size_t>(din));
      int64_t loaded = -1;
      for (int64_t w = begin; w < end; ++w) {
        int64_t i = w / r, j = w % r;
        int32_t slot = ps[i];
        if (slot < 0) {
          pt[w] = A(0);
          continue;
        }
        if (loaded != i) {
          for (int64_t k = 0; k < din; ++k) xi[size_t(k)] = A(px[i * din + k]);
          loaded = i;
        }
        pt[w] = cpu::dot_product(xi.data(), pa + (int64_t(slot) * r + j) * din, din);
      }
    });
  });
}

namespace {

// out[N, dout] (holding the base) += each token's update; inputs t, slots, b_stack, scales.
void add_updates(const char* op, const Tensor& out, const Tensor& t_in, const Tensor& slots_in, const Tensor& b_in,
                 const Tensor& scales_in, const std::vector<int64_t>& part_widths) {
  Tensor t = cpu::contiguous_copy(t_in), slots = cpu::contiguous_copy(slots_in);
  Tensor b = cpu::contiguous_copy(b_in), scales = cpu::contiguous_copy(scales_in);
  int64_t n = t.shape(0), t_cols = t.shape(1), dout = out.shape(1), s = b.shape(0), r = b.shape(2);
  const std::vector<OutputPart> parts = output_parts(part_widths, dout, r);
  const int32_t* ps = checked_slots(op, slots, s);
  const float* pscale = cdata<float>(scales);
  dispatch_float(out.dtype(), op, [&]<typename T>() {
    using A = sum_t<T>;
    const T* pb = cdata<T>(b);
    T* po = mdata<T>(out);
    const A* pt = cdata<A>(t);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (r % 16 == 0) {
        // Work items are (group, 16 outputs of one part).
        struct Block {
          int64_t o0, t0;
          int valid;
        };
        std::vector<Block> blocks;
        for (const OutputPart& p : parts)
          for (int64_t o0 = p.begin; o0 < p.end; o0 += 16) blocks.push_back({o0, p.t0, int(std::min<int64_t>(16, p.end - o0))});
        const int64_t nb = int64_t(blocks.size());
        const std::vector<TokenGroup> groups = groups_of(ps, n);
        cpu::parallel_for(int64_t(groups.size()) * nb, grain_for(16 * r), [&](int64_t begin, int64_t end) {
          for (int64_t w = begin; w < end; ++w) {
            const TokenGroup& gr = groups[size_t(w / nb)];
            const Block& bl = blocks[size_t(w % nb)];
            with_group_size(gr.count, [&](auto k) {
              expand_group16<k()>(po + gr.first * dout + bl.o0, dout, pb + (int64_t(gr.slot) * dout + bl.o0) * r,
                                  pt + gr.first * t_cols + bl.t0, t_cols, r, bl.valid, pscale[gr.slot]);
            });
          }
        });
        return;
      }
    }
#endif
    // Work items are (token, output); each reads r values of B.
    std::vector<int64_t> t0_of(static_cast<size_t>(dout));
    for (const OutputPart& p : parts) std::fill(t0_of.begin() + p.begin, t0_of.begin() + p.end, p.t0);
    cpu::parallel_for(n * dout, grain_for(r), [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        int64_t i = w / dout, o = w % dout;
        int32_t slot = ps[i];
        if (slot < 0) continue;
        A acc = cpu::dot_product(pt + i * t_cols + t0_of[size_t(o)], pb + (int64_t(slot) * dout + o) * r, r);
        po[w] = T(compute_t<T>(A(po[w]) + A(pscale[slot]) * acc));
      }
    });
  });
}

}  // namespace

void LoraGatherExpand::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  if (!take_over_input(in, out)) {
    out.allocate();
    Tensor whole = cpu::contiguous_copy(in[0]);
    std::memcpy(out.data_ptr(), whole.data_ptr(), size_t(out.numel()) * out.itemsize());
  }
  add_updates(name(), out, in[1], in[2], in[3], in[4], parts());
}

void LoraGatherDelta::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  std::memset(out.data_ptr(), 0, size_t(out.numel()) * out.itemsize());
  add_updates(name(), out, in[0], in[1], in[2], in[3], parts());
}

void RMSNormLoraShrink::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  RMSNorm(eps_).eval_cpu({in[0], in[1]}, outs[0]);
  LoraGatherShrink().eval_cpu({outs[0], in[2], in[3]}, outs[1]);
}

void SwiGLULoraShrink::eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
  SwiGLU().eval_cpu({in[0], in[1]}, outs[0]);
  LoraGatherShrink().eval_cpu({outs[0], in[2], in[3]}, outs[1]);
}

}  // namespace wick
