#include "libs/common/check.h"

#include <cstdio>
#include <cstdlib>

namespace sb::internal {

CheckFailure::CheckFailure(std::string_view file, int line, std::string_view condition)
    : file_(file), line_(line), condition_(condition) {}

CheckFailure::~CheckFailure() {
  const std::string message = message_.str();
  std::fprintf(stderr, "%.*s:%d: SB_CHECK failed: %.*s%s%s\n", static_cast<int>(file_.size()),
               file_.data(), line_, static_cast<int>(condition_.size()), condition_.data(),
               message.empty() ? "" : ": ", message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace sb::internal
