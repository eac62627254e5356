// Progress and the summary line of a generation.
#include "wick/cli/generation_report.h"

#include <cstdio>

namespace wick::cli {

namespace {

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

double per_second(int64_t tokens, double secs) { return secs > 0 ? double(tokens) / secs : 0.0; }

}  // namespace

GenerationReport::GenerationReport(bool progress) : progress_(progress) { start(); }

void GenerationReport::start() {
  start_ = first_token_ = last_token_ = Clock::now();
  tokens_ = 0;
}

void GenerationReport::prefill(int64_t done, int64_t total) {
  if (!progress_) return;
  if (done >= total) {
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
  } else {
    std::fprintf(stderr, "\rprompt: %lld/%lld tokens (%.0f%%, %.1f s)", (long long)done, (long long)total,
                 100.0 * double(done) / double(total), seconds(Clock::now() - start_));
    drawn_ = true;
  }
  std::fflush(stderr);
}

void GenerationReport::token() {
  last_token_ = Clock::now();
  if (tokens_++ == 0) first_token_ = last_token_;
}

std::string GenerationReport::summary(int64_t prompt_tokens, int64_t generated_tokens) const {
  double to_first = seconds((tokens_ > 0 ? first_token_ : Clock::now()) - start_);
  // The first token comes out of the prompt's pass; the speed of generation counts the others.
  int64_t decoded = tokens_ > 1 ? tokens_ - 1 : 0;
  double decoding = decoded > 0 ? seconds(last_token_ - first_token_) : 0.0;
  char line[256];
  std::snprintf(line, sizeof line,
                "wick: prompt %lld tokens (%.1f tokens/s), first token after %.2f s; generated %lld tokens "
                "(%.1f tokens/s)",
                (long long)prompt_tokens, per_second(prompt_tokens, to_first), to_first, (long long)generated_tokens,
                per_second(decoded, decoding));
  return line;
}

}  // namespace wick::cli
