#pragma once

// Sealer: AES-256-GCM for secrets identity must be able to read back (TOTP shared secrets, the
// private halves of signing keys), so that a copy of the database — a backup, a replica, a
// leaked dump — does not hand them out. The key comes from the operator (--secrets_key, from a
// Kubernetes Secret); without one the sealer passes values through, for local runs.
//
// Sealed values are "sb1:" + base64(12-byte nonce | ciphertext | 16-byte tag). Open() returns
// values without that prefix unchanged, so rows written before a key was configured keep
// working (and are sealed when next written).
//
// Status codes: FromBase64Key returns InvalidArgument for a key that is not 32 bytes of base64;
// Open returns FailedPrecondition for a sealed value when no key is configured and DataLoss when
// the value does not authenticate (wrong key, or changed bytes). Thread-safe (immutable).

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sb::identity {

class Sealer {
 public:
  // A pass-through sealer (no key).
  Sealer() = default;
  // `key_base64` empty: pass-through; otherwise 32 bytes in standard or URL-safe base64.
  static absl::StatusOr<Sealer> FromBase64Key(std::string_view key_base64);

  bool enabled() const { return !key_.empty(); }
  std::string Seal(std::string_view plaintext) const;
  absl::StatusOr<std::string> Open(std::string_view sealed) const;

 private:
  explicit Sealer(std::string key) : key_(std::move(key)) {}
  std::string key_;  // 32 bytes, or empty
};

}  // namespace sb::identity
