// Deciding what kind of model a path or Hub id names.
#include "wick/io/model_source.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "wick/base/error.h"
#include "wick/io/hub_cache.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;

ModelFormat sniff_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  char head[9] = {};
  in.read(head, sizeof head);
  std::streamsize n = in.gcount();
  if (n >= 4 && std::memcmp(head, "GGUF", 4) == 0) return ModelFormat::kGguf;
  // safetensors has no magic: a little-endian u64 header length, then the JSON's '{'.
  if (n == 9 && head[8] == '{') return ModelFormat::kSafetensorsFile;
  fail(path, ": neither a GGUF file (no 'GGUF' magic) nor a safetensors file (no JSON header)");
}

ModelSource from_folder(const fs::path& dir) {
  if (fs::exists(dir / "config.json")) return {ModelFormat::kHfFolder, dir.string()};
  std::vector<fs::path> ggufs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".gguf") ggufs.push_back(entry.path());
  }
  if (ggufs.size() == 1) return {ModelFormat::kGguf, ggufs[0].string()};
  if (ggufs.size() > 1)
    fail(dir.string(), ": holds ", ggufs.size(), " .gguf files; name the one to use");
  fail(dir.string(), ": not a model folder (no config.json and no .gguf file)");
}

}  // namespace

ModelSource resolve_model_source(const std::string& spec, const std::string& cache_dir) {
  if (spec.empty()) fail("no model given");
  fs::path p(spec);
  if (fs::is_directory(p)) return from_folder(p);
  if (fs::exists(p)) return {sniff_file(spec), spec};
  if (is_hub_repo_id(spec)) {
    std::string cache = cache_dir.empty() ? hf_hub_cache_dir() : cache_dir;
    if (auto snapshot = hub_cached_snapshot(spec, "main", cache)) return from_folder(*snapshot);
    // A name that ends like a model file was meant as a path: no download hint for it.
    bool file_like = false;
    for (const char* ext : {".gguf", ".safetensors", ".bin", ".json"})
      file_like = file_like || (spec.size() > std::strlen(ext) && spec.ends_with(ext));
    fail(spec, ": no such file or folder, and not in the Hugging Face cache (", cache, ")",
         file_like ? "" : "; `wick pull " + spec + "` downloads it");
  }
  fail(spec, ": no such file or folder");
}

}  // namespace wick::io
