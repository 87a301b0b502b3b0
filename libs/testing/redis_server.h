#pragma once

// Redis for integration tests.
//
// TestRedis runs a private redis-server on 127.0.0.1 and a free port, without persistence (no
// RDB, no AOF; its working directory is a TempDir), for tests that stop, restart, kill or freeze
// Redis, or flush its script cache:
//
//   TestRedis redis;
//   REQUIRE(redis.Start().ok());
//   auto client = sb::redis::Client::Create({.url = redis.url()});
//   REQUIRE(redis.Stop().ok());   // Redis is down...
//   REQUIRE(redis.Start().ok());  // ...and back on the same port, empty
//
// Tests that only need some Redis share one: SharedTestRedisUrl() is $SB_TEST_REDIS_URL when set
// (tools/test starts one throwaway server for the whole run), otherwise a TestRedis started on
// first use and killed when the test process exits. Tests on a shared server keep to their own
// keys with UniqueKeyPrefix().
//
// Status codes: Start() returns FailedPrecondition when the server is already running and
// Unavailable when redis-server does not come up (the message holds the end of its log); Stop()
// returns Internal when the server cannot be made to exit.
//
// Thread-safety: a TestRedis belongs to one test thread. SharedTestRedisUrl() and
// UniqueKeyPrefix() are thread-safe.

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/testing/child_process.h"

namespace sb::testing {

class TestRedis {
 public:
  // Picks the port and the data directory; starts nothing.
  TestRedis();
  // Kills the server when it is running.
  ~TestRedis();
  TestRedis(const TestRedis&) = delete;
  TestRedis& operator=(const TestRedis&) = delete;

  // Starts redis-server on port() (for the first time, or again after Stop/Kill) and waits up to
  // 10 s until it answers PING.
  absl::Status Start();
  // Shuts the server down (SIGTERM) and waits until it has exited; SIGKILL after 10 s.
  absl::Status Stop();
  // Kills the server (SIGKILL), as a crash would, and waits until it has exited.
  void Kill();
  // Freezes (SIGSTOP) and thaws (SIGCONT) the server: it keeps accepting TCP connections but
  // answers nothing, like a hung or overloaded Redis.
  void Pause();
  void Resume();

  bool running();
  int port() const { return port_; }
  // redis://127.0.0.1:<port>
  std::string url() const;

 private:
  int port_;
  TempDir dir_;
  std::optional<ChildProcess> process_;
};

// The Redis URL for tests that share a server; see above.
absl::StatusOr<std::string> SharedTestRedisUrl();

// A key prefix no other test (in this or another process) uses, e.g. "test:streams:4242:17:3:".
// `name` should say which test it is, to make leftover keys easy to trace.
std::string UniqueKeyPrefix(std::string_view name = "t");

}  // namespace sb::testing
