// Block layouts of GGML quantization types, their dequantizers and the 32-element quantizers.
//
// Each dequantizer reads one block and writes block_size floats; each quantizer reads block_size
// floats and writes one block. The arithmetic mirrors gguf-py/gguf/quants.py operation by operation
// (products formed in float32, in the same order; wick_base is built with -ffp-contract=off so
// no FMA changes a rounding), which is what makes the golden tests exact. QK_K = 256 for the
// K-quants ("super-blocks" of 16 or 8 sub-blocks).
#include "wick/base/ggml_quants.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "wick/base/error.h"
#include "wick/base/half.h"

namespace wick::ggml {

// The 12-byte packing of eight 6-bit scales and eight 6-bit mins shared by Q4_K and Q5_K:
// bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same for
// mins; bytes 8-11 the low 4 bits of scale (low nibble) and min (high nibble) 4-7.
void k_scale_min(const uint8_t* p, uint8_t sc[8], uint8_t mn[8]) {
  for (int i = 0; i < 4; ++i) {
    sc[i] = p[i] & 0x3F;
    mn[i] = p[4 + i] & 0x3F;
    sc[4 + i] = uint8_t((p[8 + i] & 0x0F) | ((p[i] >> 2) & 0x30));
    mn[4 + i] = uint8_t((p[8 + i] >> 4) | ((p[4 + i] >> 2) & 0x30));
  }
}

namespace {

constexpr int64_t QK_K = 256;

// -- 32-element blocks ----------------------------------------------------------------------------

// Q4_0: f16 d, 16 bytes of nibbles; element j<16 is the low nibble of byte j, j>=16 the high
// nibble of byte j-16; value = d * (q - 8).
void deq_q4_0(const uint8_t* b, float* y) {
  float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(int(qs[j] & 0x0F) - 8);
    y[j + 16] = d * float(int(qs[j] >> 4) - 8);
  }
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0; value = d * q + m.
void deq_q4_1(const uint8_t* b, float* y) {
  float d = f16_at(b), m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(qs[j] & 0x0F) + m;
    y[j + 16] = d * float(qs[j] >> 4) + m;
  }
}

uint32_t u32_at(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

// Q5_0: f16 d, u32 qh (bit j = 5th bit of element j), nibbles as Q4_0; value = d * (q - 16).
void deq_q5_0(const uint8_t* b, float* y) {
  float d = f16_at(b);
  uint32_t qh = u32_at(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    int lo = (qs[j] & 0x0F) | int((qh >> j) & 1) << 4;
    int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = d * float(lo - 16);
    y[j + 16] = d * float(hi - 16);
  }
}

// Q5_1: f16 d, f16 m, u32 qh, nibbles; value = d * q + m.
void deq_q5_1(const uint8_t* b, float* y) {
  float d = f16_at(b), m = f16_at(b + 2);
  uint32_t qh = u32_at(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    int lo = (qs[j] & 0x0F) | int((qh >> j) & 1) << 4;
    int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = d * float(lo) + m;
    y[j + 16] = d * float(hi) + m;
  }
}

// Q8_0: f16 d, 32 int8; value = q * d.
void deq_q8_0(const uint8_t* b, float* y) {
  float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

// -- 256-element K-quant super-blocks -------------------------------------------------------------

// Q2_K: 16 bytes scales (low nibble: scale, high nibble: min, one per 16 elements), 64 bytes of
// 2-bit quants, f16 d, f16 dmin. Element j: half h = j/128, shift s = (j%128)/32, lane l = j%32,
// q = (qs[32h + l] >> 2s) & 3; value = (d*sc) * q - (dmin*m) for sub-block j/16.
void deq_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int64_t j = 0; j < QK_K; ++j) {
    int sub = int(j / 16);
    float dl = d * float(scales[sub] & 0x0F);
    float ml = dmin * float(scales[sub] >> 4);
    int h = int(j / 128), s = int(j % 128) / 32, l = int(j % 32);
    int q = (qs[32 * h + l] >> (2 * s)) & 3;
    y[j] = dl * float(q) - ml;
  }
}

// Q3_K: 32 bytes hmask, 64 bytes 2-bit low quants, 12 bytes of 6-bit signed scales, f16 d.
// Element j: low bits as Q2_K; high bit (hmask[j%32] >> j/32) & 1, and the quant is low - 4 when
// that bit is 0 (the reference notes the inverted sense). Scale i (16 of them): low 4 bits from
// byte i%8 (nibble i/8), high 2 bits from byte 8 + i%4 (bits 2*(i/4)); minus 32.
void deq_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  float d = f16_at(b + 108);
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    int low = (sc[i % 8] >> (4 * (i / 8))) & 0x0F;
    int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    dl[i] = d * float((low | high << 4) - 32);
  }
  for (int64_t j = 0; j < QK_K; ++j) {
    int h = int(j / 128), s = int(j % 128) / 32, l = int(j % 32);
    int low = (qs[32 * h + l] >> (2 * s)) & 3;
    int hbit = (hmask[l] >> (j / 32)) & 1;
    y[j] = dl[j / 16] * float(low - ((hbit ^ 1) << 2));
  }
}

// Q4_K: f16 d, f16 dmin, 12 bytes scales/mins, 128 bytes nibbles. Sub-block k (32 elements):
// byte chunk k/2, low nibble for even k, high for odd; value = (d*sc[k]) * q - (dmin*m[k]).
void deq_q4_k(const uint8_t* b, float* y) {
  float d = f16_at(b), dmin = f16_at(b + 2);
  uint8_t sc[8], mn[8];
  k_scale_min(b + 4, sc, mn);
  const uint8_t* qs = b + 16;
  for (int k = 0; k < 8; ++k) {
    float dk = d * float(sc[k]);
    float mk = dmin * float(mn[k]);
    const uint8_t* chunk = qs + 32 * (k / 2);
    int shift = 4 * (k % 2);
    for (int l = 0; l < 32; ++l) y[32 * k + l] = dk * float((chunk[l] >> shift) & 0x0F) - mk;
  }
}

// Q5_K: as Q4_K plus 32 bytes qh before the nibbles; bit k of qh[l] is the 5th bit of element
// 32k + l.
void deq_q5_k(const uint8_t* b, float* y) {
  float d = f16_at(b), dmin = f16_at(b + 2);
  uint8_t sc[8], mn[8];
  k_scale_min(b + 4, sc, mn);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int k = 0; k < 8; ++k) {
    float dk = d * float(sc[k]);
    float mk = dmin * float(mn[k]);
    const uint8_t* chunk = qs + 32 * (k / 2);
    int shift = 4 * (k % 2);
    for (int l = 0; l < 32; ++l) {
      int q = ((chunk[l] >> shift) & 0x0F) | ((qh[l] >> k) & 1) << 4;
      y[32 * k + l] = dk * float(q) - mk;
    }
  }
}

// Q6_K: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d.
// Element j: half h = j/128, r = j%128; low nibble of ql[64h + r%64] (high nibble when r >= 64);
// high bits (qh[32h + r%32] >> 2*(r/32)) & 3; value = (d*scale[j/16]) * (q - 32).
void deq_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  float d = f16_at(b + 208);
  for (int64_t j = 0; j < QK_K; ++j) {
    int h = int(j / 128), r = int(j % 128);
    int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
    float dl = d * float(scales[j / 16]);
    y[j] = dl * float((low | high << 4) - 32);
  }
}

// -- quantizers of the 32-element blocks ------------------------------------------------------------
//
// gguf-py's quantize_blocks, one block at a time. d and m are stored as f16 rounded to nearest even
// with overflow to inf, as numpy's astype(np.float16) (f16::from_float matches it for every non-NaN
// float32, checked exhaustively). Non-finite input follows numpy where that is cheap (a NaN wins the
// argmax and propagates through min/max) but is not promised identical bytes: numpy's NaN signs
// vary with its vectorized reductions.

void store_f16(uint8_t* p, float v) {
  uint16_t h = f16::from_float(v);
  p[0] = uint8_t(h);
  p[1] = uint8_t(h >> 8);
}

// numpy's float32 -> int8/uint8 cast as it runs on x86-64: truncation through a 32-bit cvttss2si,
// then the low byte, so NaN and +-inf become 0 (the "integer indefinite" 0x80000000). They occur only
// when 1/d overflowed (a block whose largest |x| is below ~4e-37) or the input is not finite; any
// finite value met here is small (|t| < 129), so the int conversion is exact and defined.
int numpy_int(float t) { return std::isfinite(t) ? int(t) : 0; }

// trunc(v).astype(np.uint8).clip(0, q_max).
uint8_t clipped_quant(float v, int q_max) {
  return uint8_t(std::min(int(uint8_t(numpy_int(std::trunc(v)))), q_max));
}

// The reference's np_roundf (round half away from zero), in its float32 steps.
float np_roundf(float n) {
  float a = std::fabs(n);
  float floored = std::floor(a);
  float b = floored + std::floor(2.0f * (a - floored));
  return float(int(n > 0.0f) - int(n < 0.0f)) * b;  // np.sign(n) * b
}

// The element of largest magnitude, signed (argmax of abs: the first on ties; a NaN wins).
float largest_magnitude(const float* x) {
  int best = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::isnan(x[j])) return x[j];
    if (std::fabs(x[j]) > std::fabs(x[best])) best = j;
  }
  return x[best];
}

// numpy's min and max (a NaN propagates). On ties the first element is kept, as in ggml-quants.c.
void min_max(const float* x, float& mn, float& mx) {
  mn = mx = x[0];
  for (int j = 0; j < 32; ++j) {
    if (std::isnan(x[j])) {
      mn = mx = x[j];
      return;
    }
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
}

// Element j in the low nibble of byte j, element j+16 in the high nibble; for 5-bit quants, bit 4
// of element j is bit j of the little-endian u32 qh (np.packbits(..., bitorder="little")).
void pack_nibbles(const uint8_t q[32], uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 0x0F) | (q[j + 16] << 4));
}
void pack_high_bits(const uint8_t q[32], uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < 32; ++j) bits |= uint32_t(q[j] >> 4) << j;
  for (int i = 0; i < 4; ++i) qh[i] = uint8_t(bits >> (8 * i));
}

// Symmetric 4/5-bit (half = 8 or 16): d = (signed largest) / -half, q = trunc(x * (1/d) + half +
// 0.5) clipped to 2*half - 1, so the largest element gets q = 0.
void quant_symmetric(const float* x, uint8_t q[32], float& d, int half) {
  d = largest_magnitude(x) / float(-half);
  float id = d == 0.0f ? 0.0f : 1.0f / d;
  for (int j = 0; j < 32; ++j) q[j] = clipped_quant(x[j] * id + (float(half) + 0.5f), 2 * half - 1);
}

// Affine 4/5-bit: d = (max - min) / q_max, m = min, q = trunc((x - min) * (1/d) + 0.5).
void quant_affine(const float* x, uint8_t q[32], float& d, float& m, int q_max) {
  float mx;
  min_max(x, m, mx);
  d = (mx - m) / float(q_max);
  float id = d == 0.0f ? 0.0f : 1.0f / d;
  for (int j = 0; j < 32; ++j) q[j] = clipped_quant((x[j] - m) * id + 0.5f, q_max);
}

void quant_q4_0(const float* x, uint8_t* b) {
  uint8_t q[32];
  float d;
  quant_symmetric(x, q, d, 8);
  store_f16(b, d);
  pack_nibbles(q, b + 2);
}

void quant_q4_1(const float* x, uint8_t* b) {
  uint8_t q[32];
  float d, m;
  quant_affine(x, q, d, m, 15);
  store_f16(b, d);
  store_f16(b + 2, m);
  pack_nibbles(q, b + 4);
}

void quant_q5_0(const float* x, uint8_t* b) {
  uint8_t q[32];
  float d;
  quant_symmetric(x, q, d, 16);
  store_f16(b, d);
  pack_high_bits(q, b + 2);
  pack_nibbles(q, b + 6);
}

void quant_q5_1(const float* x, uint8_t* b) {
  uint8_t q[32];
  float d, m;
  quant_affine(x, q, d, m, 31);
  store_f16(b, d);
  store_f16(b + 2, m);
  pack_high_bits(q, b + 4);
  pack_nibbles(q, b + 8);
}

// Q8_0: d = max|x| / 127, q = round-half-away-from-zero(x * (1/d)) as int8.
void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    float a = std::fabs(x[j]);
    if (std::isnan(a)) {
      amax = a;
      break;
    }
    amax = std::max(amax, a);
  }
  float d = amax / 127.0f;
  float id = d == 0.0f ? 0.0f : 1.0f / d;
  store_f16(b, d);
  for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(numpy_int(np_roundf(x[j] * id))));
}

// -- plain element types ---------------------------------------------------------------------------

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // GGUF data may be unaligned for small types; little-endian host
  return v;
}

void deq_f32(const uint8_t* b, float* y) { *y = load<float>(b); }
void deq_f16(const uint8_t* b, float* y) { *y = f16_at(b); }
void deq_bf16(const uint8_t* b, float* y) { *y = bits_float(uint32_t(load<uint16_t>(b)) << 16); }
void deq_f64(const uint8_t* b, float* y) { *y = float(load<double>(b)); }
void deq_i8(const uint8_t* b, float* y) { *y = float(int8_t(*b)); }
void deq_i16(const uint8_t* b, float* y) { *y = float(load<int16_t>(b)); }
void deq_i32(const uint8_t* b, float* y) { *y = float(load<int32_t>(b)); }
void deq_i64(const uint8_t* b, float* y) { *y = float(load<int64_t>(b)); }

void quant_f32(const float* x, uint8_t* b) { std::memcpy(b, x, 4); }
void quant_f16(const float* x, uint8_t* b) { store_f16(b, *x); }
void quant_bf16(const float* x, uint8_t* b) {
  uint16_t h = bf16::from_float(*x);  // as gguf-py's BF16: NaN made quiet, else nearest even
  b[0] = uint8_t(h);
  b[1] = uint8_t(h >> 8);
}

using BlockFn = void (*)(const uint8_t*, float*);
using QuantizeBlockFn = void (*)(const float*, uint8_t*);

struct TypeEntry {
  GgmlType type;
  GgmlTypeInfo info;
  BlockFn dequantize;                  // nullptr: known layout, no dequantizer
  QuantizeBlockFn quantize = nullptr;  // nullptr: no quantizer
};

const std::array<TypeEntry, 32> kTypes = {{
    {GgmlType::F32, {"F32", 1, 4, true}, deq_f32, quant_f32},
    {GgmlType::F16, {"F16", 1, 2, true}, deq_f16, quant_f16},
    {GgmlType::Q4_0, {"Q4_0", 32, 18, true}, deq_q4_0, quant_q4_0},
    {GgmlType::Q4_1, {"Q4_1", 32, 20, true}, deq_q4_1, quant_q4_1},
    {GgmlType::Q5_0, {"Q5_0", 32, 22, true}, deq_q5_0, quant_q5_0},
    {GgmlType::Q5_1, {"Q5_1", 32, 24, true}, deq_q5_1, quant_q5_1},
    {GgmlType::Q8_0, {"Q8_0", 32, 34, true}, deq_q8_0, quant_q8_0},
    {GgmlType::Q8_1, {"Q8_1", 32, 40, false}, nullptr},
    {GgmlType::Q2_K, {"Q2_K", 256, 84, true}, deq_q2_k},
    {GgmlType::Q3_K, {"Q3_K", 256, 110, true}, deq_q3_k},
    {GgmlType::Q4_K, {"Q4_K", 256, 144, true}, deq_q4_k},
    {GgmlType::Q5_K, {"Q5_K", 256, 176, true}, deq_q5_k},
    {GgmlType::Q6_K, {"Q6_K", 256, 210, true}, deq_q6_k},
    {GgmlType::Q8_K, {"Q8_K", 256, 292, false}, nullptr},
    {GgmlType::IQ2_XXS, {"IQ2_XXS", 256, 66, false}, nullptr},
    {GgmlType::IQ2_XS, {"IQ2_XS", 256, 74, false}, nullptr},
    {GgmlType::IQ3_XXS, {"IQ3_XXS", 256, 98, false}, nullptr},
    {GgmlType::IQ1_S, {"IQ1_S", 256, 50, false}, nullptr},
    {GgmlType::IQ4_NL, {"IQ4_NL", 32, 18, false}, nullptr},
    {GgmlType::IQ3_S, {"IQ3_S", 256, 110, false}, nullptr},
    {GgmlType::IQ2_S, {"IQ2_S", 256, 82, false}, nullptr},
    {GgmlType::IQ4_XS, {"IQ4_XS", 256, 136, false}, nullptr},
    {GgmlType::I8, {"I8", 1, 1, true}, deq_i8},
    {GgmlType::I16, {"I16", 1, 2, true}, deq_i16},
    {GgmlType::I32, {"I32", 1, 4, true}, deq_i32},
    {GgmlType::I64, {"I64", 1, 8, true}, deq_i64},
    {GgmlType::F64, {"F64", 1, 8, true}, deq_f64},
    {GgmlType::IQ1_M, {"IQ1_M", 256, 56, false}, nullptr},
    {GgmlType::BF16, {"BF16", 1, 2, true}, deq_bf16, quant_bf16},
    {GgmlType::TQ1_0, {"TQ1_0", 256, 54, false}, nullptr},
    {GgmlType::TQ2_0, {"TQ2_0", 256, 66, false}, nullptr},
    {GgmlType::MXFP4, {"MXFP4", 32, 17, false}, nullptr},
}};

const TypeEntry* find_entry(uint32_t id) {
  for (const auto& e : kTypes) {
    if (uint32_t(e.type) == id) return &e;
  }
  return nullptr;
}

const TypeEntry& entry(GgmlType type) {
  const TypeEntry* e = find_entry(uint32_t(type));
  if (e == nullptr) fail("unknown GGML type id ", uint32_t(type));
  return *e;
}

}  // namespace

const GgmlTypeInfo* find_ggml_type(uint32_t id) {
  const TypeEntry* e = find_entry(id);
  return e == nullptr ? nullptr : &e->info;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) { return entry(type).info; }
std::string_view ggml_type_name(GgmlType type) { return entry(type).info.name; }

size_t ggml_nbytes(GgmlType type, int64_t n_elements) {
  const GgmlTypeInfo& info = ggml_type_info(type);
  if (n_elements < 0 || n_elements % info.block_size != 0)
    fail(info.name, ": ", n_elements, " elements is not a multiple of the block size ",
         info.block_size);
  return size_t(n_elements / info.block_size) * info.type_size;
}

void dequantize_to_f32(GgmlType type, const uint8_t* src, int64_t n_elements, float* dst) {
  const TypeEntry& e = entry(type);
  if (e.dequantize == nullptr) fail("dequantize: GGML type ", e.info.name, " is not supported");
  ggml_nbytes(type, n_elements);  // validates the element count
  int64_t blocks = n_elements / e.info.block_size;
  for (int64_t i = 0; i < blocks; ++i)
    e.dequantize(src + size_t(i) * e.info.type_size, dst + i * e.info.block_size);
}

bool ggml_quantizable(GgmlType type) {
  const TypeEntry* e = find_entry(uint32_t(type));
  return e != nullptr && e->quantize != nullptr;
}

void quantize_from_f32(GgmlType type, const float* src, int64_t n_elements, uint8_t* dst) {
  const TypeEntry& e = entry(type);
  if (e.quantize == nullptr) {
    std::string supported;
    for (const auto& t : kTypes) {
      if (t.quantize != nullptr) supported += (supported.empty() ? "" : ", ") + std::string(t.info.name);
    }
    fail("quantize: GGML type ", e.info.name, " is not supported (quantizable: ", supported, ")");
  }
  ggml_nbytes(type, n_elements);  // validates the element count
  int64_t blocks = n_elements / e.info.block_size;
  for (int64_t i = 0; i < blocks; ++i)
    e.quantize(src + i * e.info.block_size, dst + size_t(i) * e.info.type_size);
}

void dequantize_to_bf16(GgmlType type, const uint8_t* src, int64_t n_elements, uint16_t* dst) {
  const TypeEntry& e = entry(type);
  if (e.dequantize == nullptr) fail("dequantize: GGML type ", e.info.name, " is not supported");
  ggml_nbytes(type, n_elements);
  // One block at a time through a small float buffer, so no full-size f32 copy is needed.
  std::vector<float> block(size_t(e.info.block_size));
  int64_t blocks = n_elements / e.info.block_size;
  for (int64_t i = 0; i < blocks; ++i) {
    e.dequantize(src + size_t(i) * e.info.type_size, block.data());
    for (int64_t j = 0; j < e.info.block_size; ++j)
      dst[i * e.info.block_size + j] = bf16::from_float(block[size_t(j)]);
  }
}

}  // namespace wick::ggml
