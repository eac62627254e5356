// libFuzzer target: config.json / generation_config.json / tokenizer_config.json parsing.
// Build and run: see fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    (void)wick::io::parse_model_config(j, "config.json");
  } catch (const wick::Error&) {
  }
  try {
    (void)wick::io::parse_generation_config(j, "generation_config.json");
  } catch (const wick::Error&) {
  }
  try {
    (void)wick::io::parse_tokenizer_config(j, "tokenizer_config.json");
  } catch (const wick::Error&) {
  }
  return 0;
}
