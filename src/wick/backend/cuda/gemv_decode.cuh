// How the skinny-product kernels read each weight format: which k positions a thread owns in a
// step of 32, and the decoders that turn one GGML block's bytes into integer quants plus an affine
// (scale, min) per group. Host and device code, so the host tests check every decoder against
// ggml::dequantize_to_f32 without a GPU.
//
// A step covers 32 consecutive k of one weight row and feeds two tensor-core products of k = 16
// (mma.m16n8k16, "halves" 0 and 1). The reduction over k may visit k in any order as long as the
// weights and the activations agree, so each format picks the order its bytes come in: lane t of
// a quad (t = lane % 4) owns 4 consecutive k per half, starting at
//   Contig8:  8t (half 0) and 8t + 4 (half 1)         - for formats with one scale per 32
//   Split16:  4t (half 0) and 16 + 4t (half 1)        - half 0 is k 0..15 of the step, half 1 k 16..31,
//                                                       so formats with a scale per 16 get one per half
// A decoder returns, per half, the 4 quants as bytes of a u32 (byte e is k = start + e) and the
// affine of their group: w = scale * (q - kZeroPoint) - min. Every load keeps the alignment the
// format's layout guarantees (blocks of 18, 22, 34, 110 or 210 bytes are only 2-byte aligned), so
// the decoders read global memory and the kernels' shared-memory copies (which keep each byte's
// address modulo 16) alike.
#pragma once

#include <cstdint>
#include <cstring>

#include "wick/base/ggml_quants.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define WICK_HD __host__ __device__ __forceinline__
#else
#define WICK_HD inline
#endif
#if !defined(__CUDA_ARCH__)
#include "wick/base/half.h"
#endif

namespace wick::cuda::gemv {

enum class SlotLayout { Contig8, Split16 };

// First k (within the 32-k step) of the 4 that quad lane t owns in `half`.
template <SlotLayout L>
WICK_HD int slot_start(int t, int half) {
  return L == SlotLayout::Contig8 ? 8 * t + 4 * half : 16 * half + 4 * t;
}

struct QuantStep {
  uint32_t q[2];   // per half: 4 quant bytes (unsigned, or int8 where the format says kSigned)
  float scale[2];  // per half; equal when the format has one scale per 32
  float min[2];
};

// ---- loads at the alignment a layout guarantees (bytes are little-endian, as GGUF stores them)
WICK_HD uint32_t ld_u16(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint16_t*>(p);
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}
WICK_HD uint32_t ld_u32(const uint8_t* p) {  // 4-byte aligned
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint32_t*>(p);
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}
WICK_HD uint32_t ld_u32_a2(const uint8_t* p) { return ld_u16(p) | ld_u16(p + 2) << 16; }  // 2-byte aligned

WICK_HD float half_bits_to_float(uint32_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(uint16_t(h)));
#else
  return f16::to_float(uint16_t(h));
#endif
}

// Bit i of the low 4 bits of b moved to bit 0 of byte i (the four shifted copies of b do not
// overlap, so the multiply carries nothing between them).
WICK_HD uint32_t spread4(uint32_t b) { return (b * 0x00204081u) & 0x01010101u; }

// ---- 32-element blocks

// Q4_0: f16 d, 16 bytes of nibbles (element j < 16: low nibble of byte j; j >= 16: high nibble
// of byte j - 16); w = d * (q - 8). Split16 puts lane t's half 0 in the low nibbles of bytes
// 4t..4t+3 and half 1 in their high nibbles.
struct DecQ4_0 {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q4_0;
  static constexpr int kUnitK = 32, kUnitBytes = 18, kZeroPoint = 8, kChunkUnits = 8;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = false, kHasMin = false, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int /*s*/, int t) {
    uint32_t w = ld_u32_a2(b + 2 + 4 * t);
    float d = half_bits_to_float(ld_u16(b));
    return {{w & 0x0F0F0F0Fu, (w >> 4) & 0x0F0F0F0Fu}, {d, d}, {0.0f, 0.0f}};
  }
};

// Q4_1: f16 d, f16 m, nibbles as Q4_0; w = d * q + m.
struct DecQ4_1 {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q4_1;
  static constexpr int kUnitK = 32, kUnitBytes = 20, kZeroPoint = 0, kChunkUnits = 8;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = false, kHasMin = true, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int /*s*/, int t) {
    uint32_t dm = ld_u32(b), w = ld_u32(b + 4 + 4 * t);
    float d = half_bits_to_float(dm & 0xFFFF), m = half_bits_to_float(dm >> 16);
    return {{w & 0x0F0F0F0Fu, (w >> 4) & 0x0F0F0F0Fu}, {d, d}, {-m, -m}};
  }
};

// Q5_0: f16 d, u32 qh (bit j: the fifth bit of element j), nibbles as Q4_0; w = d * (q - 16).
struct DecQ5_0 {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q5_0;
  static constexpr int kUnitK = 32, kUnitBytes = 22, kZeroPoint = 16, kChunkUnits = 8;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = false, kHasMin = false, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int /*s*/, int t) {
    uint32_t qh = ld_u32_a2(b + 2), w = ld_u32_a2(b + 6 + 4 * t);
    float d = half_bits_to_float(ld_u16(b));
    uint32_t lo = (w & 0x0F0F0F0Fu) | spread4((qh >> (4 * t)) & 0xF) << 4;
    uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16 + 4 * t)) & 0xF) << 4;
    return {{lo, hi}, {d, d}, {0.0f, 0.0f}};
  }
};

// Q5_1: f16 d, f16 m, u32 qh, nibbles; w = d * q + m.
struct DecQ5_1 {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q5_1;
  static constexpr int kUnitK = 32, kUnitBytes = 24, kZeroPoint = 0, kChunkUnits = 8;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = false, kHasMin = true, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int /*s*/, int t) {
    uint32_t dm = ld_u32(b), qh = ld_u32(b + 4), w = ld_u32(b + 8 + 4 * t);
    float d = half_bits_to_float(dm & 0xFFFF), m = half_bits_to_float(dm >> 16);
    uint32_t lo = (w & 0x0F0F0F0Fu) | spread4((qh >> (4 * t)) & 0xF) << 4;
    uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16 + 4 * t)) & 0xF) << 4;
    return {{lo, hi}, {d, d}, {-m, -m}};
  }
};

// Q8_0: f16 d, 32 int8; w = q * d.
struct DecQ8_0 {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q8_0;
  static constexpr int kUnitK = 32, kUnitBytes = 34, kZeroPoint = 0, kChunkUnits = 4;
  static constexpr SlotLayout kLayout = SlotLayout::Contig8;
  static constexpr bool kScalePer16 = false, kHasMin = false, kSigned = true;
  static WICK_HD QuantStep step(const uint8_t* b, int /*s*/, int t) {
    float d = half_bits_to_float(ld_u16(b));
    return {{ld_u32_a2(b + 2 + 8 * t), ld_u32_a2(b + 6 + 8 * t)}, {d, d}, {0.0f, 0.0f}};
  }
};

// ---- 256-element K-quant super-blocks, in 8 steps of 32

// Q2_K: 16 scale bytes (low nibble scale, high nibble min, one per 16 elements), 64 bytes of 2-bit
// quants, f16 d, f16 dmin. Step s = 4h + sh holds elements 128h + 32sh + l, whose quant is
// (qs[32h + l] >> 2sh) & 3; w = d * scale - dmin * min of sub-block 8h + 2sh (+1 for l >= 16).
struct DecQ2_K {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q2_K;
  static constexpr int kUnitK = 256, kUnitBytes = 84, kZeroPoint = 0, kChunkUnits = 2;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = true, kHasMin = true, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int s, int t) {
    int h = s >> 2, sh = s & 3;
    uint32_t qa = ld_u32(b + 16 + 32 * h + 4 * t), qb = ld_u32(b + 32 + 32 * h + 4 * t);
    uint32_t sc = ld_u16(b + 8 * h + 2 * sh);  // the bytes of sub-blocks 8h + 2sh and the next
    uint32_t dd = ld_u32(b + 80);
    float d = half_bits_to_float(dd & 0xFFFF), dmin = half_bits_to_float(dd >> 16);
    QuantStep st;
    st.q[0] = (qa >> (2 * sh)) & 0x03030303u;
    st.q[1] = (qb >> (2 * sh)) & 0x03030303u;
    st.scale[0] = d * float(sc & 0xF);
    st.min[0] = dmin * float((sc >> 4) & 0xF);
    st.scale[1] = d * float((sc >> 8) & 0xF);
    st.min[1] = dmin * float(sc >> 12);
    return st;
  }
};

// Q3_K: 32 bytes hmask, 64 bytes 2-bit low quants (laid out as Q2_K's), 12 bytes of 6-bit signed
// scales, f16 d. The quant of element 128h + 32sh + l is low | hbit << 2 with hbit = (hmask[l] >>
// (4h + sh)) & 1, zero point 4 (the reference's "low - 4 when the bit is clear"). Scale i: low 4 bits
// from byte i % 8 (nibble i / 8), high 2 bits from byte 8 + i % 4 (bits 2 * (i / 4)), minus 32.
struct DecQ3_K {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q3_K;
  static constexpr int kUnitK = 256, kUnitBytes = 110, kZeroPoint = 4, kChunkUnits = 2;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = true, kHasMin = false, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int s, int t) {
    int h = s >> 2, sh = s & 3, bit = 4 * h + sh;
    uint32_t qa = ld_u32_a2(b + 32 + 32 * h + 4 * t), qb = ld_u32_a2(b + 48 + 32 * h + 4 * t);
    uint32_t ma = ld_u32_a2(b + 4 * t), mb = ld_u32_a2(b + 16 + 4 * t);
    // Scales i = 8h + 2sh and i + 1: i % 8 = 2sh (+1), i / 8 = h; i % 4 = 2sh % 4 (+1), i / 4 = 2h + sh / 2.
    uint32_t low = ld_u16(b + 96 + 2 * sh), high = ld_u16(b + 104 + (2 * sh) % 4);
    int nib = 4 * h, pair = 2 * (2 * h + (sh >> 1));
    float d = half_bits_to_float(ld_u16(b + 108));
    QuantStep st;
    st.q[0] = ((qa >> (2 * sh)) & 0x03030303u) | ((ma >> bit) & 0x01010101u) << 2;
    st.q[1] = ((qb >> (2 * sh)) & 0x03030303u) | ((mb >> bit) & 0x01010101u) << 2;
    int s0 = int(((low >> nib) & 0xF) | ((high >> pair) & 0x3) << 4) - 32;
    int s1 = int(((low >> (8 + nib)) & 0xF) | ((high >> (8 + pair)) & 0x3) << 4) - 32;
    st.scale[0] = d * float(s0);
    st.scale[1] = d * float(s1);
    st.min[0] = st.min[1] = 0.0f;
    return st;
  }
};

// Scale and min (6 bits each) of sub-block s of the 12-byte packing shared by Q4_K and Q5_K:
// bytes 0-3 hold scales 0-3 and the top 2 bits of scales 4-7, bytes 4-7 the same for the mins,
// bytes 8-11 the low 4 bits of scale (low nibble) and min (high nibble) 4-7.
WICK_HD void k_scale_min(const uint8_t* p, int s, int& sc, int& mn) {
  uint32_t w0 = ld_u32(p), w1 = ld_u32(p + 4), w2 = ld_u32(p + 8);
  if (s < 4) {
    sc = int((w0 >> (8 * s)) & 0x3F);
    mn = int((w1 >> (8 * s)) & 0x3F);
  } else {
    int i = 8 * (s - 4);
    sc = int(((w2 >> i) & 0xF) | ((w0 >> (i + 6)) & 0x3) << 4);
    mn = int(((w2 >> (i + 4)) & 0xF) | ((w1 >> (i + 6)) & 0x3) << 4);
  }
}

// Q4_K: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles. Step s is sub-block s:
// bytes 32 * (s / 2) .. + 31 of the nibbles, low nibbles for even s; w = d * sc * q - dmin * mn.
struct DecQ4_K {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q4_K;
  static constexpr int kUnitK = 256, kUnitBytes = 144, kZeroPoint = 0, kChunkUnits = 1;
  static constexpr SlotLayout kLayout = SlotLayout::Contig8;
  static constexpr bool kScalePer16 = false, kHasMin = true, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int s, int t) {
    const uint8_t* qs = b + 16 + 32 * (s >> 1) + 8 * t;
    int shift = 4 * (s & 1), sc, mn;
    k_scale_min(b + 4, s, sc, mn);
    uint32_t dd = ld_u32(b);
    float a = half_bits_to_float(dd & 0xFFFF) * float(sc), m = half_bits_to_float(dd >> 16) * float(mn);
    return {{(ld_u32(qs) >> shift) & 0x0F0F0F0Fu, (ld_u32(qs + 4) >> shift) & 0x0F0F0F0Fu}, {a, a}, {m, m}};
  }
};

// Q5_K: as Q4_K with 32 bytes qh before the nibbles: bit s of qh[l] is the fifth bit of element l
// of sub-block s.
struct DecQ5_K {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q5_K;
  static constexpr int kUnitK = 256, kUnitBytes = 176, kZeroPoint = 0, kChunkUnits = 1;
  static constexpr SlotLayout kLayout = SlotLayout::Contig8;
  static constexpr bool kScalePer16 = false, kHasMin = true, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int s, int t) {
    const uint8_t* qs = b + 48 + 32 * (s >> 1) + 8 * t;
    const uint8_t* qh = b + 16 + 8 * t;
    int shift = 4 * (s & 1), sc, mn;
    k_scale_min(b + 4, s, sc, mn);
    uint32_t dd = ld_u32(b);
    float a = half_bits_to_float(dd & 0xFFFF) * float(sc), m = half_bits_to_float(dd >> 16) * float(mn);
    uint32_t lo = ((ld_u32(qs) >> shift) & 0x0F0F0F0Fu) | ((ld_u32(qh) >> s) & 0x01010101u) << 4;
    uint32_t hi = ((ld_u32(qs + 4) >> shift) & 0x0F0F0F0Fu) | ((ld_u32(qh + 4) >> s) & 0x01010101u) << 4;
    return {{lo, hi}, {a, a}, {m, m}};
  }
};

// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales, f16 d. Element
// 128h + 32sh + l: low nibble of ql[64h + 32 (sh % 2) + l] (the high nibble when sh >= 2), high bits
// (qh[32h + l] >> 2sh) & 3, zero point 32, scale 8h + 2sh (+1 for l >= 16).
struct DecQ6_K {
  static constexpr ggml::GgmlType kType = ggml::GgmlType::Q6_K;
  static constexpr int kUnitK = 256, kUnitBytes = 210, kZeroPoint = 32, kChunkUnits = 1;
  static constexpr SlotLayout kLayout = SlotLayout::Split16;
  static constexpr bool kScalePer16 = true, kHasMin = false, kSigned = false;
  static WICK_HD QuantStep step(const uint8_t* b, int s, int t) {
    int h = s >> 2, sh = s & 3, nib = 4 * (sh >> 1);
    const uint8_t* ql = b + 64 * h + 32 * (sh & 1) + 4 * t;
    const uint8_t* qh = b + 128 + 32 * h + 4 * t;
    uint32_t sc = ld_u16(b + 192 + 8 * h + 2 * sh);
    float d = half_bits_to_float(ld_u16(b + 208));
    QuantStep st;
    st.q[0] = ((ld_u32_a2(ql) >> nib) & 0x0F0F0F0Fu) | ((ld_u32_a2(qh) >> (2 * sh)) & 0x03030303u) << 4;
    st.q[1] = ((ld_u32_a2(ql + 16) >> nib) & 0x0F0F0F0Fu) | ((ld_u32_a2(qh + 16) >> (2 * sh)) & 0x03030303u) << 4;
    st.scale[0] = d * float(int(int8_t(sc & 0xFF)));
    st.scale[1] = d * float(int(int8_t(sc >> 8)));
    st.min[0] = st.min[1] = 0.0f;
    return st;
  }
};

// Dense rows of T (2-byte bf16/f16 bits as uint16_t, or float): lane t reads k 8t..8t+7 of each 32.
template <typename T>
struct DecDense {
  static constexpr int kUnitK = 32, kUnitBytes = 32 * int(sizeof(T)), kChunkUnits = 8 / (sizeof(T) / 2);
  static constexpr SlotLayout kLayout = SlotLayout::Contig8;
};

// Element e (0-3) of a half as a float: q - zero point, exact.
template <class Dec>
WICK_HD float quant_value(uint32_t q, int e) {
  uint32_t byte = (q >> (8 * e)) & 0xFF;
  if constexpr (Dec::kSigned)
    return float(int(int8_t(byte)));
  else
    return float(int(byte) - Dec::kZeroPoint);
}

// ---- quants to tensor-core operands: 4 quant bytes -> two bf16x2 / f16x2 registers holding
// (q0, q1) and (q2, q3) minus the zero point, exact (small integers). An unsigned byte b becomes
// the 16-bit float 128 + b (bf16 bits 0x43bb, b < 128) or 1024 + b (f16 bits 0x64bb) by placing it
// under a constant exponent byte; one packed subtraction then removes the offset and the zero point.
enum class Operand { BF16, F16 };

WICK_HD uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t selector) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, y, selector);
#else
  uint64_t both = uint64_t(y) << 32 | x;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= uint32_t((both >> (8 * ((selector >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return r;
#endif
}

// a - b for both halves of two packed 16-bit floats (exact here: small integers).
template <Operand O>
WICK_HD uint32_t sub_pairs(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  if constexpr (O == Operand::BF16) {
    __nv_bfloat162 r = __hsub2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    __half2 r = __hsub2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
#else
  auto to_f = [](uint32_t h) { return O == Operand::BF16 ? bits_float(h << 16) : f16::to_float(uint16_t(h)); };
  auto from_f = [](float f) { return uint32_t(O == Operand::BF16 ? bf16::from_float(f) : f16::from_float(f)); };
  return from_f(to_f(a & 0xFFFF) - to_f(b & 0xFFFF)) | from_f(to_f(a >> 16) - to_f(b >> 16)) << 16;
#endif
}

template <Operand O>
WICK_HD uint32_t pack_pair(float lo, float hi) {
#if defined(__CUDA_ARCH__)
  if constexpr (O == Operand::BF16) {
    __nv_bfloat162 r = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    __half2 r = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&r);
  }
#else
  if constexpr (O == Operand::BF16)
    return uint32_t(bf16::from_float(lo)) | uint32_t(bf16::from_float(hi)) << 16;
  else
    return uint32_t(f16::from_float(lo)) | uint32_t(f16::from_float(hi)) << 16;
#endif
}

template <class Dec, Operand O>
WICK_HD void quant_pairs(uint32_t q, uint32_t& lo, uint32_t& hi) {
  if constexpr (Dec::kSigned && O == Operand::BF16) {
    // int8 does not fit under a bf16 exponent byte (7 mantissa bits): convert through float.
    lo = pack_pair<O>(float(int(int8_t(q & 0xFF))), float(int(int8_t((q >> 8) & 0xFF))));
    hi = pack_pair<O>(float(int(int8_t((q >> 16) & 0xFF))), float(int(int8_t(q >> 24))));
  } else {
    constexpr bool kBf16 = O == Operand::BF16;
    // int8 + 128 is an unsigned byte; f16's 10 mantissa bits hold it.
    constexpr uint32_t kFlip = Dec::kSigned ? 0x80808080u : 0u;
    constexpr uint32_t kOffset = (kBf16 ? 0x4300u : 0x6400u) + uint32_t(Dec::kZeroPoint + (Dec::kSigned ? 128 : 0));
    constexpr uint32_t kExponents = kBf16 ? 0x43434343u : 0x64646464u;
    static_assert(kBf16 ? Dec::kZeroPoint < 128 : Dec::kZeroPoint + 128 < 1024, "offset must stay exact");
    uint32_t u = q ^ kFlip;
    lo = sub_pairs<O>(byte_perm(u, kExponents, 0x5140), kOffset | kOffset << 16);
    hi = sub_pairs<O>(byte_perm(u, kExponents, 0x7362), kOffset | kOffset << 16);
  }
}

}  // namespace wick::cuda::gemv
