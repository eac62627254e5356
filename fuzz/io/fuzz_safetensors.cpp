// libFuzzer target: safetensors header parsing and every tensor view it accepts.
// Build and run: see fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>

#include "wick/base/error.h"
#include "wick/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto st = wick::io::SafeTensors::parse(nullptr, data, size, "fuzz");
    // Touch the first and last byte of every accepted view: ASan reports any range the parser
    // let through that is not inside the input.
    volatile uint8_t sink = 0;
    for (const auto& name : st.names()) {
      const auto& v = st.get(name);
      if (v.nbytes > 0) sink = sink ^ v.data[0] ^ v.data[v.nbytes - 1];
    }
    (void)st.metadata().size();
  } catch (const wick::Error&) {
    // Rejected input: the expected outcome for almost every mutation.
  }
  return 0;
}
