#pragma once

// Failure throttling for logins, second factors and PIN checks, per account and per source
// address, kept in PostgreSQL (identity.throttle) so that every identity replica sees the same
// counts. After `free_failures` consecutive failures each further failure locks the key for a
// delay that doubles from `base_delay` up to `max_delay`; after `hard_limit` consecutive failures
// the key stays locked until an admin clears it (ResetUserPassword / EnableUser) — NIST SP 800-63B
// asks for no more than 100 consecutive failures. A success clears the account's key. Keys whose
// last failure is older than `forget_after` start again from zero.

#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "absl/time/time.h"

namespace sb::identity {

struct ThrottlePolicy {
  int free_failures = 5;
  absl::Duration base_delay = absl::Seconds(1);
  absl::Duration max_delay = absl::Minutes(15);
  int hard_limit = 100;  // 0: none
  absl::Duration forget_after = absl::Hours(24);
};

// For accounts (login names, PIN owners): hard lock at 100.
ThrottlePolicy AccountThrottle();
// For source addresses: more free failures (offices share addresses), no hard lock.
ThrottlePolicy AddressThrottle();

class Throttle {
 public:
  // How long `key` is still locked at `now`, or nullopt when it may try.
  static std::optional<absl::Duration> LockedFor(pqxx::work& tx, const std::string& key,
                                                 absl::Time now);
  // Counts a failure and locks the key when the policy says so; returns the new lock, if any.
  static std::optional<absl::Duration> RecordFailure(pqxx::work& tx, const std::string& key,
                                                     const ThrottlePolicy& policy, absl::Time now);
  static void Clear(pqxx::work& tx, const std::string& key);
};

}  // namespace sb::identity
