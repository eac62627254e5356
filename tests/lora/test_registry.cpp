// The adapter registry: two PEFT adapters loaded over one base switch instantly, each giving the
// logits (and generated tokens) of that adapter loaded alone, none giving the base's own, with the
// base's weights byte-identical throughout; unknown, duplicate and misfitting adapters are named.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "support/adapters.h"
#include "support/testing.h"
#include "wick/core/ops.h"
#include "wick/lora/registry.h"
#include "wick/models/generate.h"

using namespace wick;
using wick::testing::expect_error;

namespace {

const std::string kData = std::string(WICK_TEST_DATA_DIR) + "/models/";

struct Fixture {
  models::DecoderModel base = models::DecoderModel::load(kData + "qwen2_tied", Device::cpu(), Dtype::F32);
  std::string dir = ::testing::TempDir() + "/wick_registry_" + std::to_string(::getpid());
  std::string dir_a = dir + "/a", dir_b = dir + "/b";
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 77, 3, 190, 42, 8, 11, 250, 6, 0}, {2, 5});

  Fixture() {
    std::filesystem::remove_all(dir);
    make_adapter({"q_proj", "v_proj"}, 4, 1).save(dir_a);
    make_adapter({"all-linear"}, 2, 2).save(dir_b);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }

  // Adapter::init with random non-zero B.
  lora::Adapter make_adapter(std::vector<std::string> targets, int64_t r, uint64_t seed) {
    lora::LoraConfig cfg;
    cfg.r = r;
    cfg.alpha = 2.0 * double(r);
    cfg.target_modules = std::move(targets);
    lora::Adapter a = lora::Adapter::init(base, cfg, seed);
    a.set_parameters(wick::testing::parameters_with_random_b(a, seed, 0.3));
    return a;
  }

  Tensor logits(const models::LoraDeltas* d) const { return base.forward(ids, nullptr, std::nullopt, std::nullopt, d); }
  Tensor logits_alone(const std::string& adapter_dir) const {
    models::LoraDeltas d = lora::Adapter::load(adapter_dir, base).deltas();
    return logits(&d);
  }

  // Every byte of every base weight.
  std::vector<std::vector<uint8_t>> weight_bytes() const {
    std::vector<Tensor> all{base.embed_tokens, base.final_norm, base.lm_head};
    for (const auto& l : base.layers)
      for (const Tensor& t : {l.input_norm, l.post_norm, l.q.dense(), l.k.dense(), l.v.dense(), l.o.dense(),
                              l.gate.dense(), l.up.dense(), l.down.dense()})
        all.push_back(t);
    std::vector<std::vector<uint8_t>> out;
    for (const Tensor& t : all) {
      std::vector<uint8_t> bytes(size_t(t.numel()) * t.itemsize());
      copy_to_host(t, bytes.data());
      out.push_back(std::move(bytes));
    }
    return out;
  }
};

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

TEST(AdapterRegistry, SwitchingGivesEachAdapterAloneAndNoneGivesTheBase) {
  Fixture f;
  auto bytes_before = f.weight_bytes();
  Tensor base_logits = f.logits(nullptr), alone_a = f.logits_alone(f.dir_a), alone_b = f.logits_alone(f.dir_b);
  ASSERT_FALSE(identical(alone_a, alone_b));
  ASSERT_FALSE(identical(alone_a, base_logits));

  lora::AdapterRegistry reg(f.base);
  reg.load("a", f.dir_a);
  reg.load("b", f.dir_b);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(reg.active().has_value());
  EXPECT_EQ(reg.active_deltas(), nullptr);
  EXPECT_TRUE(identical(f.logits(reg.active_deltas()), base_logits));

  for (const char* name : {"a", "b", "a", "b"}) {
    reg.activate(name);
    EXPECT_EQ(reg.active(), name);
    EXPECT_TRUE(identical(f.logits(reg.active_deltas()), std::string(name) == "a" ? alone_a : alone_b)) << name;
  }
  // A named adapter's updates are available whichever is active (a per-request choice).
  EXPECT_TRUE(identical(f.logits(&reg.deltas("a")), alone_a));
  reg.deactivate();
  EXPECT_EQ(reg.active_deltas(), nullptr);
  EXPECT_TRUE(identical(f.logits(reg.active_deltas()), base_logits));
  EXPECT_EQ(f.weight_bytes(), bytes_before);

  // Generation takes the active adapter's updates the same way.
  reg.activate("b");
  models::GenerateOptions g;
  g.max_tokens = 6;
  g.sampling.temperature = 0;
  std::vector<std::vector<int32_t>> prompts{{5, 77, 3}, {190, 42}};
  models::LoraDeltas b_alone = lora::Adapter::load(f.dir_b, f.base).deltas();
  auto with_registry = models::generate_batch(f.base, nullptr, prompts, g, reg.active_deltas());
  auto with_alone = models::generate_batch(f.base, nullptr, prompts, g, &b_alone);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(with_registry[i].ids, with_alone[i].ids);

  // Unloading the active adapter leaves none active; the other stays usable.
  reg.unload("b");
  EXPECT_FALSE(reg.active().has_value());
  EXPECT_EQ(reg.names(), std::vector<std::string>{"a"});
  reg.activate("a");
  EXPECT_TRUE(identical(f.logits(reg.active_deltas()), alone_a));
  EXPECT_EQ(f.weight_bytes(), bytes_before);
}

TEST(AdapterRegistry, AddTakesAdaptersInMemory) {
  Fixture f;
  lora::AdapterRegistry reg(f.base);
  lora::Adapter a = lora::Adapter::load(f.dir_a, f.base);
  models::LoraDeltas d = a.deltas();
  reg.add("mem", std::move(a));
  reg.activate("mem");
  EXPECT_TRUE(identical(f.logits(reg.active_deltas()), f.logits(&d)));
  EXPECT_EQ(reg.adapter("mem").modules().size(), 4u);  // 2 layers x q, v
}

TEST(AdapterRegistry, ErrorsNameTheAdapter) {
  Fixture f;
  lora::AdapterRegistry reg(f.base);
  reg.load("a", f.dir_a);
  expect_error([&] { reg.load("a", f.dir_b); }, {"'a'", "already loaded"});
  expect_error([&] { reg.activate("nope"); }, {"'nope'", "loaded: a"});
  expect_error([&] { reg.unload("nope"); }, {"'nope'"});
  expect_error([&] { reg.deltas("nope"); }, {"'nope'"});
  expect_error([&] { reg.load("", f.dir_b); }, {"name"});
  expect_error([&] { reg.load("missing", f.dir + "/no_such_adapter"); }, {"'missing'", "no_such_adapter"});
  // An adapter made for another base: the error names the adapter and the misfitting tensor.
  auto other = models::DecoderModel::load(kData + "llama_gqa_llama3rope", Device::cpu(), Dtype::F32);
  lora::AdapterRegistry other_reg(other);
  expect_error([&] { other_reg.load("qwen-adapter", f.dir_b); }, {"'qwen-adapter'", "lora_", "shape"});
  expect_error([&] { other_reg.add("mem", lora::Adapter::load(f.dir_b, f.base)); }, {"'mem'", "do not fit"});
  EXPECT_TRUE(other_reg.names().empty());
  // A failed activation keeps the active adapter.
  reg.activate("a");
  EXPECT_THROW(reg.activate("nope"), Error);
  EXPECT_EQ(reg.active(), "a");
}

}  // namespace
