// The loss curve of a training run as a self-contained SVG picture (OUT/loss.svg): training loss per
// step as a line, validation passes as points joined by a line, the best validation ringed; axes
// with round tick values, legend and title. No dependency: the picture is written as text.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace wick::train {

struct LossHistory {
  std::vector<std::pair<int64_t, double>> train;       // (step, loss) of each step
  std::vector<std::pair<int64_t, double>> validation;  // (step, validation loss) of each pass
  int64_t best_step = 0;                               // the best validation's step (0: none)
};

// Points that are not finite are left out; one step, a constant loss or no step at all still give
// a valid picture.
std::string render_loss_svg(const LossHistory& history, const std::string& title = "wick train: loss per step");

// Writes render_loss_svg(history) to `path` atomically.
void write_loss_svg(const std::string& path, const LossHistory& history);

}  // namespace wick::train
