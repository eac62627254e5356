// Reading chat lines: libedit's readline on a terminal, std::getline otherwise.
#include "wick/cli/line_reader.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifdef WICK_HAVE_LINE_EDITING
#include <editline/readline.h>
#endif

namespace wick::cli {

LineReader::LineReader(std::string prompt) : prompt_(std::move(prompt)), terminal_(isatty(fileno(stdin))) {}

bool LineReader::read(std::string& line) {
#ifdef WICK_HAVE_LINE_EDITING
  if (terminal_) {
    char* text = readline(prompt_.c_str());
    if (!text) return false;
    line = text;
    std::free(text);
    if (!line.empty()) add_history(line.c_str());
    return true;
  }
#endif
  if (terminal_) std::fputs(prompt_.c_str(), stdout), std::fflush(stdout);
  if (!std::getline(std::cin, line)) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace wick::cli
