#include "libs/pg/migrate.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/pg/migration.h"
#include "libs/pg/pool.h"
#include "tests/integration/libs/pg/pg_test_support.h"

namespace sb::pg {
namespace {

using test::FreshDatabase;
using test::MakePool;
using test::Query1;

// Every migration after the first leaves a row behind, in a table without a unique key, so a
// migration that ran twice shows up as a duplicate row.
MigrationSet Billing(std::string_view schema) {
  return {schema,
          {{1, "0001_runs.sql", "CREATE TABLE runs (migration int NOT NULL)"},
           {2, "0002_invoices.sql",
            "CREATE TABLE invoices (id bigint PRIMARY KEY, total numeric NOT NULL);"
            "INSERT INTO runs VALUES (2)"},
           {3, "0003_invoice_lines.sql",
            "CREATE TABLE invoice_lines (invoice_id bigint REFERENCES invoices, n int);"
            "INSERT INTO runs VALUES (3)"}}};
}

std::vector<int> Ints(Pool& pool, const std::string& sql) {
  absl::StatusOr<std::vector<int>> values =
      pool.Run([&](pqxx::work& tx) -> absl::StatusOr<std::vector<int>> {
        std::vector<int> out;
        for (const auto& row : tx.exec(sql)) out.push_back(row[0].as<int>());
        return out;
      });
  REQUIRE(values.status() == absl::OkStatus());
  return *values;
}

std::vector<int> Runs(Pool& pool, const std::string& schema) {
  return Ints(pool, "SELECT migration FROM " + schema + ".runs ORDER BY migration");
}

std::vector<int> Versions(Pool& pool, const std::string& schema) {
  return Ints(pool, "SELECT version FROM " + schema + ".schema_migrations ORDER BY version");
}

bool TableExists(Pool& pool, const std::string& name) {
  return Query1<bool>(pool, "SELECT to_regclass('" + name + "') IS NOT NULL").value_or(false);
}

TEST_CASE("Migrate applies each migration exactly once when two processes start at once", "[pg]") {
  const std::string dsn = FreshDatabase();
  auto first = MakePool({.dsn = dsn, .size = 2});
  auto second = MakePool({.dsn = dsn, .size = 2});
  // A few rounds, each on a fresh schema, to give a race the chance to show.
  for (int round = 0; round < 5; ++round) {
    const std::string schema = absl::StrCat("billing_", round);
    const MigrationSet set = Billing(schema);
    test::Rendezvous start(2);
    absl::Status other;
    std::thread thread([&] {
      start.ArriveAndWait();
      other = Migrate(*second, set);
    });
    start.ArriveAndWait();
    const absl::Status mine = Migrate(*first, set);
    thread.join();
    CHECK(mine == absl::OkStatus());
    CHECK(other == absl::OkStatus());
    CHECK(Runs(*first, schema) == std::vector<int>{2, 3});
    CHECK(Versions(*first, schema) == std::vector<int>{1, 2, 3});
    CHECK(test::Query1<std::string>(
              *first, "SELECT name FROM " + schema + ".schema_migrations WHERE version = 3")
              .value_or("") == "0003_invoice_lines.sql");
    // search_path was the schema: unqualified names landed in it.
    CHECK(TableExists(*first, schema + ".invoice_lines"));
    CHECK_FALSE(TableExists(*first, "public.invoice_lines"));
  }
}

TEST_CASE("Migrate a second time applies nothing, and later only what is new", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase()});
  MigrationSet set = Billing("billing");
  REQUIRE(Migrate(*pool, set) == absl::OkStatus());
  const std::string applied_at_sql =
      "SELECT extract(epoch FROM max(applied_at))::text FROM billing.schema_migrations";
  const std::string applied_at = Query1<std::string>(*pool, applied_at_sql).value_or("");

  CHECK(Migrate(*pool, set) == absl::OkStatus());
  CHECK(Runs(*pool, "billing") == std::vector<int>{2, 3});
  CHECK(Query1<std::string>(*pool, applied_at_sql).value_or("") == applied_at);

  set.migrations.push_back({4, "0004_more.sql", "INSERT INTO runs VALUES (4)"});
  CHECK(Migrate(*pool, set) == absl::OkStatus());
  CHECK(Runs(*pool, "billing") == std::vector<int>{2, 3, 4});
  CHECK(Versions(*pool, "billing") == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("Migrate names the migration that failed and keeps the ones before it", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase()});
  MigrationSet set = Billing("billing");
  set.migrations.push_back({4, "0004_broken.sql", "CREATE TABLE broken ("});
  set.migrations.push_back({5, "0005_after.sql", "INSERT INTO runs VALUES (5)"});

  const absl::Status status = Migrate(*pool, set);
  CHECK(status.code() == absl::StatusCode::kInternal);
  CHECK(absl::StrContains(status.message(), "0004_broken.sql"));
  CHECK(Versions(*pool, "billing") == std::vector<int>{1, 2, 3});
  CHECK(Runs(*pool, "billing") == std::vector<int>{2, 3});

  // Fixed in the next build: the rest is applied.
  set.migrations[3].sql = "CREATE TABLE broken (id int)";
  CHECK(Migrate(*pool, set) == absl::OkStatus());
  CHECK(Versions(*pool, "billing") == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(Runs(*pool, "billing") == std::vector<int>{2, 3, 5});
}

TEST_CASE("Migrate refuses versions that are not strictly increasing", "[pg]") {
  auto pool = MakePool({.dsn = FreshDatabase()});
  const MigrationSet backwards{"billing",
                               {{2, "0002_b.sql", "SELECT 1"}, {1, "0001_a.sql", "SELECT 1"}}};
  const absl::Status status = Migrate(*pool, backwards);
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(status.message(), "0001_a.sql"));

  const MigrationSet repeated{"billing",
                              {{1, "0001_a.sql", "SELECT 1"}, {1, "0001_b.sql", "SELECT 1"}}};
  CHECK(Migrate(*pool, repeated).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Migrate(*pool, MigrationSet{"", {}}).code() == absl::StatusCode::kFailedPrecondition);
  // Refused before touching the database.
  CHECK(Query1<int>(*pool, "SELECT count(*)::int FROM pg_namespace WHERE nspname = 'billing'")
            .value_or(-1) == 0);
}

}  // namespace
}  // namespace sb::pg
