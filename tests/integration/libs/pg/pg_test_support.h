#pragma once

// Shared set-up for the libs/pg integration tests.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"
#include "libs/testing/pg_server.h"

namespace sb::pg::test {

// A new, empty database on the shared test server.
inline std::string FreshDatabase() {
  absl::StatusOr<std::string> server = testing::SharedTestPgDsn();
  REQUIRE(server.status() == absl::OkStatus());
  absl::StatusOr<std::string> dsn = testing::CreateTestDatabase(*server);
  REQUIRE(dsn.status() == absl::OkStatus());
  return *dsn;
}

inline std::unique_ptr<Pool> MakePool(PoolOptions options) {
  absl::StatusOr<std::unique_ptr<Pool>> pool = Pool::Create(std::move(options));
  REQUIRE(pool.status() == absl::OkStatus());
  return *std::move(pool);
}

inline absl::Status Exec(Pool& pool, const std::string& sql) {
  return pool.Run([&](pqxx::work& tx) {
    tx.exec(sql);
    return absl::OkStatus();
  });
}

// The single value `sql` selects, or the error.
template <typename T>
absl::StatusOr<T> Query1(Pool& pool, const std::string& sql) {
  return pool.Run([&](pqxx::work& tx) -> absl::StatusOr<T> { return tx.exec1(sql)[0].as<T>(); });
}

// Lets `n` threads wait for each other, with a time limit so that a thread that never arrives
// fails the test instead of hanging it.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : waiting_for_(n) {}
  bool ArriveAndWait(absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock lock(mu_);
    if (--waiting_for_ == 0) {
      all_here_.notify_all();
      return true;
    }
    return all_here_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                              [&] { return waiting_for_ <= 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable all_here_;
  int waiting_for_;
};

}  // namespace sb::pg::test
