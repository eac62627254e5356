// models::save_decoder_gguf on the tiny Llama/Qwen2 fixtures: the GGUF written (llama.cpp's names,
// q/k row order, hyper-parameters, llama3 RoPE scaling as rope_freqs) loads back through the GGUF
// reader and gives the logits transformers wrote for the original (scripts/golden/models_golden.py).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "wick/core/ops.h"
#include "wick/io/gguf.h"
#include "wick/io/safetensors.h"
#include "wick/models/decoder_save.h"
#include "wick/models/weights.h"

using namespace wick;

namespace {

class GgufWrite : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufWrite, WrittenGgufGivesTransformersLogits) {
  std::string dir = std::string(WICK_TEST_DATA_DIR) + "/models/" + GetParam();
  std::string path = ::testing::TempDir() + "/wick_gguf_write_" + std::to_string(getpid()) + "_" + GetParam() + ".gguf";
  auto original = models::DecoderModel::load(dir, Device::cpu(), Dtype::F32);
  models::save_decoder_gguf(original, path, Dtype::F32, {}, GetParam());
  auto model = models::DecoderModel::load_gguf(path, Device::cpu(), Dtype::F32);
  io::GgufFile file = io::GgufFile::open(path);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.get_string("general.architecture"), original.config().model_type);
  EXPECT_EQ(file.find_tensor("rope_freqs.weight") != nullptr, original.config().rope_scaling.has_value());
  auto expected = io::SafeTensors::open(dir + "/expected.safetensors");
  Tensor ids = models::to_tensor(expected.get("input_ids"), Dtype::I64, Device::cpu());
  Tensor ref = models::to_tensor(expected.get("logits"), Dtype::F32, Device::cpu());
  Tensor logits = model.forward(ids);
  ASSERT_EQ(logits.shape(), ref.shape());
  double err = max(abs(astype(logits, Dtype::F64) - astype(ref, Dtype::F64))).item<double>() /
               max(abs(astype(ref, Dtype::F64))).item<double>();
  EXPECT_LE(err, 1e-4);
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufWrite, ::testing::Values("qwen2_tied", "llama_untied", "llama_gqa_llama3rope"));

}  // namespace
