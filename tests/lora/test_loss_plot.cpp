// The loss curve picture (OUT/loss.svg): well-formed XML, one polyline point per step inside the
// plot, round tick labels, legend and title; one step, a constant loss, points that are not finite
// and an empty run give valid pictures without dividing by zero.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "wick/train/loss_plot.h"

using namespace wick::train;

namespace {

// "" when `xml` is well-formed (one root element, tags closed in order, quoted attributes, only
// the five predefined entities or character references); otherwise what is wrong and where.
std::string xml_error(const std::string& xml) {
  std::vector<std::string> open;
  int roots = 0;
  size_t i = 0;
  auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.'; };
  auto check_text = [&](size_t from, size_t to) -> std::string {
    for (size_t k = from; k < to; ++k) {
      if (xml[k] == '<') return "stray < at " + std::to_string(k);
      if (xml[k] != '&') continue;
      size_t semi = xml.find(';', k);
      if (semi == std::string::npos || semi > to) return "unterminated entity at " + std::to_string(k);
      std::string entity = xml.substr(k + 1, semi - k - 1);
      static const std::set<std::string> known{"amp", "lt", "gt", "quot", "apos"};
      if (!known.count(entity) && entity.rfind('#', 0) != 0) return "unknown entity &" + entity + ";";
    }
    return "";
  };
  if (xml.rfind("<?xml", 0) == 0) {
    i = xml.find("?>");
    if (i == std::string::npos) return "unterminated prolog";
    i += 2;
  }
  while (i < xml.size()) {
    size_t lt = xml.find('<', i);
    std::string text = xml.substr(i, (lt == std::string::npos ? xml.size() : lt) - i);
    if (open.empty() && text.find_first_not_of(" \n\r\t") != std::string::npos) return "text outside the root element";
    if (std::string e = check_text(i, lt == std::string::npos ? xml.size() : lt); !e.empty()) return e;
    if (lt == std::string::npos) break;
    i = lt + 1;
    bool closing = i < xml.size() && xml[i] == '/';
    if (closing) ++i;
    size_t start = i;
    while (i < xml.size() && name_char(xml[i])) ++i;
    std::string name = xml.substr(start, i - start);
    if (name.empty()) return "tag without a name at " + std::to_string(lt);
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : open.back());
      open.pop_back();
      if (i >= xml.size() || xml[i] != '>') return "malformed </" + name + ">";
      ++i;
      continue;
    }
    // Attributes: name="value" (value without '<'), then '>' or '/>'.
    std::set<std::string> seen;
    while (true) {
      while (i < xml.size() && std::isspace(static_cast<unsigned char>(xml[i]))) ++i;
      if (i >= xml.size()) return "unterminated <" + name;
      if (xml[i] == '>' || xml.compare(i, 2, "/>") == 0) break;
      size_t a = i;
      while (i < xml.size() && name_char(xml[i])) ++i;
      std::string attr = xml.substr(a, i - a);
      if (attr.empty() || i >= xml.size() || xml[i] != '=' || i + 1 >= xml.size() || xml[i + 1] != '"')
        return "malformed attribute in <" + name + "> at " + std::to_string(a);
      if (!seen.insert(attr).second) return "attribute " + attr + " twice in <" + name + ">";
      size_t close = xml.find('"', i + 2);
      if (close == std::string::npos) return "unterminated attribute " + attr;
      if (std::string e = check_text(i + 2, close); !e.empty()) return "attribute " + attr + ": " + e;
      i = close + 1;
    }
    bool empty = xml[i] == '/';
    i += empty ? 2 : 1;
    if (open.empty() && ++roots > 1) return "more than one root element";
    if (!empty) open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is not closed";
  if (roots != 1) return "no root element";
  return "";
}

// The (x, y) points of the polyline of class `cls`.
std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& cls) {
  size_t at = svg.find("<polyline class=\"" + cls + "\"");
  if (at == std::string::npos) return {};
  size_t p = svg.find("points=\"", at) + 8;
  std::stringstream ss(svg.substr(p, svg.find('"', p) - p));
  std::vector<std::pair<double, double>> out;
  for (std::string pair; ss >> pair;) {
    size_t comma = pair.find(',');
    out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return out;
}

// The texts of the <g class="tick-labels"> group.
std::vector<std::string> tick_labels(const std::string& svg) {
  size_t from = svg.find("<g class=\"tick-labels\""), to = svg.find("</g>", from);
  std::vector<std::string> out;
  for (size_t t = svg.find("<text", from); t < to; t = svg.find("<text", t + 1)) {
    size_t gt = svg.find('>', t);
    out.push_back(svg.substr(gt + 1, svg.find("</text>", gt) - gt - 1));
  }
  return out;
}

// Every point lies inside the plot area (800x450 picture, margins 72/24/48/56).
void expect_inside(const std::vector<std::pair<double, double>>& points) {
  for (auto [x, y] : points) {
    EXPECT_TRUE(std::isfinite(x) && std::isfinite(y));
    EXPECT_GE(x, 72 - 1e-9);
    EXPECT_LE(x, 800 - 24 + 1e-9);
    EXPECT_GE(y, 48 - 1e-9);
    EXPECT_LE(y, 450 - 56 + 1e-9);
  }
}

TEST(LossPlot, TheCheckerRejectsMalformedXml) {
  EXPECT_EQ(xml_error("<svg><g a=\"1\"/></svg>"), "");
  EXPECT_NE(xml_error("<svg><g></svg>"), "");
  EXPECT_NE(xml_error("<svg a=1></svg>"), "");
  EXPECT_NE(xml_error("<svg>a & b</svg>"), "");
  EXPECT_NE(xml_error("<svg></svg><svg></svg>"), "");
  EXPECT_NE(xml_error("<svg>"), "");
}

TEST(LossPlot, TrainingAndValidationCurves) {
  LossHistory h;
  for (int s = 1; s <= 16; ++s) h.train.emplace_back(s, 1.0 + 2.0 * (16 - s) / 15.0);  // 3.0 falling to 1.0
  h.validation = {{8, 2.2}, {16, 1.4}};
  h.best_step = 16;
  std::string svg = render_loss_svg(h);
  EXPECT_EQ(xml_error(svg), "");
  auto train = polyline(svg, "train"), val = polyline(svg, "validation");
  ASSERT_EQ(train.size(), 16u);
  ASSERT_EQ(val.size(), 2u);
  expect_inside(train);
  expect_inside(val);
  for (size_t i = 1; i < train.size(); ++i) {
    EXPECT_GT(train[i].first, train[i - 1].first);   // steps go right
    EXPECT_GT(train[i].second, train[i - 1].second);  // a falling loss goes down (SVG's y grows downwards)
  }
  EXPECT_DOUBLE_EQ(train.front().first, 72);  // the axis starts at the first step and ends at the last
  EXPECT_DOUBLE_EQ(train.back().first, 800 - 24);
  EXPECT_DOUBLE_EQ(val.back().first, train.back().first);
  // Loss 0.9..3.1 widened to round ticks 0.5..3.5; steps 1..16 ticked every 2.
  auto labels = tick_labels(svg);
  std::vector<std::string> want{"0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "2", "4", "6", "8", "10", "12", "14", "16"};
  EXPECT_EQ(labels, want);
  EXPECT_NE(svg.find("<title>wick train: loss per step</title>"), std::string::npos);
  EXPECT_NE(svg.find(">training loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">validation loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">best validation (step 16)</text>"), std::string::npos);
  EXPECT_NE(svg.find("<circle class=\"best\""), std::string::npos);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
}

TEST(LossPlot, EdgeCasesGiveValidPictures) {
  auto check = [](const LossHistory& h, size_t train_points, const std::string& what) {
    std::string svg = render_loss_svg(h);
    EXPECT_EQ(xml_error(svg), "") << what;
    for (const char* bad : {"nan", "inf", "NaN", "Inf"}) EXPECT_EQ(svg.find(bad), std::string::npos) << what << ": " << bad;
    auto points = polyline(svg, "train");
    EXPECT_EQ(points.size(), train_points) << what;
    expect_inside(points);
    return svg;
  };
  LossHistory one;
  one.train = {{1, 2.5}};
  std::string svg = check(one, 1, "one step");
  EXPECT_NE(svg.find("<circle class=\"train-point\""), std::string::npos);  // visible although a one-point line is not
  EXPECT_EQ(svg.find("validation"), std::string::npos);

  LossHistory constant;
  for (int s = 1; s <= 5; ++s) constant.train.emplace_back(s, 2.0);
  constant.validation = {{5, 2.0}};
  svg = check(constant, 5, "constant loss");
  auto points = polyline(svg, "train");
  for (auto p : points) EXPECT_DOUBLE_EQ(p.second, points[0].second);
  EXPECT_GT(points[0].second, 48);  // room above and below
  EXPECT_LT(points[0].second, 450 - 56);

  LossHistory zero;  // constant zero loss
  zero.train = {{3, 0.0}, {4, 0.0}};
  check(zero, 2, "zero loss");

  LossHistory not_finite;
  not_finite.train = {{1, 3.0}, {2, NAN}, {3, INFINITY}, {4, 2.0}};
  not_finite.validation = {{2, NAN}};
  svg = check(not_finite, 2, "points that are not finite");
  EXPECT_EQ(polyline(svg, "validation").size(), 0u);

  svg = check(LossHistory{}, 0, "no steps");
  EXPECT_NE(svg.find("no steps yet"), std::string::npos);
}

TEST(LossPlot, WrittenAtomically) {
  std::string dir = ::testing::TempDir() + "/wick_plot_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  LossHistory h;
  h.train = {{1, 2.0}, {2, 1.0}};
  write_loss_svg(dir + "/loss.svg", h);
  std::ifstream in(dir + "/loss.svg");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), render_loss_svg(h));
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);  // no temporary left behind
  std::filesystem::remove_all(dir);
}

}  // namespace
