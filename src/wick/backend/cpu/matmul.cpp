// CPU matrix products through OpenBLAS (split across the thread pool, gemm.h); 16-bit floats are
// widened to f32 around the GEMM. bf16 operands of a large product go to the AVX512-BF16 kernel
// where the CPU has it: their values are bf16 already, so only the order of the f32 sums differs.
#include <cstring>

#include "wick/backend/cpu/gemm.h"
#include "wick/backend/cpu/strided.h"
#include "wick/backend/blas_layout.h"
#include "wick/core/primitives.h"

namespace wick {

using cpu::cdata;
using cpu::gemm;
using cpu::mdata;

void Matmul::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor a = in[0], b = in[1];
  out.allocate();
  int nd = out.ndim();
  int64_t m = out.shape(-2), n = out.shape(-1), k = a.shape(-1);
  auto view_of = [&](Tensor& t, int64_t rows, int64_t cols) {
    auto v = blas_view(rows, cols, t.strides()[nd - 2], t.strides()[nd - 1]);
    if (!v) {
      t = cpu::contiguous_copy(t);
      v = blas_view(rows, cols, t.strides()[nd - 2], t.strides()[nd - 1]);
    }
    return *v;
  };
  BlasView va = view_of(a, m, k), vb = view_of(b, k, n);
  Shape batch(out.shape().begin(), out.shape().end() - 2);
  Strides sa(a.strides().begin(), a.strides().end() - 2), sb(b.strides().begin(), b.strides().end() - 2);
  Strides so(out.strides().begin(), out.strides().end() - 2);
  dispatch_float(out.dtype(), "matmul", [&]<typename T>() {
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    T* po = mdata<T>(out);
    cpu::for_each_strided<3>(batch, {sa, sb, so}, [&](int64_t oa, int64_t ob, int64_t oo) {
      if (k == 0) {
        for (int64_t i = 0; i < m * n; ++i) po[oo + i] = T(0.0f);
        return;
      }
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        gemm(va.transposed, vb.transposed, m, n, k, pa + oa, va.ld, pb + ob, vb.ld, po + oo, n);
      } else {
        // Widen the operands (dense, row-major) to f32, multiply, round once.
        std::vector<float> fa(m * k), fb(k * n), fc(m * n);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < k; ++j)
            fa[i * k + j] = float(pa[oa + (va.transposed ? j * va.ld + i : i * va.ld + j)]);
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < n; ++j)
            fb[i * n + j] = float(pb[ob + (vb.transposed ? j * vb.ld + i : i * vb.ld + j)]);
        if (std::is_same_v<T, bf16> && cpu::bf16_dot_supported() && cpu::bf16_sized(m, n, k))
          cpu::gemm_bf16(false, false, m, n, k, fa.data(), k, fb.data(), n, fc.data(), n);
        else
          gemm(false, false, m, n, k, fa.data(), k, fb.data(), n, fc.data(), n);
        for (int64_t i = 0; i < m * n; ++i) po[oo + i] = T(fc[i]);
      }
    });
  });
}

}  // namespace wick
