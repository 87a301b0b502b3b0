#pragma once

// Revocations of live credentials, visible to every service within a second (issue #3).
//
// identity writes each revocation to PostgreSQL (the record) and publishes it to one Redis sorted
// set, `sb:auth:revocations`, scored by the revocation time in milliseconds; every process that
// verifies tokens reads the set's last `retention` (longer than the access-token lifetime) every
// `poll_interval` and keeps the entries in memory until they are older than that. Kinds of
// entries:
//
//   session  a session (refresh-token family) ended: every access token with that `sid`;
//   user     every token of the user issued before the revocation (to the millisecond: tokens
//            carry iat in milliseconds); role and permission changes use it, and disabling a
//            user also revokes each of their sessions by id;
//   api_key  an API key.
//
// Failing closed: when no poll has succeeded for `max_staleness`, Check returns Unavailable rather
// than letting a possibly revoked token through.
//
// Thread-safe. Start() runs the poller on its own thread (a sleeping loop: no event loop serves
// this process-wide), Stop() ends it; both from the owning module.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/auth/principal.h"
#include "libs/common/clock.h"

namespace sb::redis {
class Client;
}

namespace sb::auth {

struct Revocation {
  enum class Kind { kSession, kUser, kApiKey };
  Kind kind = Kind::kSession;
  std::string subject_id;  // session id, user id or API key id
  absl::Time at;
};

class RevocationList {
 public:
  virtual ~RevocationList() = default;
  // OK when nothing revokes the principal's credential; Unauthenticated ("token revoked") when
  // something does; Unavailable when the list may be stale (see above).
  virtual absl::Status Check(const Principal& principal) const = 0;
};

struct RedisRevocationListOptions {
  std::string key = "sb:auth:revocations";
  absl::Duration poll_interval = absl::Milliseconds(250);
  absl::Duration max_staleness = absl::Seconds(5);
  absl::Duration retention = absl::Minutes(20);
};

class RedisRevocationList final : public RevocationList {
 public:
  RedisRevocationList(redis::Client& redis, const Clock& clock,
                      RedisRevocationListOptions options = {});
  ~RedisRevocationList() override;

  absl::Status Check(const Principal& principal) const override;

  // Loads what is new in Redis now (the poller calls this; tests call it to skip the wait).
  absl::Status PollOnce();
  void Start();
  void Stop();

  // Publishes one revocation (identity). Also trims entries older than `retention`. Unavailable
  // when Redis cannot be reached: the caller keeps the revocation and publishes it again later.
  static absl::Status Publish(redis::Client& redis, const Revocation& revocation,
                              const RedisRevocationListOptions& options = {});

 private:
  void Apply(const std::string& member, int64_t score_ms);
  void Prune(absl::Time now);

  redis::Client& redis_;
  const Clock& clock_;
  const RedisRevocationListOptions options_;

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> sessions_;      // guarded by mu_
  absl::flat_hash_map<std::string, absl::Time> users_before_;  // guarded by mu_
  absl::flat_hash_map<std::string, absl::Time> api_keys_;      // guarded by mu_
  absl::Time last_success_ = absl::InfinitePast();             // guarded by mu_

  std::mutex run_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by run_mu_
  std::thread poller_;
};

}  // namespace sb::auth
