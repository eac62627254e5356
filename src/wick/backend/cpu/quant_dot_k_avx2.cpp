// The K-quant kernels of quant_dot_k.h built for AVX2 (with FMA and F16C); called only where the
// CPU has them (k_dot_best_isa).
#if defined(__x86_64__)

#pragma GCC target("avx2,fma,f16c")
#include "wick/backend/cpu/quant_dot_k.h"

namespace wick::cpu::detail {
RowsDotKFn rows_dot_k_avx2(ggml::GgmlType type) { return k_kernels</*kVnni=*/false>(type); }
}  // namespace wick::cpu::detail

#else

#include "wick/backend/cpu/quant_dot.h"

namespace wick::cpu::detail {
RowsDotKFn rows_dot_k_avx2(ggml::GgmlType) { return nullptr; }
}  // namespace wick::cpu::detail

#endif
