#include "libs/pg/pool.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "libs/common/status_macros.h"
#include "tests/integration/libs/pg/pg_test_support.h"

namespace sb::pg {
namespace {

using test::Exec;
using test::FreshDatabase;
using test::MakePool;
using test::Query1;

TEST_CASE("Pool::Run commits when fn returns OK and rolls back otherwise", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase()});
  REQUIRE(Exec(*pool, "CREATE TABLE t (id int PRIMARY KEY)") == absl::OkStatus());

  CHECK(Exec(*pool, "INSERT INTO t VALUES (1)") == absl::OkStatus());

  const absl::Status returned = pool->Run([](pqxx::work& tx) {
    tx.exec("INSERT INTO t VALUES (2)");
    return absl::NotFoundError("no such team");
  });
  CHECK(returned == absl::NotFoundError("no such team"));

  const absl::Status thrown = pool->Run([](pqxx::work& tx) -> absl::Status {
    tx.exec("INSERT INTO t VALUES (3)");
    throw std::runtime_error("bug in fn");
  });
  CHECK(thrown.code() == absl::StatusCode::kInternal);

  const absl::StatusOr<std::vector<int>> ids =
      pool->Run([](pqxx::work& tx) -> absl::StatusOr<std::vector<int>> {
        std::vector<int> out;
        for (const auto& row : tx.exec("SELECT id FROM t ORDER BY id"))
          out.push_back(row[0].as<int>());
        return out;
      });
  REQUIRE(ids.status() == absl::OkStatus());
  CHECK(*ids == std::vector<int>{1});

  const absl::StatusOr<int> error = pool->Run(
      [](pqxx::work&) -> absl::StatusOr<int> { return absl::PermissionDeniedError("no"); });
  CHECK(error.status() == absl::PermissionDeniedError("no"));
}

TEST_CASE("Pool::Read runs statements without a transaction and maps errors as Run does", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase()});
  REQUIRE(Exec(*pool, "CREATE TABLE t (id int PRIMARY KEY)") == absl::OkStatus());
  REQUIRE(Exec(*pool, "INSERT INTO t VALUES (1), (2)") == absl::OkStatus());

  const absl::StatusOr<int> count = pool->Read([](pqxx::nontransaction& tx) -> absl::StatusOr<int> {
    return tx.exec1("SELECT count(*) FROM t")[0].as<int>();
  });
  REQUIRE(count.status() == absl::OkStatus());
  CHECK(*count == 2);
  // No BEGIN: the session is not inside a transaction block while fn runs.
  const absl::StatusOr<std::string> status =
      pool->Read([](pqxx::nontransaction& tx) -> absl::StatusOr<std::string> {
        return tx.exec1("SELECT now() = statement_timestamp()")[0].as<std::string>();
      });
  REQUIRE(status.status() == absl::OkStatus());
  CHECK(*status == "t");

  const absl::Status missing = pool->Read([](pqxx::nontransaction& tx) -> absl::Status {
    tx.exec("SELECT * FROM no_such_table");
    return absl::OkStatus();
  });
  CHECK(missing.code() == absl::StatusCode::kInternal);
  // The connection is fine afterwards (the failed statement left no aborted transaction behind).
  CHECK(pool->Read([](pqxx::nontransaction& tx) -> absl::StatusOr<int> {
              return tx.exec1("SELECT 1")[0].as<int>();
            })
            .value_or(0) == 1);
  CHECK(pool->Read([](pqxx::nontransaction&) -> absl::StatusOr<int> {
              return absl::NotFoundError("no such contact");
            })
            .status() == absl::NotFoundError("no such contact"));
}

TEST_CASE("Pool::Run maps constraint violations to AlreadyExists and FailedPrecondition", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase()});
  REQUIRE(Exec(*pool,
               "CREATE TABLE parent (id int PRIMARY KEY);"
               "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent,"
               "                    n int NOT NULL CHECK (n > 0));"
               "INSERT INTO parent VALUES (1)") == absl::OkStatus());

  const absl::Status duplicate = Exec(*pool, "INSERT INTO parent VALUES (1)");
  CHECK(duplicate.code() == absl::StatusCode::kAlreadyExists);
  CHECK(absl::StrContains(duplicate.message(), "parent_pkey"));
  // The DETAIL line holds the row's values: it stays out of the message.
  CHECK_FALSE(absl::StrContains(duplicate.message(), "Key (id)"));

  CHECK(Exec(*pool, "INSERT INTO child VALUES (1, 42, 1)").code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(Exec(*pool, "INSERT INTO child VALUES (1, 1, 0)").code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(Exec(*pool, "INSERT INTO child VALUES (1, 1, NULL)").code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(Exec(*pool, "INSERT INTO child VALUES (1, 1, 1)") == absl::OkStatus());
}

TEST_CASE("Pool::Run maps a SQL error to Internal without the SQL in the message", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase(), .size = 1});
  const absl::Status status = Exec(*pool, "SELEC secret_column FROM secret_table");
  CHECK(status.code() == absl::StatusCode::kInternal);
  CHECK(absl::StrContains(status.message(), "42601"));
  CHECK_FALSE(absl::StrContains(status.message(), "secret"));
  CHECK_FALSE(absl::StrContains(status.message(), "SELEC"));
  // The connection survives the error and is used again.
  CHECK(Query1<int>(*pool, "SELECT 1").value_or(0) == 1);
  CHECK(pool->stats().connections_created == 1);
}

TEST_CASE("Pool::Run maps a statement timeout to DeadlineExceeded", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase(), .statement_timeout = absl::Milliseconds(200)});
  const absl::Time start = absl::Now();
  CHECK(Exec(*pool, "SELECT pg_sleep(30)").code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::Now() - start < absl::Seconds(10));
  CHECK(Query1<int>(*pool, "SELECT 1").value_or(0) == 1);
}

// Makes a serialization failure happen for sure: fn reads the row under SERIALIZABLE, then a
// second SERIALIZABLE transaction on another connection updates it and commits, then fn updates
// it too ("could not serialize access due to concurrent update").
absl::Status IncrementWithConflict(Pool& pool, std::atomic<int>& attempts, bool conflict_always) {
  return pool.Run([&](pqxx::work& tx) -> absl::Status {
    const int attempt = ++attempts;
    tx.exec("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
    const int v = tx.exec1("SELECT v FROM counter WHERE id = 1")[0].as<int>();
    if (attempt == 1 || conflict_always) {
      SB_RETURN_IF_ERROR(pool.Run([](pqxx::work& other) {
        other.exec("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        other.exec("UPDATE counter SET v = v + 1 WHERE id = 1");
        return absl::OkStatus();
      }));
    }
    tx.exec("UPDATE counter SET v = " + std::to_string(v + 1) + " WHERE id = 1");
    return absl::OkStatus();
  });
}

TEST_CASE("Pool::Run retries a serialization failure and then succeeds", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase(), .size = 2, .max_retries = 3});
  REQUIRE(Exec(*pool,
               "CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL);"
               "INSERT INTO counter VALUES (1, 0)") == absl::OkStatus());
  std::atomic<int> attempts = 0;
  CHECK(IncrementWithConflict(*pool, attempts, /*conflict_always=*/false) == absl::OkStatus());
  CHECK(attempts == 2);
  CHECK(pool->stats().retries == 1);
  // Both increments count: the retry read the other transaction's value.
  CHECK(Query1<int>(*pool, "SELECT v FROM counter WHERE id = 1").value_or(-1) == 2);
}

TEST_CASE("Pool::Run gives up with Aborted after max_retries", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase(), .size = 2, .max_retries = 2});
  REQUIRE(Exec(*pool,
               "CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL);"
               "INSERT INTO counter VALUES (1, 0)") == absl::OkStatus());
  std::atomic<int> attempts = 0;
  CHECK(IncrementWithConflict(*pool, attempts, /*conflict_always=*/true).code() ==
        absl::StatusCode::kAborted);
  CHECK(attempts == 3);
  // Only the three conflicting transactions committed.
  CHECK(Query1<int>(*pool, "SELECT v FROM counter WHERE id = 1").value_or(-1) == 3);
}

TEST_CASE("Pool::Run retries the victim of a deadlock", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase(), .size = 2});
  REQUIRE(Exec(*pool,
               "CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL);"
               "INSERT INTO counter VALUES (1, 0), (2, 0)") == absl::OkStatus());
  test::Rendezvous both_hold_their_first_row(2);
  std::atomic<int> attempts = 0;
  std::atomic<bool> rendezvous_failed = false;
  // Each transaction locks one row, waits until the other holds the other row, then wants it.
  auto cross = [&](int first, int second) {
    bool waited = false;
    return pool->Run([&](pqxx::work& tx) {
      ++attempts;
      tx.exec("UPDATE counter SET v = v + 1 WHERE id = " + std::to_string(first));
      if (!waited) {
        waited = true;
        if (!both_hold_their_first_row.ArriveAndWait()) rendezvous_failed = true;
      }
      tx.exec("UPDATE counter SET v = v + 1 WHERE id = " + std::to_string(second));
      return absl::OkStatus();
    });
  };
  absl::Status other;
  std::thread thread([&] { other = cross(2, 1); });
  const absl::Status mine = cross(1, 2);
  thread.join();
  CHECK_FALSE(rendezvous_failed);
  CHECK(mine == absl::OkStatus());
  CHECK(other == absl::OkStatus());
  CHECK(attempts == 3);  // the deadlock victim ran twice
  CHECK(Query1<int>(*pool, "SELECT sum(v)::int FROM counter").value_or(-1) == 4);
}

TEST_CASE("Pool::Run returns Unavailable when no connection frees up in time", "[pg]") {
  auto pool =
      MakePool({.dsn = FreshDatabase(), .size = 1, .acquire_timeout = absl::Milliseconds(100)});
  absl::Status inner;
  const absl::Status outer = pool->Run([&](pqxx::work&) {
    inner = Exec(*pool, "SELECT 1");  // the only connection is ours
    return absl::OkStatus();
  });
  CHECK(outer == absl::OkStatus());
  CHECK(inner.code() == absl::StatusCode::kUnavailable);
  const PoolStats stats = pool->stats();
  CHECK(stats.acquire_timeouts == 1);
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == 1);
}

TEST_CASE("Pool::Ping answers OK while every pooled connection is busy", "[pg]") {
  auto pool =
      MakePool({.dsn = FreshDatabase(), .size = 1, .acquire_timeout = absl::Milliseconds(100)});
  absl::Status ping_while_busy;
  const absl::Status outer = pool->Run([&](pqxx::work& tx) {
    tx.exec("SELECT 1");
    ping_while_busy = pool->Ping(absl::Milliseconds(100));  // the only connection is ours
    return absl::OkStatus();
  });
  CHECK(outer == absl::OkStatus());
  CHECK(ping_while_busy == absl::OkStatus());
  CHECK(pool->stats().acquire_timeouts == 0);
  CHECK(pool->Ping() == absl::OkStatus());
}

TEST_CASE("Pool serves many threads with at most size connections", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase(), .size = 3});
  REQUIRE(Exec(*pool,
               "CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL);"
               "INSERT INTO counter VALUES (1, 0)") == absl::OkStatus());
  constexpr int kThreads = 8;
  constexpr int kRunsEach = 25;
  std::atomic<int> failures = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kRunsEach; ++j) {
        if (!Exec(*pool, "UPDATE counter SET v = v + 1 WHERE id = 1").ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(Query1<int>(*pool, "SELECT v FROM counter").value_or(-1) == kThreads * kRunsEach);
  const PoolStats stats = pool->stats();
  CHECK(stats.connections_created <= 3);
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == stats.connections_created);
}

TEST_CASE("Pool::Create rejects bad options without connecting", "[pg]") {
  CHECK(Pool::Create({.dsn = ""}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Pool::Create({.dsn = "host=127.0.0.1", .size = 0}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(Pool::Create({.dsn = "host=127.0.0.1", .max_retries = -1}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sb::pg
