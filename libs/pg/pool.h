#pragma once

// Pool: a fixed number of libpqxx connections to one PostgreSQL database, and Run(), which runs a
// function in a transaction on one of them.
//
//   SB_ASSIGN_OR_RETURN(std::unique_ptr<pg::Pool> pool, pg::Pool::Create({.dsn = dsn}));
//   absl::StatusOr<int64_t> count = pool->Run([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
//     return tx.exec_params1("SELECT count(*) FROM org.teams WHERE tenant_id = $1", tenant)[0]
//         .as<int64_t>();
//   });
//
// Connections are opened lazily, when a Run needs one and no idle connection is left, so a
// process starts (and Create succeeds) while PostgreSQL is down; Run then returns Unavailable
// until the server is back, and the pool reconnects by itself. An idle connection is checked
// before it is handed out (its socket must have nothing to read: a server that shut down or
// crashed has closed it), and a connection that failed is closed, never handed out again.
//
// Run's status codes (see errors.h for the full SQLSTATE table):
//   OK                  fn returned OK and the transaction committed.
//   fn's own status     fn returned an error: the transaction was rolled back, the status is
//                       returned unchanged (and never retried).
//   AlreadyExists       unique violation.
//   FailedPrecondition  foreign-key, check or not-null violation.
//   Aborted             serialization failure or deadlock, still failing after max_retries
//                       further attempts (each retry runs fn again from the start, after a short
//                       jittered back-off: fn must have no side effects outside the transaction).
//   Unavailable         no connection could be made, the connection broke, the server is
//                       shutting down, the connection broke during COMMIT (the outcome is
//                       unknown: retry only idempotent work), or no pooled connection became
//                       free within acquire_timeout. Unavailable rather than ResourceExhausted
//                       for a busy pool because it is a transient server-side condition that
//                       the caller should retry with back-off, not a quota the client exceeded.
//   DeadlineExceeded    a statement ran longer than statement_timeout (or a lock timeout).
//   Internal            any other error (SQL syntax, data errors, std::exceptions thrown by
//                       fn): logged with its SQLSTATE; the message holds no SQL. Exceptions
//                       that do not derive from std::exception are not caught (the transaction
//                       is still rolled back and the connection returned).
//
// fn gets a pqxx::work (READ COMMITTED). For SERIALIZABLE or REPEATABLE READ, make
// "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE" the first statement fn executes. fn must not
// commit or abort the transaction itself, must not keep references to it, and should use
// SET LOCAL rather than SET so that no session state leaks to the next user of the connection.
//
// Thread-safe: any number of threads may call Run, Ping and stats concurrently. A thread inside
// fn holds one connection; calling Run again from inside fn takes a second one (and waits up to
// acquire_timeout for it). The pool must outlive every call.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pqxx/pqxx>  // fn works with the whole libpqxx API: results, rows, fields

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sb::pg {

struct PoolOptions {
  // libpq connection string, keyword/value ("host=db port=5432 dbname=switchboard user=sb") or
  // URI ("postgresql://sb@db/switchboard").
  std::string dsn;
  // Maximum number of open connections.
  int size = 8;
  // How long Run/Ping wait for a free connection when all `size` are in use.
  absl::Duration acquire_timeout = absl::Seconds(5);
  // Time limit for opening one connection (libpq's connect_timeout: whole seconds, at least 2).
  absl::Duration connect_timeout = absl::Seconds(5);
  // Server-side limit for each statement (the session's statement_timeout); zero means none.
  absl::Duration statement_timeout = absl::Seconds(30);
  // How many times Run runs fn again after a serialization failure or deadlock.
  int max_retries = 3;
};

// Counters for metrics. A snapshot; the fields are not read atomically together.
struct PoolStats {
  int size = 0;                     // PoolOptions::size
  int in_use = 0;                   // connections held by a Run or Ping right now
  int idle = 0;                     // open connections waiting in the pool
  int64_t connections_created = 0;  // successful connects since the pool was made
  int64_t connections_dropped = 0;  // connections closed because they broke or went stale
  int64_t connect_failures = 0;     // connects that failed (server down, refused, ...)
  int64_t acquire_timeouts = 0;     // Run/Ping calls that found no free connection in time
  int64_t retries = 0;              // transactions run again after Aborted
};

class Pool {
 public:
  // Checks the options (InvalidArgument for an empty dsn, size < 1, negative timeouts or
  // max_retries) and makes the pool. Never connects: succeeds while the server is down.
  static absl::StatusOr<std::unique_ptr<Pool>> Create(PoolOptions options);

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // Closes the idle connections. No Run may be in progress.
  ~Pool();

  // Runs `fn(pqxx::work&)` in a transaction; fn returns absl::Status or absl::StatusOr<T>, and
  // Run returns the same type. Commits when fn returns OK, rolls back otherwise. Status codes in
  // the file comment.
  template <typename Fn>
  std::invoke_result_t<Fn&, pqxx::work&> Run(Fn&& fn);

  // Runs `fn(pqxx::nontransaction&)` on a pooled connection without BEGIN and COMMIT: each
  // statement commits by itself. A single-statement read then takes one round trip instead of
  // three (LookupContacts on every inbound call). For reads only: statements see no common
  // snapshot and nothing is rolled back. Status codes as for Run; a read that fails on a reused
  // connection that turns out broken (a PostgreSQL restart) is tried again on a fresh one.
  template <typename Fn>
  std::invoke_result_t<Fn&, pqxx::nontransaction&> Read(Fn&& fn);

  // Runs "SELECT 1" on a pooled connection, waiting at most `timeout` for a free one (and for
  // connecting, when no idle connection is left, at most connect_timeout). When every pooled
  // connection is busy it uses one extra connection kept for health checks instead, so that a
  // busy pool is not reported as a database that does not answer. OK or Unavailable.
  absl::Status Ping(absl::Duration timeout = absl::Seconds(2));

  PoolStats stats() const;

 private:
  class Lease;
  explicit Pool(PoolOptions options);

  struct Attempt {
    absl::Status status;
    // BEGIN failed on a connection reused from the pool: nothing ran, so the transaction may be
    // tried again at once on another connection.
    bool stale = false;
    // The database aborted the transaction (serialization failure, deadlock): run it again.
    bool retryable = false;
  };

  absl::Status RunTransaction(absl::FunctionRef<absl::Status(pqxx::work&)> fn);
  absl::Status RunRead(absl::FunctionRef<absl::Status(pqxx::nontransaction&)> fn);
  // One try of fn in a `Tx` (pqxx::work or pqxx::nontransaction) on a leased connection.
  template <typename Tx>
  Attempt RunOnce(absl::FunctionRef<absl::Status(Tx&)> fn);
  absl::StatusOr<Lease> Acquire(absl::Duration timeout);
  // Opens and configures a connection; Unavailable when that fails.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect();
  void Release(std::unique_ptr<pqxx::connection> conn, bool healthy);
  absl::Status PingOnHealthConnection();
  void BackOff(int attempt);

  const PoolOptions options_;
  const std::string conninfo_;  // dsn with connect_timeout added

  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // guarded by mu_; most recent last
  int in_use_ = 0;                                       // guarded by mu_
  PoolStats counters_;        // guarded by mu_; only the int64 counters are used
  bool server_down_ = false;  // guarded by mu_; logs the transitions once, not every failure

  std::mutex health_mu_;                           // held while the health connection is used
  std::unique_ptr<pqxx::connection> health_conn_;  // guarded by health_mu_; outside `size`
};

namespace internal {

template <typename T>
struct IsStatusOr : std::false_type {};
template <typename T>
struct IsStatusOr<absl::StatusOr<T>> : std::true_type {};

// Calls `runner` (a function of FunctionRef<Status(Tx&)>) with `fn`, passing fn's value through
// when it returns a StatusOr: each attempt overwrites the value, and only the last (committed)
// attempt's value is returned.
template <typename Tx, typename Fn, typename Runner>
std::invoke_result_t<Fn&, Tx&> RunWithValue(Fn& fn, Runner runner) {
  using R = std::invoke_result_t<Fn&, Tx&>;
  if constexpr (std::is_same_v<R, absl::Status>) {
    return runner(fn);
  } else {
    static_assert(IsStatusOr<R>::value,
                  "Pool::Run's function must return absl::Status or absl::StatusOr<T>");
    std::optional<typename R::value_type> value;
    absl::Status status = runner([&](Tx& tx) -> absl::Status {
      R result = fn(tx);
      if (!result.ok()) return result.status();
      value.emplace(*std::move(result));
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return *std::move(value);
  }
}

}  // namespace internal

template <typename Fn>
std::invoke_result_t<Fn&, pqxx::work&> Pool::Run(Fn&& fn) {
  return internal::RunWithValue<pqxx::work>(
      fn, [this](absl::FunctionRef<absl::Status(pqxx::work&)> f) { return RunTransaction(f); });
}

template <typename Fn>
std::invoke_result_t<Fn&, pqxx::nontransaction&> Pool::Read(Fn&& fn) {
  return internal::RunWithValue<pqxx::nontransaction>(
      fn, [this](absl::FunctionRef<absl::Status(pqxx::nontransaction&)> f) { return RunRead(f); });
}

}  // namespace sb::pg
