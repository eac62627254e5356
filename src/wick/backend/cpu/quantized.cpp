// CPU dequantization of GGML blocks (through io's reference dequantizers) and products with a
// quantized matrix: the matrix is dequantized into a scratch buffer of the compute dtype, then
// multiplied with OpenBLAS (16-bit values widened to f32 around the GEMM, as in Matmul).
#include <cblas.h>

#include <vector>

#include "wick/backend/cpu/strided.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {

// Dense [rows, cols] in `dtype` from contiguous blocks.
void dequantize_into(io::GgmlType type, const uint8_t* src, int64_t rows, int64_t cols, Dtype dtype, void* dst) {
  int64_t n = rows * cols;
  switch (dtype) {
    case Dtype::F32: io::dequantize_to_f32(type, src, n, static_cast<float*>(dst)); return;
    case Dtype::BF16: io::dequantize_to_bf16(type, src, n, static_cast<uint16_t*>(dst)); return;
    case Dtype::F16: {
      // Row by row through a float buffer: the f32 dequantizer's values, rounded once.
      size_t row_bytes = io::ggml_nbytes(type, cols);
      std::vector<float> row(static_cast<size_t>(cols));
      f16* out = static_cast<f16*>(dst);
      for (int64_t r = 0; r < rows; ++r) {
        io::dequantize_to_f32(type, src + size_t(r) * row_bytes, cols, row.data());
        for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = f16(row[size_t(c)]);
      }
      return;
    }
    default: fail("dequantize: the output must be f32, bf16 or f16, got ", dtype_name(dtype));
  }
}

template <typename T>
std::vector<float> widened(const T* p, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = float(p[i]);
  return out;
}

}  // namespace

void Dequantize::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor blocks = cpu::contiguous_copy(in[0]);
  out.allocate();
  dequantize_into(type_, cpu::cdata<uint8_t>(blocks), out.shape(0), out.shape(1), out.dtype(), out.data_ptr());
}

void QuantizedMatmul::eval_cpu(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor x = cpu::contiguous_copy(in[0]);
  Tensor blocks = cpu::contiguous_copy(in[1]);
  out.allocate();
  int64_t k = x.shape(-1), n = out.shape(-1), m = x.numel() / k;
  Tensor w = Tensor::empty({rows_, cols_}, x.dtype(), Device::cpu());
  dequantize_into(type_, cpu::cdata<uint8_t>(blocks), rows_, cols_, x.dtype(), w.data_ptr());
  // W is [rows, cols] row-major: the transposed product multiplies by W^T (ld cols), the other by W.
  auto gemm = [&](const float* a, const float* b, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed_ ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f,
                a, int(k), b, int(cols_), 0.0f, c, int(n));
  };
  dispatch_float(x.dtype(), name(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      gemm(cpu::cdata<float>(x), cpu::cdata<float>(w), cpu::mdata<float>(out));
    } else if constexpr (std::is_same_v<T, double>) {
      fail("quantized_matmul: f64 inputs are not supported");
    } else {
      std::vector<float> fx = widened(cpu::cdata<T>(x), m * k), fw = widened(cpu::cdata<T>(w), rows_ * cols_);
      std::vector<float> fy(size_t(m * n));
      gemm(fx.data(), fw.data(), fy.data());
      T* po = cpu::mdata<T>(out);
      for (int64_t i = 0; i < m * n; ++i) po[i] = T(fy[size_t(i)]);
    }
  });
}

}  // namespace wick
