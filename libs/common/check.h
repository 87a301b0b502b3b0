#pragma once

// SB_CHECK(cond) aborts the process when an invariant of our own code is broken. Never use it on
// input from outside (requests, packets, configuration) or on the environment (a database that is
// down): those are errors to return as absl::Status.
//
//   SB_CHECK(state_ == State::kStarted);
//   SB_CHECK(index < size) << "index " << index << " of " << size;

#include <sstream>
#include <string_view>

namespace sb::internal {

// Collects an optional message and aborts with file, line and condition when destroyed.
class CheckFailure {
 public:
  CheckFailure(std::string_view file, int line, std::string_view condition);
  [[noreturn]] ~CheckFailure();
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;

  template <typename T>
  CheckFailure& operator<<(const T& value) {
    message_ << value;
    return *this;
  }

 private:
  std::string_view file_;
  int line_;
  std::string_view condition_;
  std::ostringstream message_;
};

// Lets `SB_CHECK(c) << x;` parse as a statement whose stream part runs only on failure.
struct CheckVoidify {
  void operator&(const CheckFailure&) {}
};

}  // namespace sb::internal

#define SB_CHECK(cond) \
  (cond)               \
      ? (void)0        \
      : ::sb::internal::CheckVoidify() & ::sb::internal::CheckFailure(__FILE__, __LINE__, #cond)
