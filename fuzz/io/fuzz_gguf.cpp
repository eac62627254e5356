// libFuzzer target: GGUF parsing, metadata interpretation (config, tokenizer) and dequantization
// of every tensor the parser accepts. Build and run: see fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "wick/base/error.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = wick::io::GgufFile::parse(nullptr, data, size, "fuzz");
    try {
      (void)wick::io::model_config_from_gguf(f);
    } catch (const wick::Error&) {
    }
    try {
      (void)wick::io::gguf_tokenizer_data(f);
    } catch (const wick::Error&) {
    }
    for (const auto& t : f.tensors()) {
      (void)wick::io::gguf_to_hf_name(t.name);
      if (!wick::ggml::ggml_type_info(t.type).dequantizable) continue;
      std::vector<float> out = f.dequantize(t.name);
      try {
        (void)wick::io::gguf_tensor_f32_hf_order(f, t.name);  // q/k row restoration
      } catch (const wick::Error&) {
      }
      std::vector<uint16_t> bf(out.size());
      wick::ggml::dequantize_to_bf16(t.type, t.data, t.numel(), bf.data());
    }
  } catch (const wick::Error&) {
  }
  return 0;
}
