#include "libs/pg/pool.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <random>

#include <spdlog/spdlog.h>
#include <pqxx/except>
#include <pqxx/nontransaction>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/check.h"
#include "libs/pg/errors.h"

namespace sb::pg {
namespace {

// Adds key=value to a libpq connection string written in either syntax. libpq keeps the last
// value of a repeated keyword, so this overrides what the DSN says.
std::string WithParam(const std::string& dsn, const std::string& key, const std::string& value) {
  if (absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://")) {
    return absl::StrCat(dsn, dsn.find('?') == std::string::npos ? "?" : "&", key, "=", value);
  }
  return absl::StrCat(dsn, " ", key, "=", value);
}

// An idle connection has nothing to read: the server only talks when asked. A readable socket
// means it closed the connection (shutdown, crash, idle timeout, pg_terminate_backend) or sent a
// FATAL error before doing so.
bool LooksHealthy(const pqxx::connection& conn) {
  if (!conn.is_open()) return false;
  pollfd pfd{};
  pfd.fd = conn.sock();
  pfd.events = POLLIN;
  if (pfd.fd < 0) return false;
  return ::poll(&pfd, 1, 0) == 0;
}

}  // namespace

// A connection taken from the pool; gives it back (or closes it when it broke) when destroyed.
class Pool::Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<pqxx::connection> conn, bool reused)
      : pool_(pool), conn_(std::move(conn)), reused_(reused) {}
  Lease(Lease&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)),
        conn_(std::move(other.conn_)),
        reused_(other.reused_),
        healthy_(other.healthy_) {}
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    if (pool_ == nullptr) return;
    const bool healthy = healthy_ && conn_->is_open();
    pool_->Release(std::move(conn_), healthy);
  }

  pqxx::connection& conn() { return *conn_; }
  bool reused() const { return reused_; }
  void MarkBroken() { healthy_ = false; }

 private:
  Pool* pool_;
  std::unique_ptr<pqxx::connection> conn_;
  bool reused_;
  bool healthy_ = true;
};

absl::StatusOr<std::unique_ptr<Pool>> Pool::Create(PoolOptions options) {
  if (options.dsn.empty()) return absl::InvalidArgumentError("pg pool: dsn is empty");
  if (options.size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("pg pool: size ", options.size, " < 1"));
  }
  if (options.acquire_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("pg pool: acquire_timeout must be positive");
  }
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("pg pool: connect_timeout must be positive");
  }
  if (options.statement_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("pg pool: statement_timeout is negative");
  }
  if (options.max_retries < 0) return absl::InvalidArgumentError("pg pool: max_retries < 0");
  return std::unique_ptr<Pool>(new Pool(std::move(options)));
}

Pool::Pool(PoolOptions options)
    : options_(std::move(options)),
      conninfo_(WithParam(options_.dsn, "connect_timeout",
                          absl::StrCat(absl::ToInt64Seconds(
                              absl::Ceil(options_.connect_timeout, absl::Seconds(1)))))) {
  idle_.reserve(options_.size);
}

Pool::~Pool() {
  std::lock_guard lock(mu_);
  SB_CHECK(in_use_ == 0) << in_use_ << " pg connections still in use when the pool is destroyed";
}

PoolStats Pool::stats() const {
  std::lock_guard lock(mu_);
  PoolStats stats = counters_;
  stats.size = options_.size;
  stats.in_use = in_use_;
  stats.idle = static_cast<int>(idle_.size());
  return stats;
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> Pool::Connect() {
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo_);
    // set_variable rather than a raw SET: libpqxx replays it if it ever reconnects by itself.
    conn->set_variable("statement_timeout",
                       absl::StrCat(absl::ToInt64Milliseconds(options_.statement_timeout)));
    conn->set_variable("client_min_messages", "warning");
    std::lock_guard lock(mu_);
    ++counters_.connections_created;
    if (server_down_) {
      server_down_ = false;
      spdlog::info("pg: connected to the database again");
    }
    return conn;
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    ++counters_.connect_failures;
    // One line per outage, not one per failed query.
    if (!server_down_) {
      server_down_ = true;
      spdlog::warn("pg: cannot connect to the database: {}", e.what());
    } else {
      spdlog::debug("pg: cannot connect to the database: {}", e.what());
    }
    return absl::UnavailableError("cannot connect to the database");
  }
}

absl::StatusOr<Pool::Lease> Pool::Acquire(absl::Duration timeout) {
  std::unique_ptr<pqxx::connection> conn;
  std::vector<std::unique_ptr<pqxx::connection>> stale;  // closed after the lock is released
  {
    std::unique_lock lock(mu_);
    // Capped so that an infinite timeout cannot overflow the clock arithmetic.
    const auto deadline = std::chrono::steady_clock::now() +
                          absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(24)));
    if (!freed_.wait_until(lock, deadline, [&] { return in_use_ < options_.size; })) {
      ++counters_.acquire_timeouts;
      return absl::UnavailableError(absl::StrCat("no database connection free within ",
                                                 absl::FormatDuration(timeout), " (all ",
                                                 options_.size, " in use)"));
    }
    ++in_use_;
    while (!idle_.empty() && conn == nullptr) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      if (!LooksHealthy(*conn)) {
        ++counters_.connections_dropped;
        stale.push_back(std::move(conn));
      }
    }
  }
  if (conn != nullptr) return Lease(this, std::move(conn), /*reused=*/true);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> fresh = Connect();
  if (!fresh.ok()) {
    Release(nullptr, false);
    return fresh.status();
  }
  return Lease(this, *std::move(fresh), /*reused=*/false);
}

void Pool::Release(std::unique_ptr<pqxx::connection> conn, bool healthy) {
  std::unique_ptr<pqxx::connection> broken;
  {
    std::lock_guard lock(mu_);
    --in_use_;
    if (conn != nullptr && healthy) {
      idle_.push_back(std::move(conn));
    } else if (conn != nullptr) {
      ++counters_.connections_dropped;
      broken = std::move(conn);
    }
  }
  freed_.notify_one();
}

template <typename Tx>
Pool::Attempt Pool::RunOnce(absl::FunctionRef<absl::Status(Tx&)> fn) {
  absl::StatusOr<Lease> lease = Acquire(options_.acquire_timeout);
  if (!lease.ok()) return {lease.status()};
  bool begun = false;
  try {
    Tx tx(lease->conn());
    begun = true;
    absl::Status status = fn(tx);
    if (!status.ok()) {
      try {
        tx.abort();
      } catch (const std::exception& e) {
        // fn's status is what the caller needs; the connection is not to be trusted any more.
        spdlog::warn("pg: rollback failed: {}", e.what());
        lease->MarkBroken();
      }
      return {status};
    }
    tx.commit();
    return {absl::OkStatus()};
  } catch (const std::exception& e) {
    Attempt attempt{StatusFromException(e)};
    if (attempt.status.code() == absl::StatusCode::kUnavailable) {
      lease->MarkBroken();
      // A read has nothing to undo: whatever broke on a reused connection is tried again on a
      // fresh one, as a BEGIN that failed is.
      attempt.stale = (!begun || std::is_same_v<Tx, pqxx::nontransaction>)&&lease->reused();
    }
    attempt.retryable = attempt.status.code() == absl::StatusCode::kAborted;
    return attempt;
  }
}

absl::Status Pool::RunTransaction(absl::FunctionRef<absl::Status(pqxx::work&)> fn) {
  for (int attempt = 0;; ++attempt) {
    Attempt result = RunOnce<pqxx::work>(fn);
    // Each stale connection is dropped, so this ends after at most `size` more tries.
    for (int i = 0; result.stale && i < options_.size; ++i) result = RunOnce<pqxx::work>(fn);
    if (!result.retryable || attempt >= options_.max_retries) return result.status;
    {
      std::lock_guard lock(mu_);
      ++counters_.retries;
    }
    BackOff(attempt);
  }
}

absl::Status Pool::RunRead(absl::FunctionRef<absl::Status(pqxx::nontransaction&)> fn) {
  Attempt result = RunOnce<pqxx::nontransaction>(fn);
  for (int i = 0; result.stale && i < options_.size; ++i) {
    result = RunOnce<pqxx::nontransaction>(fn);
  }
  return result.status;
}

void Pool::BackOff(int attempt) {
  // 5 ms, 10 ms, 20 ms, ... up to 160 ms, each scaled by a random factor in [0.5, 1.5) so that
  // the transactions that collided do not collide again.
  thread_local std::minstd_rand rng{std::random_device{}()};
  const double base_ms = 5.0 * (1 << std::min(attempt, 5));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  absl::SleepFor(absl::Milliseconds(base_ms * jitter(rng)));
}

absl::Status Pool::PingOnHealthConnection() {
  std::lock_guard lock(health_mu_);
  if (health_conn_ == nullptr) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> fresh = Connect();
    if (!fresh.ok()) return fresh.status();
    health_conn_ = *std::move(fresh);
  }
  try {
    pqxx::nontransaction tx(*health_conn_);
    tx.exec("SELECT 1");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    health_conn_.reset();  // made again on the next check
    return absl::UnavailableError(
        absl::StrCat("database ping failed: ", StatusFromException(e).message()));
  }
}

absl::Status Pool::Ping(absl::Duration timeout) {
  bool saturated;
  {
    std::lock_guard lock(mu_);
    saturated = in_use_ >= options_.size;
  }
  if (saturated) return PingOnHealthConnection();
  // Like Run: a stale idle connection is dropped and the next one (or a fresh one) tried.
  for (int i = 0; i <= options_.size; ++i) {
    absl::StatusOr<Lease> lease = Acquire(timeout);
    if (!lease.ok()) return lease.status();
    try {
      pqxx::nontransaction tx(lease->conn());
      tx.exec("SELECT 1");
      return absl::OkStatus();
    } catch (const std::exception& e) {
      const absl::Status status = StatusFromException(e);
      if (status.code() == absl::StatusCode::kUnavailable) lease->MarkBroken();
      if (status.code() != absl::StatusCode::kUnavailable || !lease->reused()) {
        return absl::UnavailableError(absl::StrCat("database ping failed: ", status.message()));
      }
    }
  }
  return absl::UnavailableError("database ping failed");
}

}  // namespace sb::pg
