// The loss curve as SVG text.
#include "wick/train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "wick/io/safetensors.h"

namespace wick::train {

namespace {

constexpr double kWidth = 800, kHeight = 450;
constexpr double kLeft = 72, kRight = 24, kTop = 48, kBottom = 56;
constexpr const char* kTrainColor = "#1f77b4";
constexpr const char* kValidationColor = "#ff7f0e";

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf), fmt, args...);
  return std::string(buf, size_t(std::clamp(n, 0, int(sizeof(buf)) - 1)));
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Tick spacing of 1, 2 or 5 times a power of ten giving about `intervals` intervals over `span` (> 0).
double nice_step(double span, int intervals) {
  double raw = span / intervals;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / magnitude;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
}

// An axis from `lo` to `hi` (lo < hi) with ticks at multiples of `step`.
struct Axis {
  double lo, hi, step;
  std::vector<double> ticks() const {
    std::vector<double> out;
    for (double k = std::ceil(lo / step - 1e-9); k <= std::floor(hi / step + 1e-9); ++k) out.push_back(k * step);
    return out;
  }
};

// The step axis covers the steps exactly (integer ticks); one step gets a step of room either side.
Axis step_axis(double lo, double hi) {
  if (hi - lo < 1) {
    lo -= 1;
    hi += 1;
  }
  return {lo, hi, std::max(1.0, nice_step(hi - lo, 8))};
}

// The loss axis is widened to round tick values; a constant loss gets room above and below.
Axis loss_axis(double lo, double hi) {
  bool non_negative = lo >= 0;
  double pad = hi - lo > 1e-12 * std::max(1.0, std::abs(hi)) ? 0.05 * (hi - lo) : std::max(0.05 * std::abs(hi), 0.05);
  lo -= pad;
  hi += pad;
  if (non_negative) lo = std::max(lo, 0.0);
  double step = nice_step(hi - lo, 5);
  return {std::floor(lo / step) * step, std::ceil(hi / step) * step, step};
}

std::string tick_label(double value, double step) {
  int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  std::string s = format("%.*f", decimals, value);
  if (s.find_first_not_of("-0.") == std::string::npos) s = format("%.*f", decimals, 0.0);  // no "-0.0"
  return s;
}

}  // namespace

std::string render_loss_svg(const LossHistory& history, const std::string& title) {
  std::vector<std::pair<int64_t, double>> train, validation;
  for (const auto& p : history.train)
    if (std::isfinite(p.second)) train.push_back(p);
  for (const auto& p : history.validation)
    if (std::isfinite(p.second)) validation.push_back(p);

  double smin = 1, smax = 1, lmin = 0, lmax = 1;
  bool any = false;
  for (const auto* series : {&train, &validation})
    for (const auto& [step, loss] : *series) {
      if (!any) {
        smin = smax = double(step);
        lmin = lmax = loss;
        any = true;
      }
      smin = std::min(smin, double(step));
      smax = std::max(smax, double(step));
      lmin = std::min(lmin, loss);
      lmax = std::max(lmax, loss);
    }
  Axis xa = step_axis(smin, smax), ya = loss_axis(lmin, lmax);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto x = [&](double step) { return kLeft + (step - xa.lo) / (xa.hi - xa.lo) * plot_w; };
  auto y = [&](double loss) { return kTop + (ya.hi - loss) / (ya.hi - ya.lo) * plot_h; };

  std::string s;
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
              "font-family=\"sans-serif\" font-size=\"12\">\n",
              kWidth, kHeight, kWidth, kHeight);
  s += "<title>" + xml_escape(title) + "</title>\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += format("<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">", kWidth / 2) + xml_escape(title) +
       "</text>\n";

  // Grid, ticks and their labels.
  s += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double t : ya.ticks()) s += format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", kLeft, y(t), kLeft + plot_w, y(t));
  for (double t : xa.ticks()) s += format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x(t), kTop, x(t), kTop + plot_h);
  s += "</g>\n";
  s += "<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\">\n";
  s += format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", kLeft, kTop + plot_h, kLeft + plot_w, kTop + plot_h);
  s += format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", kLeft, kTop, kLeft, kTop + plot_h);
  s += "</g>\n";
  s += "<g class=\"tick-labels\" fill=\"#333333\">\n";
  for (double t : ya.ticks())
    s += format("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", kLeft - 6, y(t) + 4) + tick_label(t, ya.step) + "</text>\n";
  for (double t : xa.ticks())
    s += format("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x(t), kTop + plot_h + 18) + tick_label(t, xa.step) +
         "</text>\n";
  s += "</g>\n";
  s += format("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n", kLeft + plot_w / 2, kHeight - 14);
  s += format("<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">loss</text>\n",
              kTop + plot_h / 2, kTop + plot_h / 2);

  // The curves.
  auto polyline = [&](const std::vector<std::pair<int64_t, double>>& points, const char* cls, const char* color) {
    std::string out = format("<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", cls, color);
    for (size_t i = 0; i < points.size(); ++i)
      out += format("%s%.1f,%.1f", i ? " " : "", x(double(points[i].first)), y(points[i].second));
    return out + "\"/>\n";
  };
  s += polyline(train, "train", kTrainColor);
  if (train.size() == 1)  // a polyline of one point draws nothing
    s += format("<circle class=\"train-point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x(double(train[0].first)),
                y(train[0].second), kTrainColor);
  const std::pair<int64_t, double>* best = nullptr;
  if (!validation.empty()) {
    s += polyline(validation, "validation", kValidationColor);
    s += format("<g class=\"validation-points\" fill=\"%s\">\n", kValidationColor);
    for (const auto& p : validation) {
      s += format("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n", x(double(p.first)), y(p.second));
      if (p.first == history.best_step) best = &p;
    }
    s += "</g>\n";
  }
  if (best)
    s += format("<circle class=\"best\" cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\"/>\n",
                x(double(best->first)), y(best->second));

  // Legend, top right inside the plot.
  std::vector<std::pair<std::string, std::string>> entries{{"training loss", kTrainColor}};
  if (!validation.empty()) entries.push_back({"validation loss", kValidationColor});
  if (best) entries.push_back({format("best validation (step %lld)", (long long)best->first), "#2ca02c"});
  double lw = 190, lh = 8 + 18 * double(entries.size()), lx = kLeft + plot_w - lw - 8, ly = kTop + 8;
  s += "<g class=\"legend\">\n";
  s += format("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n",
              lx, ly, lw, lh);
  for (size_t i = 0; i < entries.size(); ++i) {
    double ey = ly + 15 + 18 * double(i);
    if (best && i + 1 == entries.size())  // the ring, as on the curve
      s += format("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx + 20,
                  ey - 4, entries[i].second.c_str());
    else
      s += format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx + 8,
                  ey - 4, lx + 32, ey - 4, entries[i].second.c_str());
    s += format("<text x=\"%.1f\" y=\"%.1f\">", lx + 40, ey) + xml_escape(entries[i].first) + "</text>\n";
  }
  s += "</g>\n";
  if (!any)
    s += format("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888888\">no steps yet</text>\n",
                kLeft + plot_w / 2, kTop + plot_h / 2);
  s += "</svg>\n";
  return s;
}

void write_loss_svg(const std::string& path, const LossHistory& history) {
  std::string text = render_loss_svg(history);
  io::write_text_atomic(path, text);
}

}  // namespace wick::train
