// The K-quant kernels of quant_dot_k.h built for AVX2 with AVX512-VNNI on 256-bit registers
// (vpdpwssd); called only where the CPU has AVX512-VNNI, AVX512VL and AVX512BW (k_dot_best_isa).
#if defined(__x86_64__)

#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")
#include "wick/backend/cpu/quant_dot_k.h"
#include "wick/backend/cpu/quant_dot_lanes.h"

namespace wick::cpu::detail {
RowsDotKFn rows_dot_k_vnni(ggml::GgmlType type) { return k_kernels</*kVnni=*/true>(type); }
RowsDotLanesFn rows_dot_lanes_vnni(ggml::GgmlType type) { return lanes_kernels</*kVnni=*/true>(type); }
}  // namespace wick::cpu::detail

#else

#include "wick/backend/cpu/quant_dot.h"

namespace wick::cpu::detail {
RowsDotKFn rows_dot_k_vnni(ggml::GgmlType) { return nullptr; }
RowsDotLanesFn rows_dot_lanes_vnni(ggml::GgmlType) { return nullptr; }
}  // namespace wick::cpu::detail

#endif
