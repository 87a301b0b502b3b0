#pragma once

// KeyRing: the Ed25519 keys that sign access tokens, kept in identity.signing_keys so that every
// identity replica signs with the same active key and every service can verify with the public
// halves (GetSigningKeys). Load() makes sure an active key exists (the first replica to start
// creates it; the others read it), announces the next key (state NEXT, published by
// GetSigningKeys but not signing) a day before the active one is `rotate_after` old, then makes
// it the active one (the old key stays valid for verification until every token it signed has
// expired), and gives the verifier the current public keys. The service calls Load() again every
// few minutes, so every replica follows the rotation.
//
// The private keys are stored as PEM in the identity schema, sealed with --secrets_key when one is
// configured (crypto/sealer.h). Thread-safe.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/auth/jwt.h"
#include "libs/common/clock.h"
#include "libs/pg/pool.h"
#include "services/identity/crypto/sealer.h"

namespace sb::identity {

struct PublicSigningKey {
  std::string key_id;
  std::string algorithm;
  std::string public_pem;
  int state = 2;  // SigningKey.State
  absl::Time created_at;
  absl::Time not_after = absl::InfiniteFuture();
};

class KeyRing {
 public:
  // `sealer` seals the private keys in the table; it must outlive the ring.
  KeyRing(pg::Pool& pg, const Clock& clock, auth::JwtVerifier& verifier,
          absl::Duration token_lifetime, const Sealer& sealer,
          absl::Duration rotate_after = absl::Hours(24 * 30));

  // Reads (and if needed creates or rotates) the keys. Unavailable when PostgreSQL is down.
  absl::Status Load();
  // Signs with the active key. FailedPrecondition before a successful Load().
  absl::StatusOr<std::string> Sign(const auth::AccessClaims& claims) const;
  std::vector<PublicSigningKey> PublicKeys() const;

 private:
  absl::Status LoadOnce(bool retried);

  pg::Pool& pg_;
  const Clock& clock_;
  auth::JwtVerifier& verifier_;
  const absl::Duration token_lifetime_;
  const absl::Duration rotate_after_;
  const Sealer& sealer_;

  mutable std::mutex mu_;
  std::optional<auth::JwtSigner> signer_;  // guarded by mu_
  std::vector<PublicSigningKey> public_;   // guarded by mu_
};

}  // namespace sb::identity
