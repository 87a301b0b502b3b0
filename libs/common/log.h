#pragma once

// Logging: JSON lines on stderr through spdlog, one object per line:
//   {"ts":"2026-11-24T18:00:00.123456Z","level":"info","msg":"...","tenant":"...","call_id":"..."}
// Code logs with spdlog's functions (spdlog::info("routing call {}", id)). Fields that apply to a
// stretch of work on one thread (tenant, call id, request id) are attached with ScopedLogFields and
// appear on every line logged inside that scope.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace sb {

// Installs the JSON formatter on spdlog's default logger and sets its level. `level` is one of
// trace, debug, info, warn, error, critical, off; anything else is InvalidArgument.
absl::Status InitLogging(std::string_view level);

// Appends `fields` to every log line written on this thread while the object lives. Nestable.
class ScopedLogFields {
 public:
  ScopedLogFields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  size_t added_ = 0;
};

// Appends `text` to `out` as the inside of a JSON string (quotes, backslashes and control
// characters escaped; bytes >= 0x80 copied as they are).
void AppendJsonEscaped(std::string_view text, std::string& out);

}  // namespace sb
