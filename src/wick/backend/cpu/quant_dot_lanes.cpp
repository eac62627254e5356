// The lane layout of Q4_K, Q5_K and Q6_K (quant_dot.h): reordering blocks into it and back, the
// activations' lane blocks, and the choice of kernel (quant_dot_lanes.h).
#include <cstring>

#include "wick/backend/cpu/quant_dot.h"
#include "wick/base/error.h"

namespace wick::cpu {

namespace {

// Where value p's quant lives in the lane layout: vector t = (p % 32) / 8, nibble h = (p % 8) / 4 of
// byte 4k + j of that vector (k = p / 32, j = p % 4).
struct LanePlace {
  int byte;  // within the 128 bytes of nibbles
  int shift;  // 0 or 4
  int t, h;
};

LanePlace lane_place(int p) {
  const int k = p / 32, l = p % 32, t = l / 8, h = (l % 8) / 4, j = l % 4;
  return {32 * t + 4 * k + j, 4 * h, t, h};
}

// Value p's unsigned quant u (4 bits for Q4_K, 5 for Q5_K, 6 for Q6_K) read from a block in lanes,
// and written into a block of the file's layout whose quant bytes are zero.
void set_file_quant(ggml::GgmlType type, uint8_t* b, int p, int u) {
  using ggml::GgmlType;
  if (type == GgmlType::Q6_K) {
    const int half = p / 128, l = p % 128, g = l / 32, i = l % 32;
    b[64 * half + 32 * (g % 2) + i] |= uint8_t((u & 0x0F) << (g < 2 ? 0 : 4));
    b[128 + 32 * half + i] |= uint8_t((u >> 4) << (2 * g));
    return;
  }
  const int k = p / 32, l = p % 32;
  uint8_t* qs = b + (type == GgmlType::Q5_K ? 48 : 16);
  qs[32 * (k / 2) + l] |= uint8_t((u & 0x0F) << (4 * (k % 2)));
  if (type == GgmlType::Q5_K) b[16 + l] |= uint8_t(((u >> 4) & 1) << k);
}

int lane_quant(ggml::GgmlType type, const uint8_t* b, int p) {
  using ggml::GgmlType;
  const LanePlace at = lane_place(p);
  const int within = at.byte % 32;  // 4k + j
  if (type == GgmlType::Q6_K)
    return ((b[at.byte] >> at.shift) & 0x0F) | ((b[128 + 32 * (at.t / 2) + within] >> (2 * (2 * (at.t % 2) + at.h))) & 3) << 4;
  int u = (b[(type == GgmlType::Q5_K ? 48 : 16) + at.byte] >> at.shift) & 0x0F;
  if (type == GgmlType::Q5_K) u |= ((b[16 + within] >> (at.t + 4 * at.h)) & 1) << 4;
  return u;
}

// The bytes of a block that hold quants (zeroed before the writers OR into them); the rest (d,
// dmin, scales) is copied as it is.
struct QuantBytes {
  size_t begin, end;
};

QuantBytes quant_bytes(ggml::GgmlType type) {
  using ggml::GgmlType;
  switch (type) {
    case GgmlType::Q4_K: return {16, 144};
    case GgmlType::Q5_K: return {16, 176};
    case GgmlType::Q6_K: return {0, 192};
    default: fail("lane layout: GGML type ", ggml::ggml_type_name(type), " has none (Q4_K, Q5_K, Q6_K)");
  }
}

// 8 bytes from p as the two 32-bit halves of a 64-bit word.
struct Halves {
  uint32_t lo, hi;
};

Halves halves(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return {uint32_t(v), uint32_t(v >> 32)};
}

void or_word(uint8_t* p, uint32_t v) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  w |= v;
  std::memcpy(p, &w, 4);
}

// One block into lanes, 4 values at a time: the 4 values 32k + 8t + 4h + j (j < 4) of vector t's
// word k are 4 consecutive bytes of the file's quants (in the low or the high nibbles), so each of
// the block's 8-byte groups gives two words.
void pack_block(ggml::GgmlType type, const uint8_t* in, uint8_t* out) {
  using ggml::GgmlType;
  constexpr uint32_t kLow = 0x0F0F0F0F;
  if (type == GgmlType::Q6_K) {
    for (int k = 0; k < 8; ++k)
      for (int t = 0; t < 4; ++t) {
        const int half = k / 4, g = k % 4;
        // The low nibbles: ql bytes 64 half + 32 (g % 2) + 8t .., nibble g / 2.
        Halves q = halves(in + 64 * half + 32 * (g % 2) + 8 * t);
        if (g >= 2) q.lo >>= 4, q.hi >>= 4;
        or_word(out + 32 * t + 4 * k, (q.lo & kLow) | (q.hi & kLow) << 4);
        // The high bits: bits 2g, 2g + 1 of qh bytes 32 half + 8t .., to bits 2 (2 (t % 2) + h).
        Halves h = halves(in + 128 + 32 * half + 8 * t);
        const uint32_t lo = (h.lo >> (2 * g)) & 0x03030303, hi = (h.hi >> (2 * g)) & 0x03030303;
        or_word(out + 128 + 32 * (t / 2) + 4 * k, lo << (4 * (t % 2)) | hi << (4 * (t % 2) + 2));
      }
    return;
  }
  const bool five = type == GgmlType::Q5_K;
  const uint8_t* qs = in + (five ? 48 : 16);
  uint8_t* qs_out = out + (five ? 48 : 16);
  for (int c = 0; c < 4; ++c)
    for (int t = 0; t < 4; ++t) {
      // Sub-blocks 2c (low nibbles) and 2c + 1 (high) of bytes 32c + 8t ...
      const Halves q = halves(qs + 32 * c + 8 * t);
      or_word(qs_out + 32 * t + 8 * c, (q.lo & kLow) | (q.hi & kLow) << 4);
      or_word(qs_out + 32 * t + 8 * c + 4, ((q.lo >> 4) & kLow) | (q.hi & ~kLow));
    }
  if (five)
    for (int k = 0; k < 8; ++k)
      for (int t = 0; t < 4; ++t) {
        // Bit k of qh bytes 8t .., to bit t (values 8t + j) and bit 4 + t (8t + 4 + j).
        const Halves h = halves(in + 16 + 8 * t);
        or_word(out + 16 + 4 * k, ((h.lo >> k) & 0x01010101) << t | ((h.hi >> k) & 0x01010101) << (4 + t));
      }
}

template <bool kToLanes>
void reorder(ggml::GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst) {
  const QuantBytes q = quant_bytes(type);
  const size_t bytes = ggml::ggml_type_info(type).type_size;
  uint8_t in[256], out[256];
  for (int64_t i = 0; i < n_blocks; ++i) {
    std::memcpy(in, src + size_t(i) * bytes, bytes);
    std::memcpy(out, in, bytes);
    std::memset(out + q.begin, 0, q.end - q.begin);
    if constexpr (kToLanes) {
      pack_block(type, in, out);
    } else {
      for (int p = 0; p < 256; ++p) set_file_quant(type, out, p, lane_quant(type, in, p));
    }
    std::memcpy(dst + size_t(i) * bytes, out, bytes);
  }
}

}  // namespace

bool k_lanes_type(ggml::GgmlType type) {
  return type == ggml::GgmlType::Q4_K || type == ggml::GgmlType::Q5_K || type == ggml::GgmlType::Q6_K;
}

bool k_lanes_available() { return k_dot_best_isa() >= KDotIsa::kAvx2; }

void k_lanes_pack(ggml::GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst) {
  reorder<true>(type, src, n_blocks, dst);
}

void k_lanes_unpack(ggml::GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst) {
  reorder<false>(type, src, n_blocks, dst);
}

void quantize_row_q8k_lanes(const float* x, int64_t n, Q8KLanesBlock* out) {
  WICK_CHECK(n % kQ8KBlockSize == 0, "lane blocks: ", n, " values are not a multiple of 256");
  Q8KBlock block;
  for (int64_t b = 0; b < n / kQ8KBlockSize; ++b) {
    quantize_row_q8k(x + b * kQ8KBlockSize, kQ8KBlockSize, &block);
    Q8KLanesBlock& o = out[b];
    // 4-byte groups: group 8k + 2t + h of the values is group 16t + 8h + k of the lanes.
    for (int k = 0; k < 8; ++k)
      for (int t = 0; t < 4; ++t)
        for (int h = 0; h < 2; ++h) std::memcpy(o.q + 64 * t + 32 * h + 4 * k, block.q + 32 * k + 8 * t + 4 * h, 4);
    for (int k = 0; k < 8; ++k) {
      o.s16[k] = 32 * int32_t(block.sum[2 * k]);
      o.s16[8 + k] = 32 * int32_t(block.sum[2 * k + 1]);
      o.ds32[k] = block.d * float(int32_t(block.sum[2 * k]) + int32_t(block.sum[2 * k + 1]));
    }
    o.d = block.d;
    std::memset(o.padding, 0, sizeof(o.padding));
  }
}

RowsDotLanesFn rows_dot_lanes_kernel(ggml::GgmlType type, KDotIsa isa) {
  WICK_CHECK(k_lanes_type(type), "lane layout: GGML type ", ggml::ggml_type_name(type), " has none (Q4_K, Q5_K, Q6_K)");
  WICK_CHECK(isa != KDotIsa::kScalar && int(isa) <= int(k_dot_best_isa()),
             "lane layout: its kernels need AVX2 (with AVX512-VNNI for the fused one) and this CPU or the ",
             "kernel asked for has not");
  RowsDotLanesFn f = isa == KDotIsa::kAvx512Vnni ? detail::rows_dot_lanes_vnni(type) : detail::rows_dot_lanes_avx2(type);
  WICK_CHECK(f != nullptr, "lane layout: no kernel for ", ggml::ggml_type_name(type));
  return f;
}

}  // namespace wick::cpu
