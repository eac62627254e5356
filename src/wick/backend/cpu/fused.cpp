// CPU evaluation of fused elementwise chains: the output is walked in blocks small enough to stay
// in L1; each instruction runs over a whole block, so the loops vectorise and intermediates
// never reach memory.
#include <array>

#include "wick/backend/cpu/strided.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

constexpr int64_t kBlock = 256;

// Walks the elements of `shape` in row-major order, yielding each input's element offsets.
class StridedCursor {
 public:
  StridedCursor(const Shape& shape, std::vector<Strides> strides)
      : shape_(shape), strides_(std::move(strides)), index_(shape.size(), 0), offsets_(strides_.size(), 0) {}

  // Writes the offsets of the next n elements of input k into out[k][0..n).
  void next(int64_t n, std::vector<std::array<int64_t, kBlock>>& out) {
    int nd = int(shape_.size());
    for (int64_t e = 0; e < n; ++e) {
      for (size_t k = 0; k < strides_.size(); ++k) out[k][e] = offsets_[k];
      for (int d = nd - 1; d >= 0; --d) {
        for (size_t k = 0; k < strides_.size(); ++k) offsets_[k] += strides_[k][d];
        if (++index_[d] < shape_[d]) break;
        for (size_t k = 0; k < strides_.size(); ++k) offsets_[k] -= strides_[k][d] * shape_[d];
        index_[d] = 0;
      }
    }
  }

 private:
  Shape shape_;
  std::vector<Strides> strides_;
  std::vector<int64_t> index_, offsets_;
};

template <class C, class Fn>
void unary_block(const C* x, C* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Fn{}(x[i]);
}
template <class C, class Fn>
void arith_block(const C* a, const C* b, C* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Fn{}(a[i], b[i]);
}

template <class C>
using UnaryBlock = void (*)(const C*, C*, int64_t);
template <class C>
using ArithBlock = void (*)(const C*, const C*, C*, int64_t);

template <class C>
UnaryBlock<C> unary_table(uint8_t id) {
  static const UnaryBlock<C> table[] = {
#define WICK_ENTRY(F) &unary_block<C, fn::F>,
      WICK_UNARY_FNS(WICK_ENTRY)
#undef WICK_ENTRY
  };
  return table[id];
}
template <class C>
ArithBlock<C> arith_table(uint8_t id) {
  static const ArithBlock<C> table[] = {
#define WICK_ENTRY(F) &arith_block<C, fn::F>,
      WICK_ARITH_FNS(WICK_ENTRY)
#undef WICK_ENTRY
  };
  return table[id];
}

}  // namespace

void Fused::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    using C = compute_t<T>;
    // Inputs are read directly when dense, as a constant when broadcast from one element, and
    // through the cursor otherwise.
    enum Access { Dense, Constant, Strided };
    std::vector<const T*> src;
    std::vector<Access> access;
    std::vector<int> cursor_slot(in.size(), -1);
    std::vector<Strides> strided;
    for (size_t k = 0; k < in.size(); ++k) {
      const Tensor& x = in[k];
      src.push_back(cpu::cdata<T>(x));
      bool constant = true;
      for (int64_t st : x.strides()) constant = constant && st == 0;
      if (x.is_contiguous()) {
        access.push_back(Dense);
      } else if (constant) {
        access.push_back(Constant);
      } else {
        access.push_back(Strided);
        cursor_slot[k] = int(strided.size());
        strided.push_back(x.strides());
      }
    }
    StridedCursor cursor(out.shape(), strided);
    std::vector<std::array<int64_t, kBlock>> offsets(strided.size());
    std::vector<std::array<C, kBlock>> regs(program_.size());
    T* dst = cpu::mdata<T>(out);
    int64_t total = out.numel();
    for (int64_t start = 0; start < total; start += kBlock) {
      int64_t n = std::min(kBlock, total - start);
      if (!strided.empty()) cursor.next(n, offsets);
      for (size_t r = 0; r < program_.size(); ++r) {
        const FusedInstr& ins = program_[r];
        C* y = regs[r].data();
        switch (ins.kind) {
          case FusedInstr::Load: {
            const T* p = src[ins.id];
            if (access[ins.id] == Dense) {
              for (int64_t e = 0; e < n; ++e) y[e] = C(p[start + e]);
            } else if (access[ins.id] == Constant) {
              C v = C(p[0]);
              for (int64_t e = 0; e < n; ++e) y[e] = v;
            } else {
              const auto& off = offsets[cursor_slot[ins.id]];
              for (int64_t e = 0; e < n; ++e) y[e] = C(p[off[e]]);
            }
            break;
          }
          case FusedInstr::Unary: unary_table<C>(ins.id)(regs[ins.a].data(), y, n); break;
          case FusedInstr::Arith: arith_table<C>(ins.id)(regs[ins.a].data(), regs[ins.b].data(), y, n); break;
          case FusedInstr::SwiGLU:
            for (int64_t e = 0; e < n; ++e) y[e] = fn::Silu{}(regs[ins.a][e]) * regs[ins.b][e];
            break;
        }
      }
      const C* result = regs.back().data();
      for (int64_t e = 0; e < n; ++e) dst[start + e] = T(result[e]);
    }
  });
}

}  // namespace wick
