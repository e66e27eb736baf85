// duet::Error is the one exception type of the project. Bad input never aborts: code throws an
// Error naming the file, the field and what was expected; the CLI prints it on one line and exits
// with 2 for usage errors and 1 for runtime errors.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace duet {

enum class ErrorKind { runtime, usage };

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::runtime)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return kind_ == ErrorKind::usage ? 2 : 1; }

 private:
  ErrorKind kind_;
};

// Concatenates anything streamable into one string: str("shape ", n, "x", m).
template <class... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str(std::forward<Args>(args)...));
}

template <class... Args>
[[noreturn]] void fail_usage(Args&&... args) {
  throw Error(str(std::forward<Args>(args)...), ErrorKind::usage);
}

}  // namespace duet

// Throws duet::Error with the message pieces when `cond` is false.
#define DUET_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::duet::fail(__VA_ARGS__); \
  } while (0)
