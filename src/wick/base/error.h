// Error type and helpers: every failure in wick is an exception that names what went wrong.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace wick {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Raised when a device allocation fails; the message says how much was asked and how much is free.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

}  // namespace wick

#define WICK_CHECK(cond, ...)          \
  do {                                 \
    if (!(cond)) ::wick::fail(__VA_ARGS__); \
  } while (0)
