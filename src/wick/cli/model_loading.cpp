// Decoder loading for the CLI.
#include "wick/cli/model_loading.h"

#include <algorithm>
#include <filesystem>

#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/hf_config.h"
#include "wick/io/model_source.h"

namespace wick::cli {

Device RuntimeOptions::resolved_device() const { return device == "auto" ? best_device() : Device::parse(device); }

Dtype RuntimeOptions::resolved_dtype() const {
  if (dtype != "auto") {
    Dtype d = parse_dtype(dtype);
    WICK_CHECK(d == Dtype::F32 || d == Dtype::BF16 || d == Dtype::F16, "--dtype must be f32, bf16 or f16, got ", dtype);
    return d;
  }
  return resolved_device().is_cuda() ? Dtype::BF16 : Dtype::F32;
}

models::WeightStorage RuntimeOptions::resolved_storage() const {
  models::WeightStorage storage;
  if (quantized_base.empty()) return storage;
  if (quantized_base == "file") {
    storage.keep_file_blocks = true;
    return storage;
  }
  static const std::pair<const char*, io::GgmlType> kTypes[] = {{"q4_0", io::GgmlType::Q4_0}, {"q4_1", io::GgmlType::Q4_1},
                                                                {"q5_0", io::GgmlType::Q5_0}, {"q5_1", io::GgmlType::Q5_1},
                                                                {"q8_0", io::GgmlType::Q8_0}};
  for (const auto& [name, type] : kTypes)
    if (quantized_base == name) {
      storage.quantize = type;
      return storage;
    }
  fail("--quantized-base must be file, q4_0, q4_1, q5_0, q5_1 or q8_0, got '", quantized_base, "'");
}

LoadedDecoder load_decoder(const std::string& spec, const RuntimeOptions& runtime) {
  io::ModelSource src = io::resolve_model_source(spec);
  Device device = runtime.resolved_device();
  Dtype dtype = runtime.resolved_dtype();
  models::WeightStorage storage = runtime.resolved_storage();
  std::vector<int32_t> eos;
  auto add = [&](int64_t id) {
    if (std::find(eos.begin(), eos.end(), int32_t(id)) == eos.end()) eos.push_back(int32_t(id));
  };
  if (src.format == io::ModelFormat::kGguf) {
    io::GgufFile file = io::GgufFile::open(src.path);
    io::GgufTokenizerData tok = io::gguf_tokenizer_data(file);
    for (const auto& id : {tok.eos_token_id, tok.eot_token_id, tok.eom_token_id})
      if (id) add(*id);
    return {models::DecoderModel::load_gguf(src.path, device, dtype, storage), eos, src.path};
  }
  WICK_CHECK(src.format == io::ModelFormat::kHfFolder, spec, ": a decoder needs a model folder or a .gguf file");
  io::ModelConfig config = io::load_model_config(src.path + "/config.json");
  for (int64_t id : config.eos_token_ids) add(id);
  std::string gen = src.path + "/generation_config.json";
  if (std::filesystem::exists(gen))
    for (int64_t id : io::load_generation_config(gen).eos_token_ids) add(id);
  return {models::DecoderModel::load(src.path, device, dtype, storage), eos, src.path};
}

}  // namespace wick::cli
