// How the command line reports misuse and describes itself: one style of error for every command
// (`wick: error: ...`, exit code 2 for usage errors, with a "did you mean" for a mistyped option or
// command) and the text of `wick --version`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "wick/base/error.h"

namespace wick::cli {

// Exit status of a command line that cannot run as written (a parse error or a bad combination of
// options); other failures exit with 1.
constexpr int kUsageExit = 2;

// A bad combination or value of options found after parsing.
class UsageError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void usage_fail(const Args&... args) {
  throw UsageError(str_cat(args...));
}

// Prints help or version for those requests (exit 0), else the one-line error; returns the exit code.
int report_parse_error(CLI::App& app, const CLI::ParseError& e);

// Version, commit, backends compiled in, CUDA devices seen, optional features.
std::string version_text();

// The candidates closest to `word` by edit distance (a typo, a missing or extra letter), best first.
std::vector<std::string> closest_names(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace wick::cli
