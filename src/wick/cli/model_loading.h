// Loading models for the CLI's commands: resolves --model, --device and --dtype.
#pragma once

#include <string>
#include <vector>

#include "wick/core/device.h"
#include "wick/core/dtype.h"
#include "wick/models/decoder.h"

namespace wick::cli {

struct RuntimeOptions {
  std::string device = "auto";  // cpu, cuda, cuda:N, auto (cuda when present)
  std::string dtype = "auto";   // f32, bf16, f16, auto (bf16 on CUDA, f32 on the CPU)
  // Decoders: how the linear layers' weights are kept. "" (dense), "file" (a GGUF's own quantized
  // blocks), or a type to quantize them into at load: q4_0, q4_1, q5_0, q5_1, q8_0.
  std::string quantized_base;
  Device resolved_device() const;
  Dtype resolved_dtype() const;
  models::WeightStorage resolved_storage() const;
};

struct LoadedDecoder {
  models::DecoderModel model;
  std::vector<int32_t> eos_ids;  // every id that ends generation
  std::string path;              // the resolved file or folder
};

// A decoder from a HF folder, a .gguf file or a Hub id in the cache.
LoadedDecoder load_decoder(const std::string& spec, const RuntimeOptions& runtime);

}  // namespace wick::cli
