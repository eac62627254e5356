// CPU kernel of the batched-adapter LoRA update: per token, its slot's x @ A^T then @ B^T (f64 sums).
#include <cstring>
#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::mdata;

void LoraGatherAdd::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  const Tensor& base = in[0];
  if (!take_over_input(in, out)) {
    out.allocate();
    Tensor whole = cpu::contiguous_copy(base);
    std::memcpy(out.data_ptr(), whole.data_ptr(), size_t(out.numel()) * out.itemsize());
  }
  Tensor x = cpu::contiguous_copy(in[1]), slots = cpu::contiguous_copy(in[2]);
  Tensor a = cpu::contiguous_copy(in[3]), b = cpu::contiguous_copy(in[4]), scales = cpu::contiguous_copy(in[5]);
  int64_t n = x.shape(0), din = x.shape(1), dout = out.shape(1), s = a.shape(0), r = a.shape(1);
  const int32_t* ps = cdata<int32_t>(slots);
  const float* pscale = cdata<float>(scales);
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    const T* px = cdata<T>(x);
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    T* po = mdata<T>(out);
    std::vector<double> t(static_cast<size_t>(r));
    for (int64_t i = 0; i < n; ++i) {
      int32_t slot = ps[i];
      if (slot < 0) continue;
      WICK_CHECK(slot < s, name(), ": token ", i, " has slot ", slot, " but only ", s, " adapters are stacked");
      const T* xa = px + i * din;
      for (int64_t j = 0; j < r; ++j) {
        const T* row = pa + (slot * r + j) * din;
        double acc = 0;
        for (int64_t k = 0; k < din; ++k) acc += double(row[k]) * double(xa[k]);
        t[j] = acc;
      }
      double scale = pscale[slot];
      for (int64_t o = 0; o < dout; ++o) {
        const T* row = pb + (slot * dout + o) * r;
        double acc = 0;
        for (int64_t j = 0; j < r; ++j) acc += double(row[j]) * t[j];
        po[i * dout + o] = T(compute_t<T>(double(po[i * dout + o]) + scale * acc));
      }
    }
  });
}

}  // namespace wick
