// CPU kernels of the batched-adapter LoRA update: per token, its slot's x @ A^T (the shrink), then
// t @ B^T added to the base (the expand); sums in f64.
#include <cstring>
#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

void LoraGatherShrink::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  Tensor x = cpu::contiguous_copy(in[0]), slots = cpu::contiguous_copy(in[1]), a = cpu::contiguous_copy(in[2]);
  int64_t n = x.shape(0), din = x.shape(1), s = a.shape(0), r = a.shape(1);
  const int32_t* ps = cdata<int32_t>(slots);
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    const T* px = cdata<T>(x);
    const T* pa = cdata<T>(a);
    dispatch_float(out.dtype(), name(), [&]<typename Acc>() {
      Acc* pt = mdata<Acc>(out);
      for (int64_t i = 0; i < n; ++i) {
        int32_t slot = ps[i];
        WICK_CHECK(slot < s, name(), ": token ", i, " has slot ", slot, " but only ", s, " adapters are stacked");
        const T* xi = px + i * din;
        for (int64_t j = 0; j < r; ++j) {
          double acc = 0;
          if (slot >= 0) {
            const T* row = pa + (slot * r + j) * din;
            for (int64_t k = 0; k < din; ++k) acc += double(row[k]) * double(xi[k]);
          }
          pt[i * r + j] = Acc(acc);
        }
      }
    });
  });
}

void LoraGatherExpand::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& base = in[0];
  if (!take_over_input(in, out)) {
    out.allocate();
    Tensor whole = cpu::contiguous_copy(base);
    std::memcpy(out.data_ptr(), whole.data_ptr(), size_t(out.numel()) * out.itemsize());
  }
  Tensor t = cpu::contiguous_copy(in[1]), slots = cpu::contiguous_copy(in[2]);
  Tensor b = cpu::contiguous_copy(in[3]), scales = cpu::contiguous_copy(in[4]);
  int64_t n = t.shape(0), r = t.shape(1), dout = out.shape(1), s = b.shape(0);
  const int32_t* ps = cdata<int32_t>(slots);
  const float* pscale = cdata<float>(scales);
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    const T* pb = cdata<T>(b);
    T* po = mdata<T>(out);
    dispatch_float(t.dtype(), name(), [&]<typename Acc>() {
      const Acc* pt = cdata<Acc>(t);
      for (int64_t i = 0; i < n; ++i) {
        int32_t slot = ps[i];
        if (slot < 0) continue;
        WICK_CHECK(slot < s, name(), ": token ", i, " has slot ", slot, " but only ", s, " adapters are stacked");
        const Acc* ti = pt + i * r;
        double scale = pscale[slot];
        for (int64_t o = 0; o < dout; ++o) {
          const T* row = pb + (slot * dout + o) * r;
          double acc = 0;
          for (int64_t j = 0; j < r; ++j) acc += double(row[j]) * double(ti[j]);
          po[i * dout + o] = T(compute_t<T>(double(po[i * dout + o]) + scale * acc));
        }
      }
    });
  });
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
