// Range checks for numeric options, with messages that name the bound a user must meet (CLI11's
// own print the limits of double in full, and accept values the library then rejects).
#pragma once

#include <CLI/CLI.hpp>

#include <sstream>
#include <string>

namespace wick::cli {

// A number within [low, high] (or (low, high] when `open_low`).
template <class T>
CLI::Validator number_in(T low, T high, bool open_low = false) {
  std::ostringstream range;
  range << (open_low ? "(" : "[") << low << ", " << high << "]";
  return CLI::Validator(
      [=, text = range.str()](std::string& input) -> std::string {
        T value{};
        if (!CLI::detail::lexical_cast(input, value)) return "'" + input + "' is not a number";
        if (value < low || value > high || (open_low && value == low)) return "must be in " + text + ", got " + input;
        return {};
      },
      "in " + range.str());
}

// A number > 0 (`strict`) or >= 0.
template <class T>
CLI::Validator number_above_zero(bool strict) {
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        T value{};
        if (!CLI::detail::lexical_cast(input, value)) return "'" + input + "' is not a number";
        if (strict ? !(value > 0) : !(value >= 0))
          return std::string(strict ? "must be > 0" : "must be >= 0") + ", got " + input;
        return {};
      },
      strict ? "> 0" : ">= 0");
}

inline CLI::Validator positive() { return number_above_zero<double>(true); }
inline CLI::Validator non_negative() { return number_above_zero<double>(false); }

}  // namespace wick::cli
