// The K-quant kernels of quant_dot_k.h, and the activations' quantization, built for AVX2 (with FMA
// and F16C); called only where the CPU has them (k_dot_best_isa).
#if defined(__x86_64__)

#pragma GCC target("avx2,fma,f16c")
#include "wick/backend/cpu/quant_dot_k.h"
#include "wick/backend/cpu/quant_dot_lanes.h"

namespace wick::cpu::detail {
RowsDotKFn rows_dot_k_avx2(ggml::GgmlType type) { return k_kernels</*kVnni=*/false>(type); }
RowsDotLanesFn rows_dot_lanes_avx2(ggml::GgmlType type) { return lanes_kernels</*kVnni=*/false>(type); }
void quantize_row_q8k_avx2(const float* x, int64_t n, Q8KBlock* out) { k_quantize_row(x, n, out); }
}  // namespace wick::cpu::detail

#else

#include "wick/backend/cpu/quant_dot.h"

namespace wick::cpu::detail {
RowsDotKFn rows_dot_k_avx2(ggml::GgmlType) { return nullptr; }
RowsDotLanesFn rows_dot_lanes_avx2(ggml::GgmlType) { return nullptr; }
void quantize_row_q8k_avx2(const float* x, int64_t n, Q8KBlock* out) { quantize_row_q8k_scalar(x, n, out); }
}  // namespace wick::cpu::detail

#endif
