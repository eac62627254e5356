// The lines a user types into `wick chat`: on a terminal with line editing and a history of the
// session (libedit, when wick was built with it), else plain lines from stdin.
#pragma once

#include <string>

namespace wick::cli {

class LineReader {
 public:
  // `prompt` is shown before each line when stdin is a terminal.
  explicit LineReader(std::string prompt);
  // The next line without its newline; false at the end of input.
  bool read(std::string& line);

 private:
  std::string prompt_;
  bool terminal_;
};

}  // namespace wick::cli
