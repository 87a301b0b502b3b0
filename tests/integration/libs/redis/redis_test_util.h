#pragma once

// Helpers for the libs/redis integration tests: status assertions that print the status, and
// polling with a generous bound instead of sleeping for a guessed time.

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/common/status_macros.h"
#include "libs/redis/client.h"
#include "libs/testing/eventually.h"
#include "libs/testing/redis_server.h"

// REQUIRE that a Status or StatusOr is OK, printing it when it is not.
#define SB_REQUIRE_OK(expr)                                                   \
  do {                                                                        \
    const ::absl::Status sb_require_status_ = ::sb::internal::AsStatus(expr); \
    INFO(sb_require_status_.ToString());                                      \
    REQUIRE(sb_require_status_.ok());                                         \
  } while (false)

// REQUIRE that a StatusOr is OK and move its value into `lhs` (a declaration or a variable).
#define SB_REQUIRE_OK_AND_ASSIGN(lhs, rexpr) \
  SB_REQUIRE_OK_AND_ASSIGN_IMPL_(SB_STATUS_CONCAT_(sb_require_or_, __LINE__), lhs, rexpr)
#define SB_REQUIRE_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  {                                                          \
    INFO(statusor.status().ToString());                      \
    REQUIRE(statusor.ok());                                  \
  }                                                          \
  lhs = *std::move(statusor)

namespace sb::redis::testing {

using ::sb::testing::Eventually;

// A client with short timeouts, so that failure paths finish quickly.
// The test Redis (tools/test's, or one started for this process), or the test stops.
inline std::string SharedUrl() {
  auto url = ::sb::testing::SharedTestRedisUrl();
  INFO(url.status().ToString());
  REQUIRE(url.ok());
  return *url;
}

inline std::unique_ptr<Client> MakeClient(const std::string& url, int pool_size = 4) {
  auto client = Client::Create({.url = url,
                                .pool_size = pool_size,
                                .connect_timeout = absl::Milliseconds(500),
                                .command_timeout = absl::Seconds(1)});
  INFO(client.status().ToString());
  REQUIRE(client.ok());
  return *std::move(client);
}

// The number after `prefix` at the start of a line of INFO `section`, e.g.
// InfoNumber(c, "stats", "total_reads_processed:") or InfoNumber(c, "commandstats",
// "cmdstat_eval:calls="); `absent` when no line starts with `prefix`.
inline int64_t InfoNumber(Client& client, const std::string& section, const std::string& prefix,
                          int64_t absent = -1) {
  auto reply = client.Command({"INFO", section});
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  const std::string& text = reply->str();
  size_t at = text.find(prefix);
  while (at != std::string::npos && at != 0 && text[at - 1] != '\n') {
    at = text.find(prefix, at + 1);
  }
  if (at == std::string::npos) return absent;
  const size_t begin = at + prefix.size();
  const size_t end = text.find_first_of(",\r\n", begin);
  int64_t value = 0;
  INFO(text.substr(at, end - at));
  REQUIRE(absl::SimpleAtoi(text.substr(begin, end - begin), &value));
  return value;
}

}  // namespace sb::redis::testing
