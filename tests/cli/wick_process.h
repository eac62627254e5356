// Running the real `wick` binary from a test: arguments, stdin, stdout, stderr and exit code; and
// under a pseudo-terminal (util-linux `script`) for what wick only does on a terminal.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace wick_test {

struct WickRun {
  int code;
  std::string out, err;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A path under the test temp folder, unique per process and call (ctest runs tests in parallel).
inline std::string temp_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "/wick_" + stem + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
}

// Runs `wick ARGS` with `input` on stdin; `stdout_to` replaces the captured stdout (e.g. /dev/full).
inline WickRun run_wick(const std::string& args, const std::string& input = "", const std::string& stdout_to = "") {
  std::string base = temp_path("run");
  std::string in = base + "_in", out = base + "_out", err = base + "_err";
  std::ofstream(in, std::ios::binary) << input;
  std::string cmd = std::string(WICK_BINARY) + " " + args + " < " + in + " > " + (stdout_to.empty() ? out : stdout_to) +
                    " 2> " + err;
  int status = std::system(cmd.c_str());
  WickRun r{WEXITSTATUS(status), stdout_to.empty() ? read_file(out) : "", read_file(err)};
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// Runs `wick ARGS` on a pseudo-terminal fed with `keys`; then, once the terminal has shown
// `wait_for` `times` times, with `last_keys` (keys typed before wick reads the terminal are taken
// by the terminal's line discipline, which treats Ctrl-D as its own end of file). Returns what the
// terminal showed (stdout and stderr together); a run past two minutes is killed.
inline WickRun run_wick_on_terminal(const std::string& args, const std::string& keys, const std::string& wait_for = "",
                                    int times = 0, const std::string& last_keys = "") {
  std::string base = temp_path("tty");
  std::string in = base + "_in", last = base + "_last", out = base + "_out";
  std::ofstream(in, std::ios::binary) << keys;
  std::ofstream(last, std::ios::binary) << last_keys;
  std::string wait = wait_for.empty() ? "" : "for i in $(seq 1200); do [ \"$(grep -c '" + wait_for + "' " + out +
                                                 ")\" -ge " + std::to_string(times) + " ] && break; sleep 0.1; done; ";
  std::string cmd = "(cat " + in + "; " + wait + "cat " + last + ") | timeout 120 script -qec \"" +
                    std::string(WICK_BINARY) + " " + args + "\" /dev/null > " + out + " 2>&1";
  int status = std::system(cmd.c_str());
  WickRun r{WEXITSTATUS(status), read_file(out), ""};
  for (const std::string& f : {in, last, out}) std::filesystem::remove(f);
  return r;
}

}  // namespace wick_test
