// CPU kernel of the LoRA update (lora_delta, lora_add): two products through the Matmul kernel.
#include "wick/backend/cpu/strided.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/core/primitives.h"

namespace wick {

void LoraDelta::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  // Two small GEMMs through the Matmul kernel: (x @ A^T) then (. @ B^T) * scale.
  const Tensor &x = in[0], &a = in[1], &b = in[2];
  int64_t m = x.shape(0), r = a.shape(0), n = b.shape(0);
  auto transposed = [](const Tensor& t) {
    Tensor v = Tensor::from_storage(t.storage(), {t.shape(1), t.shape(0)}, {t.strides()[1], t.strides()[0]},
                                    t.offset(), t.dtype());
    return v;
  };
  Tensor xa = Tensor::empty({m, r}, x.dtype(), x.device());
  Matmul().eval_cpu({x, transposed(a)}, xa);
  if (!accumulate_) {
    Matmul().eval_cpu({xa, transposed(b)}, out);
    dispatch_float(out.dtype(), name(), [&]<typename T>() {
      T* po = cpu::mdata<T>(out);
      for (int64_t i = 0, total = m * n; i < total; ++i) po[i] = T(compute_t<T>(double(po[i]) * scale_));
    });
    return;
  }
  // lora_add: out = base + scale * update, in base's buffer when it was handed over.
  Tensor update = Tensor::empty({m, n}, x.dtype(), x.device());
  Matmul().eval_cpu({xa, transposed(b)}, update);
  Tensor base = cpu::contiguous_copy(in[3]);
  if (donate_) out.set_data(base.storage(), contiguous_strides(out.shape()), base.offset());
  else out.allocate();
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    const T* pb = cpu::cdata<T>(base);
    const T* pu = cpu::cdata<T>(update);
    T* po = cpu::mdata<T>(out);
    for (int64_t i = 0, total = m * n; i < total; ++i)
      po[i] = T(compute_t<T>(double(pb[i]) + double(pu[i]) * scale_));
  });
}

}  // namespace wick
