// What a call threw, for the tests of error paths: the duet::Error's one-line message or its exit
// code (2 usage, 1 runtime). A call that throws nothing gives "" and 0, so an expected error that
// never comes fails the assertion that follows.
#pragma once

#include <functional>
#include <string>

#include "duet/tensor/error.h"

namespace duet::test {

inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline int exit_code(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.exit_code();
  }
  return 0;
}

}  // namespace duet::test
