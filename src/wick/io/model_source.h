// What a user's `--model PATH` names: a GGUF file, a safetensors file, a Hugging Face model folder,
// or a Hub id already in the huggingface_hub cache. Decided by content (magic bytes, folder files),
// not by file extension alone.
#pragma once

#include <string>

namespace wick::io {

enum class ModelFormat {
  kGguf,             // `path` is a .gguf file
  kSafetensorsFile,  // `path` is a lone .safetensors file (no config next to it)
  kHfFolder,         // `path` is a folder with config.json and safetensors weights
};

struct ModelSource {
  ModelFormat format = ModelFormat::kHfFolder;
  std::string path;
};

// Resolves `spec`: an existing file (GGUF by magic, safetensors by its header), an existing folder
// (an HF folder with config.json; or a folder holding exactly one .gguf), else a Hub id looked up
// in the cache (`cache_dir` empty: hf_hub_cache_dir()) at branch "main". Throws wick::Error saying
// what was looked for and where.
ModelSource resolve_model_source(const std::string& spec, const std::string& cache_dir = "");

}  // namespace wick::io
