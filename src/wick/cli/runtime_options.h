// The CLI's --device, --dtype, --threads, --matmul-precision and --quantized-base, resolved into the library's load options.
#pragma once

#include <string>

#include "wick/core/device.h"
#include "wick/core/dtype.h"
#include "wick/models/loading.h"

namespace wick::cli {

struct RuntimeOptions {
  std::string device = "auto";  // cpu, cuda, cuda:N, auto (cuda when present)
  std::string dtype = "auto";   // f32, bf16, f16, auto (bf16 on CUDA, f32 on the CPU)
  // Decoders: how the linear layers' weights are kept. "" (dense), "file" (a GGUF's own quantized
  // blocks), or a type to quantize them into at load: q4_0, q4_1, q5_0, q5_1, q8_0.
  std::string quantized_base;
  // CPU: "f32", or "bf16" for f32 matrix products with bf16 operands and f32 sums (backend/cpu/gemm.h).
  std::string matmul_precision = "f32";
  int threads = 0;  // CPU threads of the pool (matrix products included); 0: WICK_NUM_THREADS, else every core
  // CPU, GGUF, inference commands: how decode steps multiply the file's blocks. By default the
  // K-quant blocks (Q2_K ... Q6_K) go through 8-bit activations, as llama.cpp's CPU backend does
  // (about twice as fast; logits move slightly, so greedy answers can change at near ties) and the
  // other types in f32; --int8-activations takes every type through 8 bits, --f32-activations none.
  bool int8_activations = false;
  bool f32_activations = false;
  // GGUF, inference commands: expand the file's quantized blocks to the compute dtype at load
  // instead of keeping them (more memory; prompts skip the per-product dequantization).
  bool expand_weights = false;
  Device resolved_device() const;
  Dtype resolved_dtype() const;
  models::WeightStorage resolved_storage() const;
  // Device, dtype and storage resolved; the tokenizer and chat template loaded when `with_tokenizer`.
  // Also sets the CPU thread count when --threads was given, and the CPU's matrix-product precision
  // (--matmul-precision bf16 on a CUDA device is refused). Rejects --int8-activations,
  // --f32-activations and --expand-weights.
  models::LoadOptions load_options(bool with_tokenizer = true) const;
  // For the inference commands (generate, chat, bench, serve): as load_options, and a GGUF model
  // without --quantized-base or --expand-weights keeps the file's blocks (projections, embeddings and
  // lm_head), so it runs quantized in about the memory of the file (the decode products read the
  // blocks: CUDA's skinny kernels, the CPU's row dot kernels in f32 or through 8-bit activations, as
  // int8_activations and f32_activations say).
  models::LoadOptions inference_load_options(const std::string& model, bool with_tokenizer = true) const;

 private:
  models::LoadOptions common_options(bool with_tokenizer) const;
};

}  // namespace wick::cli
