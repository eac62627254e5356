// What `wick generate` tells a user on stderr while it works: prompt-processing progress on a
// terminal, and after generation one line with the prompt and generated token counts, their speeds
// and the time to the first token (as llama.cpp does).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace wick::cli {

class GenerationReport {
 public:
  // `progress`: draw the prompt's progress (stderr is a terminal).
  explicit GenerationReport(bool progress);
  // The start of prompt processing.
  void start();
  // `done` of `total` prompt positions are in the cache.
  void prefill(int64_t done, int64_t total);
  // A token was generated (the first one marks the end of prompt processing).
  void token();
  // The summary line.
  std::string summary(int64_t prompt_tokens, int64_t generated_tokens) const;

 private:
  using Clock = std::chrono::steady_clock;
  bool progress_, drawn_ = false;
  Clock::time_point start_, first_token_, last_token_;
  int64_t tokens_ = 0;
};

}  // namespace wick::cli
