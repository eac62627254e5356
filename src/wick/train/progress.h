// What `wick train` shows while it runs: durations, the time-left estimate, the one-line progress
// bar of a terminal and the plain lines of a log file. Pure formatting, so it is tested to the
// character.
#pragma once

#include <cstdint>
#include <string>

namespace wick::train {

// "0s", "59s", "1m05s", "2h03m04s"; "--" when unknown (negative or not finite). Whole seconds,
// rounded to nearest.
std::string format_duration(double seconds);

// Time left from the mean step time so far. The first step (allocations, first touch of the
// weights, and on resume the loading of the checkpoint) is left out of the mean as soon as a
// second step has been timed.
class EtaEstimator {
 public:
  // A step of this run ended `seconds` after the run started.
  void step_done(double seconds);
  // < 0 before any step.
  double eta_seconds(int64_t steps_left) const;
  double elapsed_seconds() const { return last_; }

 private:
  int64_t steps_ = 0;
  double first_ = 0, last_ = 0;
};

struct ProgressFields {
  int64_t step = 0, total = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_second = 0;
  double elapsed_seconds = 0;
  double eta_seconds = -1;  // < 0: unknown
  double val_loss = -1;     // < 0: no validation at this step
  bool best = false;        // this validation is the best so far
};

// The terminal's line, at most `columns` characters wide:
// "step 12/100 [###.........]  12%  loss 2.3456  lr 3.00e-04  1234 tok/s  elapsed 1m05s  eta 8m00s".
// The bar shrinks (to 10 cells) before the tail of the line is cut.
std::string render_progress_bar(const ProgressFields& p, int columns);

// A log line: "step 12/100  loss 2.3456  lr 3.00e-04  grad-norm 0.123  1234 tok/s  elapsed 1m05s
// eta 8m00s" with "  val 2.1234" (and " (best)") after a validation pass.
std::string render_progress_line(const ProgressFields& p);

}  // namespace wick::train
