#pragma once

// RevocationPublisher records revocations in identity.revocations inside the transaction of the
// change (logout, disable, role change, key revoke) and publishes them to Redis for every
// service's RevocationList (libs/auth/revocation_list.h). Publish() runs right after the commit;
// rows it could not publish (Redis down) stay unpublished and are retried by the next call, so
// a revocation is never lost, only late while Redis is unreachable — and then every verifier
// fails closed anyway (its list goes stale). Thread-safe.

#include <mutex>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "libs/auth/revocation_list.h"
#include "libs/pg/pool.h"

namespace sb::redis {
class Client;
}

namespace sb::identity {

class RevocationPublisher {
 public:
  // `redis` may be null: revocations are then only recorded (single-process tests without Redis).
  RevocationPublisher(pg::Pool& pg, redis::Client* redis, const Clock& clock,
                      std::string key = "sb:auth:revocations");

  // Inside a transaction: records the revocation. User-wide revocations ("tokens issued before
  // `at`") must pass `at` from the clock that stamps the tokens' iat, so that a token issued
  // right after the change is never caught by a database clock that runs ahead.
  static void Record(pqxx::work& tx, auth::Revocation::Kind kind, const std::string& subject_id,
                     std::optional<absl::Time> at = std::nullopt);
  // After the commit: publishes every unpublished row. Unavailable when Redis or PostgreSQL
  // cannot be reached; the rows stay and the next call (the service's upkeep loop runs one every
  // second) publishes them.
  absl::Status Publish();

 private:
  pg::Pool& pg_;
  redis::Client* redis_;
  const Clock& clock_;
  const std::string key_;
  std::mutex publish_mu_;  // one Publish at a time
};

}  // namespace sb::identity
