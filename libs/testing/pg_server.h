#pragma once

// PostgreSQL for tests.
//
// TestPostgres runs a private PostgreSQL 15 server: initdb into a fresh TempDir (owned by the
// `postgres` system user, since postgres refuses to run as root), then `postgres` as that user on
// 127.0.0.1:<a free port>, unix sockets in the data directory, trust authentication, fsync off.
// Tests can stop it, start it again on the same port and data, or SIGKILL it, to see what their
// code does when the database goes away and comes back.
//
//   absl::StatusOr<std::unique_ptr<TestPostgres>> pg = TestPostgres::Create();
//   REQUIRE(pg.ok());
//   auto pool = pg::Pool::Create({.dsn = (*pg)->dsn()});
//   REQUIRE((*pg)->Stop().ok());   ...   REQUIRE((*pg)->Start().ok());
//
// Most tests only need some server and a database of their own:
//   absl::StatusOr<std::string> server = SharedTestPgDsn();
//   absl::StatusOr<std::string> dsn = CreateTestDatabase(*server);
//
// Server binaries come from $SB_PG_BIN_DIR, default /usr/lib/postgresql/15/bin. The process must
// run as root (to switch to `postgres`); $TMPDIR, if set, must be traversable by `postgres`.
//
// TestPostgres is not thread-safe: one test drives it. The free functions are thread-safe.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/testing/child_process.h"

namespace sb::testing {

class TestPostgres {
 public:
  // Runs initdb and, when `start` is true, Start(). With `start` false the port is chosen and
  // dsn() is valid but nothing listens yet: a test can make clients before the server is up.
  // Internal (with the tail of initdb's or the server's log) when that fails.
  static absl::StatusOr<std::unique_ptr<TestPostgres>> Create(bool start = true);

  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;
  // Stops the server (SIGKILL if a fast shutdown does not finish) and removes its data.
  ~TestPostgres();

  // Starts the server on port() and waits until it accepts connections (up to 30 s).
  // FailedPrecondition when it is running already; Internal, with its log's tail, when it exits
  // or does not become ready.
  absl::Status Start();
  // Fast shutdown (SIGINT: sessions are terminated with SQLSTATE 57P01, then it checkpoints and
  // exits); waits for it. OK when it was not running.
  absl::Status Stop();
  // SIGKILL to the server and all its backends, as in a crash; waits until they are gone.
  void Kill();
  bool running();

  int port() const { return port_; }
  // host=127.0.0.1 port=<port> user=postgres dbname=postgres
  std::string dsn() const;
  // The server's log (stderr), for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  explicit TestPostgres(int port);

  TempDir dir_;
  std::string data_dir_;
  std::string log_path_;
  int port_;
  std::optional<ChildProcess> server_;
};

// Creates a database with a new unique name on the server that `server_dsn` (a keyword/value
// libpq connection string or a postgresql:// URI) points to, with psql, and returns the
// connection string for it. Internal with psql's output when that fails.
absl::StatusOr<std::string> CreateTestDatabase(const std::string& server_dsn);

// The server for this test process: $SB_TEST_PG_DSN when it is set (tools/test starts one
// throwaway server for all test binaries), otherwise one TestPostgres started on the first call
// and stopped when the process exits. Errors are those of TestPostgres::Create.
absl::StatusOr<std::string> SharedTestPgDsn();

}  // namespace sb::testing
