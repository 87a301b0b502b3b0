// The pool against a server of its own that the tests stop, kill and start again.

#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "libs/pg/pool.h"
#include "libs/testing/pg_server.h"
#include "tests/integration/libs/pg/pg_test_support.h"

namespace sb::pg {
namespace {

using test::Exec;
using test::MakePool;
using test::Query1;
using testing::TestPostgres;

std::unique_ptr<TestPostgres> NewServer(bool start) {
  absl::StatusOr<std::unique_ptr<TestPostgres>> server = TestPostgres::Create(start);
  REQUIRE(server.status() == absl::OkStatus());
  return *std::move(server);
}

PoolOptions SmallPool(const std::string& dsn) {
  return {.dsn = dsn,
          .size = 2,
          .acquire_timeout = absl::Seconds(2),
          .connect_timeout = absl::Seconds(2)};
}

// Whether a query can be seen running on the server, polled through `pool`.
bool WaitUntilRunning(Pool& pool, const std::string& query_prefix) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    absl::StatusOr<int> n =
        Query1<int>(pool,
                    "SELECT count(*)::int FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
                    "state = 'active' AND query LIKE '" +
                        query_prefix + "%'");
    if (n.ok() && *n > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_CASE("Pool made while the server is down returns Unavailable until it comes up", "[pg]") {
  auto server = NewServer(/*start=*/false);
  auto pool = MakePool(SmallPool(server->dsn()));

  const absl::Time start = absl::Now();
  CHECK(Exec(*pool, "SELECT 1").code() == absl::StatusCode::kUnavailable);
  CHECK(pool->Ping().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::Now() - start < absl::Seconds(10));
  CHECK(pool->stats().connect_failures == 2);
  CHECK(pool->stats().in_use == 0);

  REQUIRE(server->Start() == absl::OkStatus());
  CHECK(Query1<int>(*pool, "SELECT 1").value_or(0) == 1);
  CHECK(pool->Ping() == absl::OkStatus());
}

TEST_CASE("Pool recovers by itself when the server restarts or crashes", "[pg]") {
  auto server = NewServer(/*start=*/true);
  auto pool = MakePool(SmallPool(server->dsn()));
  REQUIRE(Exec(*pool, "CREATE TABLE t (id int)") == absl::OkStatus());
  // Two open connections in the pool: a nested Run needs a second one.
  REQUIRE(pool->Run([&](pqxx::work&) { return Exec(*pool, "SELECT 1"); }) == absl::OkStatus());
  REQUIRE(pool->stats().idle == 2);

  SECTION("restart while idle: the stale connections are never handed out") {
    REQUIRE(server->Stop() == absl::OkStatus());
    REQUIRE(server->Start() == absl::OkStatus());
    // The very first query after the restart succeeds.
    CHECK(Exec(*pool, "INSERT INTO t VALUES (1)") == absl::OkStatus());
    CHECK(pool->Run([&](pqxx::work&) { return Exec(*pool, "SELECT 1"); }) == absl::OkStatus());
    CHECK(pool->stats().connections_dropped == 2);
  }

  SECTION("stop with a query in flight, fail fast while down, work again after start") {
    absl::Status in_flight;
    std::thread sleeper([&] { in_flight = Exec(*pool, "SELECT pg_sleep(60)"); });
    const bool seen = WaitUntilRunning(*pool, "SELECT pg_sleep");
    REQUIRE(server->Stop() == absl::OkStatus());  // fast shutdown terminates the session
    sleeper.join();
    REQUIRE(seen);
    CHECK(in_flight.code() == absl::StatusCode::kUnavailable);

    const absl::Time start = absl::Now();
    for (int i = 0; i < 3; ++i) {
      CHECK(Exec(*pool, "INSERT INTO t VALUES (1)").code() == absl::StatusCode::kUnavailable);
    }
    CHECK(pool->Ping().code() == absl::StatusCode::kUnavailable);
    CHECK(absl::Now() - start < absl::Seconds(10));

    REQUIRE(server->Start() == absl::OkStatus());
    CHECK(Exec(*pool, "INSERT INTO t VALUES (1)") == absl::OkStatus());
    CHECK(pool->Ping() == absl::OkStatus());
  }

  SECTION("SIGKILL: Unavailable while down, then work again after start") {
    server->Kill();
    const absl::Time start = absl::Now();
    CHECK(Exec(*pool, "INSERT INTO t VALUES (1)").code() == absl::StatusCode::kUnavailable);
    CHECK(absl::Now() - start < absl::Seconds(10));
    REQUIRE(server->Start() == absl::OkStatus());  // after crash recovery
    CHECK(Exec(*pool, "INSERT INTO t VALUES (1)") == absl::OkStatus());
  }

  CHECK(Query1<int>(*pool, "SELECT count(*)::int FROM t").value_or(-1) == 1);
  CHECK(pool->stats().in_use == 0);
}

}  // namespace
}  // namespace sb::pg
