// SIGINT handling for the commands that stop at a safe point (train) or stop a part of their work
// (a chat reply): only async-signal-safe calls in the handler.
#include "wick/cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "wick/base/error.h"

namespace wick::cli {

namespace {

std::atomic<bool> g_requested{false};
const char* g_first_message = nullptr;
struct sigaction g_previous {};
bool g_active = false;

extern "C" void on_sigint(int) {
  if (g_requested.exchange(true)) {
    const char message[] = "\nwick: interrupted again: exiting now\n";
    ssize_t ignored = ::write(STDERR_FILENO, message, sizeof(message) - 1);
    (void)ignored;
    ::_exit(130);
  }
  if (g_first_message) {
    ssize_t ignored = ::write(STDERR_FILENO, g_first_message, std::strlen(g_first_message));
    (void)ignored;
  }
}

}  // namespace

InterruptScope::InterruptScope(const char* first_message) {
  WICK_CHECK(!g_active, "InterruptScope: one is already active");
  g_requested.store(false);
  g_first_message = first_message;
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in progress go on
  ::sigaction(SIGINT, &action, &g_previous);
  g_active = true;
}

InterruptScope::~InterruptScope() {
  ::sigaction(SIGINT, &g_previous, nullptr);
  g_active = false;
}

const std::atomic<bool>& InterruptScope::requested() const { return g_requested; }

}  // namespace wick::cli
