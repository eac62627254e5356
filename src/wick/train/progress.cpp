// Progress display of the training loop: durations, ETA, the terminal's bar and log lines.
#include "wick/train/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace wick::train {

namespace {

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[128];
  int n = std::snprintf(buf, sizeof(buf), fmt, args...);
  return std::string(buf, size_t(std::clamp(n, 0, int(sizeof(buf)) - 1)));
}

// "loss 2.3456  lr 3.00e-04", shared by the bar and the log line.
std::string loss_and_lr(const ProgressFields& p) { return format("loss %.4f  lr %.2e", p.loss, p.lr); }

std::string speed_and_time(const ProgressFields& p) {
  return format("%.0f tok/s  elapsed ", p.tokens_per_second) + format_duration(p.elapsed_seconds) + "  eta " +
         format_duration(p.eta_seconds);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  long long s = std::llround(seconds);
  if (s < 60) return format("%llds", s);
  if (s < 3600) return format("%lldm%02llds", s / 60, s % 60);
  return format("%lldh%02lldm%02llds", s / 3600, s / 60 % 60, s % 60);
}

void EtaEstimator::step_done(double seconds) {
  if (steps_ == 0) first_ = seconds;
  last_ = seconds;
  ++steps_;
}

double EtaEstimator::eta_seconds(int64_t steps_left) const {
  if (steps_ == 0) return -1;
  double mean = steps_ == 1 ? first_ : (last_ - first_) / double(steps_ - 1);
  return mean * double(std::max<int64_t>(steps_left, 0));
}

std::string render_progress_bar(const ProgressFields& p, int columns) {
  constexpr int kMaxCells = 30, kMinCells = 10;
  double done = p.total > 0 ? std::clamp(double(p.step) / double(p.total), 0.0, 1.0) : 0.0;
  std::string head = format("step %lld/%lld ", (long long)p.step, (long long)p.total);
  std::string tail = format("  %3d%%  ", int(done * 100)) + loss_and_lr(p) + "  " + speed_and_time(p);
  int cells = kMaxCells;
  if (columns > 0) cells = std::clamp(columns - int(head.size() + tail.size()) - 2, kMinCells, kMaxCells);
  int filled = int(done * cells);
  std::string line = head + "[" + std::string(size_t(filled), '#') + std::string(size_t(cells - filled), '.') + "]" + tail;
  if (columns > 0 && int(line.size()) > columns) line.resize(size_t(columns));
  return line;
}

std::string render_progress_line(const ProgressFields& p) {
  std::string line = format("step %lld/%lld  ", (long long)p.step, (long long)p.total) + loss_and_lr(p) +
                     format("  grad-norm %.3f  ", p.grad_norm) + speed_and_time(p);
  if (p.val_loss >= 0) line += format("  val %.4f", p.val_loss) + (p.best ? " (best)" : "");
  return line;
}

}  // namespace wick::train
