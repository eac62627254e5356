// Ctrl-C as a request instead of an end: while an InterruptScope lives, the first SIGINT sets its
// flag (the running work stops at a safe point) and a second one ends the process at once.
#pragma once

#include <atomic>

namespace wick::cli {

class InterruptScope {
 public:
  // `first_message` (may be null) is written to stderr on the first SIGINT.
  explicit InterruptScope(const char* first_message);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  // Set by the first SIGINT; only one scope is active at a time.
  const std::atomic<bool>& requested() const;
};

}  // namespace wick::cli
