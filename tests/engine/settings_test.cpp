// Execution settings: each scope sets one field and restores it (also when unwinding), settings
// belong to the thread that set them, and random draws come from the generator in effect: the
// default one, one installed by a GeneratorScope, or one passed explicitly, which leaves the
// current generator where it was.
#include <thread>

#include "support/testing.h"
#include "wick/core/random.h"
#include "wick/core/settings.h"

namespace wick {
namespace {

using namespace testing;

TEST(Settings, DefaultsAndScopesRestore) {
  const ExecutionSettings defaults;
  EXPECT_EQ(exec_mode(), defaults.exec_mode);
  EXPECT_EQ(grad_enabled(), defaults.grad_enabled);
  EXPECT_EQ(fusion_enabled(), defaults.fusion_enabled);
  EXPECT_EQ(default_device(), defaults.default_device);
  EXPECT_EQ(&current_generator(), &default_generator());
  {
    ExecModeScope lazy(ExecMode::Lazy);
    FusionScope unfused(false);
    NoGradGuard no_grad;
    DeviceScope device(Device::cuda(1));
    EXPECT_EQ(exec_mode(), ExecMode::Lazy);
    EXPECT_FALSE(fusion_enabled());
    EXPECT_FALSE(grad_enabled());
    EXPECT_EQ(default_device(), Device::cuda(1));
    EXPECT_EQ(full({2}, 1.0).device(), Device::cuda(1));  // lazy: recorded, nothing runs
    {
      GradModeScope grad(true);
      ExecModeScope eager(ExecMode::Eager);
      EXPECT_TRUE(grad_enabled());
      EXPECT_EQ(exec_mode(), ExecMode::Eager);
    }
    EXPECT_FALSE(grad_enabled());
    EXPECT_EQ(exec_mode(), ExecMode::Lazy);
  }
  EXPECT_EQ(exec_mode(), ExecMode::Eager);
  EXPECT_TRUE(fusion_enabled());
  EXPECT_TRUE(grad_enabled());
  EXPECT_EQ(default_device(), Device::cpu());
  // A scope left by an exception restores too.
  try {
    FusionScope unfused(false);
    throw std::runtime_error("unwind");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(fusion_enabled());
}

TEST(Settings, BelongToTheThreadThatSetsThem) {
  ExecModeScope lazy(ExecMode::Lazy);
  FusionScope unfused(false);
  NoGradGuard no_grad;
  ExecutionSettings seen;
  std::thread([&] { seen = execution_settings(); }).join();
  const ExecutionSettings defaults;
  EXPECT_EQ(seen.exec_mode, defaults.exec_mode);
  EXPECT_EQ(seen.fusion_enabled, defaults.fusion_enabled);
  EXPECT_EQ(seen.grad_enabled, defaults.grad_enabled);
  EXPECT_EQ(exec_mode(), ExecMode::Lazy);
}

TEST(Settings, RandomDrawsComeFromTheGeneratorInEffect) {
  // A generator seeded like the default one draws what the default one draws.
  manual_seed(21);
  std::vector<float> by_default = uniform({9}).to_vector<float>();
  std::vector<float> then = normal({5}).to_vector<float>();
  Generator mine(21);
  EXPECT_EQ(uniform({9}, 0, 1, Dtype::F32, Device::cpu(), mine).to_vector<float>(), by_default);
  EXPECT_EQ(normal({5}, 0, 1, Dtype::F32, Device::cpu(), mine).to_vector<float>(), then);

  // Drawing from an explicit generator, or inside a GeneratorScope, leaves the default one alone.
  manual_seed(3);
  std::vector<float> expected = uniform({7}).to_vector<float>();
  manual_seed(3);
  Generator other(99);
  uniform({100}, 0, 1, Dtype::F32, Device::cpu(), other);
  {
    GeneratorScope scoped(other);
    EXPECT_EQ(&current_generator(), &other);
    normal({50});
    bernoulli({20}, 0.5);
    manual_seed(4);  // reseeds the scoped generator
  }
  EXPECT_EQ(&current_generator(), &default_generator());
  EXPECT_EQ(uniform({7}).to_vector<float>(), expected);

  // manual_seed inside the scope reseeded `other`.
  Generator reseeded(4);
  EXPECT_EQ(uniform({6}, 0, 1, Dtype::F32, Device::cpu(), other).to_vector<float>(),
            uniform({6}, 0, 1, Dtype::F32, Device::cpu(), reseeded).to_vector<float>());
}

}  // namespace
}  // namespace wick
