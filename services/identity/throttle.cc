#include "services/identity/throttle.h"

#include <algorithm>

namespace sb::identity {

ThrottlePolicy AccountThrottle() { return ThrottlePolicy{}; }

ThrottlePolicy AddressThrottle() {
  return ThrottlePolicy{.free_failures = 20,
                        .base_delay = absl::Seconds(1),
                        .max_delay = absl::Minutes(15),
                        .hard_limit = 0,
                        .forget_after = absl::Hours(1)};
}

std::optional<absl::Duration> Throttle::LockedFor(pqxx::work& tx, const std::string& key,
                                                  absl::Time now) {
  pqxx::result r = tx.exec_params(
      "SELECT extract(epoch FROM locked_until)::float8 FROM identity.throttle WHERE key = $1 "
      "AND locked_until IS NOT NULL",
      key);
  if (r.empty()) return std::nullopt;
  const double until = r[0][0].as<double>();
  const absl::Time t = absl::FromUnixMicros(static_cast<int64_t>(until * 1e6));
  if (t <= now) return std::nullopt;
  return t - now;
}

std::optional<absl::Duration> Throttle::RecordFailure(pqxx::work& tx, const std::string& key,
                                                      const ThrottlePolicy& policy,
                                                      absl::Time now) {
  const double now_s = absl::ToUnixMicros(now) / 1e6;
  const double forget_s = absl::ToDoubleSeconds(policy.forget_after);
  // One statement, so concurrent failures of one key count each (row lock of the upsert).
  pqxx::result r = tx.exec_params(
      "INSERT INTO identity.throttle AS t (key, failures, last_failure_at) "
      "VALUES ($1, 1, to_timestamp($2)) ON CONFLICT (key) DO UPDATE SET "
      "failures = CASE WHEN t.last_failure_at < to_timestamp($2 - $3) THEN 1 "
      "ELSE t.failures + 1 END, last_failure_at = to_timestamp($2) RETURNING failures",
      key, now_s, forget_s);
  const int failures = r[0][0].as<int>();
  std::optional<absl::Duration> lock;
  if (policy.hard_limit > 0 && failures >= policy.hard_limit) {
    lock = absl::Hours(24 * 365 * 100);
  } else if (failures > policy.free_failures) {
    const int doublings = std::min(failures - policy.free_failures - 1, 30);
    lock = std::min(policy.base_delay * (int64_t{1} << doublings), policy.max_delay);
  }
  if (lock) {
    tx.exec_params("UPDATE identity.throttle SET locked_until = to_timestamp($2) WHERE key = $1",
                   key, now_s + absl::ToDoubleSeconds(*lock));
  }
  return lock;
}

void Throttle::Clear(pqxx::work& tx, const std::string& key) {
  tx.exec_params("DELETE FROM identity.throttle WHERE key = $1", key);
}

}  // namespace sb::identity
