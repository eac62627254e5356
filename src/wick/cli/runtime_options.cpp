// The CLI's runtime options: device, dtype and weight storage from their command-line spellings.
#include "wick/cli/runtime_options.h"

#include "wick/io/model_source.h"

#include <utility>

#include "wick/backend/cpu/gemm.h"
#include "wick/backend/cpu/thread_pool.h"
#include "wick/base/error.h"
#include "wick/base/ggml_quants.h"
#include "wick/cli/usage.h"

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
  using ggml::GgmlType;
  static const std::pair<const char*, GgmlType> kTypes[] = {{"q4_0", GgmlType::Q4_0}, {"q4_1", GgmlType::Q4_1},
                                                          {"q5_0", GgmlType::Q5_0}, {"q5_1", GgmlType::Q5_1},
                                                          {"q8_0", GgmlType::Q8_0}};
  for (const auto& [name, type] : kTypes)
    if (quantized_base == name) {
      storage.quantize = type;
      return storage;
    }
  fail("--quantized-base must be file, q4_0, q4_1, q5_0, q5_1 or q8_0, got '", quantized_base, "'");
}

models::LoadOptions RuntimeOptions::load_options(bool with_tokenizer) const {
  if (int8_activations) throw UsageError("--int8-activations is for generate, chat, bench and serve");
  if (f32_activations) throw UsageError("--f32-activations is for generate, chat, bench and serve");
  if (expand_weights) throw UsageError("--expand-weights is for generate, chat, bench and serve");
  return common_options(with_tokenizer);
}

models::LoadOptions RuntimeOptions::common_options(bool with_tokenizer) const {
  if (threads > 0) cpu::set_num_threads(threads);
  models::LoadOptions options;
  options.device = resolved_device();
  if (matmul_precision == "bf16" && options.device.is_cuda())
    throw UsageError("--matmul-precision bf16 is for the CPU (--device cpu); on CUDA, --dtype bf16");
  cpu::set_matmul_precision(matmul_precision == "bf16" ? cpu::MatmulPrecision::kBf16 : cpu::MatmulPrecision::kF32);
  options.dtype = resolved_dtype();
  options.storage = resolved_storage();
  options.with_tokenizer = with_tokenizer;
  return options;
}

models::LoadOptions RuntimeOptions::inference_load_options(const std::string& model, bool with_tokenizer) const {
  models::LoadOptions options = common_options(with_tokenizer);
  if (int8_activations && f32_activations) throw UsageError("--int8-activations and --f32-activations exclude each other");
  for (auto [given, flag] : {std::pair{int8_activations, "--int8-activations"}, std::pair{f32_activations, "--f32-activations"}}) {
    if (!given) continue;
    if (options.device.is_cuda()) throw UsageError(str_cat(flag, " is for the CPU (--device cpu)"));
    if (!quantized_base.empty()) throw UsageError(str_cat(flag, " is for the file's blocks: leave out --quantized-base"));
    if (expand_weights) throw UsageError(str_cat(flag, " is for the file's blocks: leave out --expand-weights"));
  }
  if (expand_weights && !quantized_base.empty())
    throw UsageError("--expand-weights and --quantized-base exclude each other");
  if (!quantized_base.empty()) return options;
  bool gguf = false, resolved = false;
  try {
    gguf = io::resolve_model_source(model).format == io::ModelFormat::kGguf;
    resolved = true;
  } catch (const Error&) {
    // load_decoder reports what is wrong with the path.
  }
  if (expand_weights) {
    if (resolved && !gguf) throw UsageError("--expand-weights needs a GGUF model (it expands the file's blocks at load)");
    return options;
  }
  options.storage.keep_file_blocks = gguf;
  options.storage.keep_embedding_blocks = gguf;
  if (resolved && !gguf) {
    if (int8_activations) throw UsageError("--int8-activations needs a GGUF model (its quantized blocks)");
    if (f32_activations) throw UsageError("--f32-activations needs a GGUF model (its quantized blocks)");
  }
  using models::Int8Activations;
  options.storage.int8_activations = !gguf || options.device.is_cuda() || f32_activations ? Int8Activations::kNone
                                     : int8_activations                                  ? Int8Activations::kAll
                                                                                         : Int8Activations::kKQuants;
  return options;
}

}  // namespace wick::cli
