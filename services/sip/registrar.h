#pragma once

// Registrar: REGISTER for agents' extensions in a tenant's SIP domain (RFC 3261 §10), with digest
// authentication (RFC 7616 / RFC 8760: SHA-256 preferred, MD5 for older phones), several contacts
// per extension, expiry, unregister and "Contact: *". Bindings go to Redis (RegistrationStore).
//
// Handle() blocks (identity for the HA1, Redis for the bindings): sip runs it on a worker
// thread, never on a SIP loop. Challenge() does no I/O and runs on the loop.
//
// Failed authentication: after `max_failures` wrong answers in a row from one address for one
// extension the registrar answers 403 instead of challenging again (until `failure_window`
// passes or the right password is given). An address with `ban_failures` failures within
// `failure_window`, whatever the extensions (a sipvicious-style scan), is banned for `ban_time`:
// its requests are dropped without an answer, which is what scanners should get.

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/sip/digest.h"
#include "libs/sip/message.h"
#include "services/sip/peers.h"
#include "services/sip/registrations.h"

namespace sb::sip {

// A REGISTER, copied out of the sofia message on the loop.
struct RegisterInput {
  std::string to_user;
  std::string to_host;
  std::string call_id;
  std::vector<ContactEntry> contacts;
  bool contact_star = false;
  std::optional<uint32_t> expires;
  std::string authorization;
  std::string source_ip;
  int source_port = 0;
  std::string transport;
  std::string user_agent;

  static RegisterInput From(const Message& request, std::string transport);
};

// What to answer.
struct SipAnswer {
  int status = 500;
  std::string phrase;
  std::vector<Header> headers;
  // Send nothing at all (banned source).
  bool drop = false;
  // A REGISTER that succeeded: the extension's bindings afterwards (for keepalives).
  std::string tenant_id;
  std::string extension;
  std::vector<v1::Registration> bindings;
};

// Failed-authentication bookkeeping per source address (shared by REGISTER and INVITE digest).
class AuthThrottle {
 public:
  struct Options {
    int max_failures = 3;
    int ban_failures = 20;
    absl::Duration failure_window = absl::Minutes(1);
    absl::Duration ban_time = absl::Minutes(10);
  };
  explicit AuthThrottle(Options options) : options_(options) {}

  bool Banned(const std::string& ip, absl::Time now);
  // Records a failure and returns how many in a row `ip` has had for `identity`.
  int Failure(const std::string& ip, const std::string& identity, absl::Time now);
  // Failures in a row so far, without recording one.
  int Failures(const std::string& ip, const std::string& identity, absl::Time now);
  void Success(const std::string& ip, const std::string& identity);
  const Options& options() const { return options_; }

 private:
  struct Counter {
    int count = 0;
    absl::Time since;
  };
  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Counter> per_identity_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Counter> per_ip_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> banned_until_ ABSL_GUARDED_BY(mu_);
};

class Registrar {
 public:
  struct Options {
    std::string node_id;
    uint32_t min_expires = 60;
    uint32_t max_expires = 3600;
    uint32_t default_expires = 600;
    absl::Duration nonce_max_age = digest::kDefaultNonceMaxAge;
    // Challenges offered, in order of preference (RFC 8760: SHA-256 first). An answer with
    // another algorithm fails.
    std::vector<digest::Algorithm> algorithms = {digest::Algorithm::kSha256,
                                                 digest::Algorithm::kMd5};
  };
  Registrar(SipPeers& peers, RegistrationStore& store, const Clock& clock,
            const digest::NonceMinter& nonces, digest::NonceCounter& counter,
            AuthThrottle& throttle, Options options);

  // The 401 for a REGISTER without credentials (SHA-256 and MD5 challenges), or nullopt when the
  // request carries credentials and needs Handle(). Also drops banned sources.
  std::optional<SipAnswer> Precheck(const RegisterInput& in);
  // Authenticates and applies the REGISTER. Blocking.
  SipAnswer Handle(const RegisterInput& in);

  // WWW-Authenticate (or Proxy-Authenticate) challenges for `realm`, SHA-256 first.
  std::vector<Header> Challenges(const std::string& realm, bool stale,
                                 std::string_view header = "WWW-Authenticate") const;

  // Verifies the digest credentials in `authorization` for a request (REGISTER: To domain;
  // INVITE: From domain). On success returns the digest entry; else the answer to send
  // (401/407 challenge, 400, 403, 503).
  struct Verified {
    std::optional<SipDigest> digest;
    SipAnswer refusal;
  };
  Verified Authenticate(const std::string& authorization, const std::string& method,
                        const std::string& realm, const std::string& expected_user,
                        const std::string& source_ip, bool proxy);

 private:
  SipAnswer Challenge(const std::string& realm, bool stale, bool proxy) const;

  SipPeers& peers_;
  RegistrationStore& store_;
  const Clock& clock_;
  const digest::NonceMinter& nonces_;
  digest::NonceCounter& counter_;
  AuthThrottle& throttle_;
  const Options options_;
};

}  // namespace sb::sip
