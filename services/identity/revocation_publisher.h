#pragma once

// RevocationPublisher records revocations in identity.revocations inside the transaction of the
// change (logout, disable, role change, key revoke) and publishes them to Redis for every
// service's RevocationList (libs/auth/revocation_list.h). Publish() runs right after the commit;
// rows it could not publish (Redis down) stay unpublished and a background loop retries them, so
// a revocation is never lost, only late while Redis is unreachable — and then every verifier
// fails closed anyway (its list goes stale). Thread-safe.

#include <condition_variable>
#include <mutex>
#include <thread>

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
  ~RevocationPublisher();

  // Inside a transaction: records the revocation.
  static void Record(pqxx::work& tx, auth::Revocation::Kind kind, const std::string& subject_id);
  // After the commit: publishes every unpublished row. Errors are logged and retried later.
  absl::Status Publish();
  void Start(absl::Duration interval = absl::Seconds(1));
  void Stop();

 private:
  pg::Pool& pg_;
  redis::Client* redis_;
  const Clock& clock_;
  const std::string key_;
  std::mutex publish_mu_;  // one Publish at a time
  std::mutex run_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread loop_;
};

}  // namespace sb::identity
