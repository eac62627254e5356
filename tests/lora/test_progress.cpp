// What `wick train` prints while it runs: durations, the time-left estimate, the terminal's
// progress bar and the plain log lines, checked to the character.
#include <gtest/gtest.h>

#include <cmath>

#include "wick/train/progress.h"

using namespace wick::train;

namespace {

TEST(Progress, FormatDuration) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(3599), "59m59s");
  EXPECT_EQ(format_duration(3600), "1h00m00s");
  EXPECT_EQ(format_duration(7384), "2h03m04s");
  EXPECT_EQ(format_duration(100 * 3600.0), "100h00m00s");
  EXPECT_EQ(format_duration(-1), "--");
  EXPECT_EQ(format_duration(NAN), "--");
  EXPECT_EQ(format_duration(INFINITY), "--");
}

TEST(Progress, EtaLeavesOutTheFirstStep) {
  EtaEstimator eta;
  EXPECT_LT(eta.eta_seconds(10), 0);  // nothing timed yet
  eta.step_done(10);                  // the first step (warm-up) took 10 s
  EXPECT_DOUBLE_EQ(eta.eta_seconds(5), 50);
  eta.step_done(12);
  eta.step_done(14);  // then 2 s a step
  EXPECT_DOUBLE_EQ(eta.eta_seconds(3), 6);
  EXPECT_DOUBLE_EQ(eta.eta_seconds(0), 0);
  EXPECT_DOUBLE_EQ(eta.elapsed_seconds(), 14);
}

ProgressFields fields() {
  ProgressFields p;
  p.step = 12;
  p.total = 100;
  p.loss = 2.34567;
  p.lr = 3e-4;
  p.grad_norm = 0.1234;
  p.tokens_per_second = 1234.4;
  p.elapsed_seconds = 65;
  p.eta_seconds = 480;
  return p;
}

TEST(Progress, LogLine) {
  ProgressFields p = fields();
  EXPECT_EQ(render_progress_line(p),
            "step 12/100  loss 2.3457  lr 3.00e-04  grad-norm 0.123  1234 tok/s  elapsed 1m05s  eta 8m00s");
  p.val_loss = 2.1;
  EXPECT_EQ(render_progress_line(p),
            "step 12/100  loss 2.3457  lr 3.00e-04  grad-norm 0.123  1234 tok/s  elapsed 1m05s  eta 8m00s  val 2.1000");
  p.best = true;
  p.eta_seconds = -1;
  EXPECT_EQ(render_progress_line(p),
            "step 12/100  loss 2.3457  lr 3.00e-04  grad-norm 0.123  1234 tok/s  elapsed 1m05s  eta --  val 2.1000 (best)");
}

TEST(Progress, BarFitsTheTerminal) {
  ProgressFields p = fields();
  // No width known: 30 cells, 12% of them filled.
  EXPECT_EQ(render_progress_bar(p, 0),
            "step 12/100 [###...........................]   12%  loss 2.3457  lr 3.00e-04  1234 tok/s  elapsed 1m05s  eta 8m00s");
  // 100 columns: the bar takes what the text leaves (16 cells).
  std::string wide = render_progress_bar(p, 100);
  EXPECT_EQ(wide, "step 12/100 [#...............]   12%  loss 2.3457  lr 3.00e-04  1234 tok/s  elapsed 1m05s  eta 8m00s");
  EXPECT_EQ(wide.size(), 100u);
  // 80 columns: the bar keeps 10 cells and the tail is cut.
  EXPECT_EQ(render_progress_bar(p, 80), "step 12/100 [#.........]   12%  loss 2.3457  lr 3.00e-04  1234 tok/s  elapsed 1m");
  p.step = 100;
  p.eta_seconds = 0;
  EXPECT_EQ(render_progress_bar(p, 0),
            "step 100/100 [##############################]  100%  loss 2.3457  lr 3.00e-04  1234 tok/s  elapsed 1m05s  eta 0s");
  p.step = 0;
  p.total = 0;  // nothing to divide by
  EXPECT_EQ(render_progress_bar(p, 0).substr(0, 47), "step 0/0 [..............................]    0%");
}

}  // namespace
