// `wick demo`: a short end-to-end run of the engine — a small two-layer network fitted with
// autograd and AdamW-free plain gradient descent, eagerly and lazily, on the chosen device.
#include <chrono>
#include <cstdio>

#include "wick/cli/commands.h"
#include "wick/core/autograd.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"

namespace wick::cli {

namespace {

struct DemoOptions {
  std::string device = "auto";
  int steps = 200;
  bool lazy = false;
};

void run_demo(const DemoOptions& opt) {
  Device device = opt.device == "auto" ? best_device() : Device::parse(opt.device);
  ExecModeScope mode(opt.lazy ? ExecMode::Lazy : ExecMode::Eager);
  std::printf("wick engine demo on %s (%s mode)\n", device.str().c_str(), opt.lazy ? "lazy" : "eager");
  manual_seed(0);
  // Data: y = sin(3 x0) + x1^2 - 0.5 x2 over 256 random points.
  const int64_t n = 256, in = 3, hidden = 64;
  Tensor x = uniform({n, in}, -1, 1, Dtype::F32, device);
  Tensor target = sin(3.0 * narrow(x, 1, 0, 1)) + square(narrow(x, 1, 1, 1)) - 0.5 * narrow(x, 1, 2, 1);
  std::vector<Tensor> params = {normal({hidden, in}, 0, 0.5, Dtype::F32, device), zeros({hidden}, Dtype::F32, device),
                                normal({1, hidden}, 0, 0.1, Dtype::F32, device), zeros({1}, Dtype::F32, device)};
  auto loss_fn = [&](const std::vector<Tensor>& p) {
    Tensor h = gelu(linear(x, p[0], p[1]));
    Tensor y = linear(h, p[2], p[3]);
    return mean(square(y - target));
  };
  const double lr = 0.1;
  auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step <= opt.steps; ++step) {
    auto [loss, grads] = value_and_grad(loss_fn, params);
    for (size_t i = 0; i < params.size(); ++i) params[i] = params[i] - lr * grads[i];
    eval(params);
    if (step % (opt.steps / 10 ? opt.steps / 10 : 1) == 0) std::printf("step %4d  loss %.6f\n", step, loss.item<double>());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d steps in %.3f s\n", opt.steps, secs);
}

}  // namespace

void register_demo(CLI::App& app) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand("demo", "Fit a small network with the engine's autograd (a smoke test of the engine)");
  cmd->add_option("--device", opt->device, "cpu, cuda or cuda:N (default: cuda when present)");
  cmd->add_option("--steps", opt->steps, "gradient steps")->check(CLI::Range(1, 1000000));
  cmd->add_flag("--lazy", opt->lazy, "record a graph and evaluate it once per step");
  cmd->callback([opt] { run_demo(*opt); });
}

}  // namespace wick::cli
