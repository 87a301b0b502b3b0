#pragma once

// Hashes and verifies passwords with Argon2id (RFC 9106), stored as PHC strings:
//   $argon2id$v=19$m=19456,t=2,p=1$<salt, 16 bytes>$<hash, 32 bytes>   (unpadded base64)
// The default cost is OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane).
//
//   PasswordHasher hasher;
//   SB_ASSIGN_OR_RETURN(std::string stored, hasher.Hash(password));
//   ...
//   if (user == nullptr) { hasher.VerifyDummy(password); return Unauthenticated; }
//   if (!hasher.Verify(password, user->password_hash)) return Unauthenticated;
//   if (hasher.NeedsRehash(user->password_hash)) -> store hasher.Hash(password)
//
// Status codes (Hash only): InvalidArgument "password: ..." for a password over
// kMaxHashedPasswordBytes bytes; ResourceExhausted when the memory for the hash cannot be
// allocated; FailedPrecondition when the Params are out of Argon2's range (see ValidateParams);
// Internal for any other libargon2 failure. Verify and NeedsRehash return bool and never fail.
//
// Thread-safety: the object is immutable after construction; all methods are const and safe to
// call from any number of threads at once. Each call holds memory_kib of memory while it runs, so
// the number of concurrent calls (the RPC thread pool) bounds the memory used.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sb::identity {

// The longest password Hash accepts, in bytes; Verify returns false for longer ones.
inline constexpr size_t kMaxHashedPasswordBytes = 1024;

class PasswordHasher {
 public:
  struct Params {
    uint32_t memory_kib = 19456;  // m: memory in KiB
    uint32_t iterations = 2;      // t: passes over the memory
    uint32_t parallelism = 1;     // p: lanes (and threads)
  };

  // OK, or InvalidArgument naming the field: iterations must be in [1, 64], parallelism in
  // [1, 16] and memory_kib in [8 * parallelism, 1048576] (1 GiB). For wiring code that reads
  // Params from configuration; Verify applies the same bounds to the Params of stored strings.
  static absl::Status ValidateParams(const Params& params);

  // With the default Params.
  PasswordHasher();
  // `params` should pass ValidateParams; otherwise Hash fails and Verify returns false.
  explicit PasswordHasher(Params params);

  const Params& params() const { return params_; }

  // A PHC string for `password` with a fresh random 16-byte salt; two calls give different strings.
  absl::StatusOr<std::string> Hash(std::string_view password) const;

  // True when `password` matches the PHC string `encoded` (made by Hash, possibly with other
  // Params). The hash comparison is constant-time. Anything that is not a well-formed argon2id
  // v=19 string within ValidateParams' bounds, including strings with NUL bytes, returns false
  // without hashing: a corrupt row cannot make the process allocate gigabytes.
  bool Verify(std::string_view password, std::string_view encoded) const;

  // Does the work of a failed Verify at the current Params, for a login whose user does not
  // exist: the reply then takes as long as for a wrong password, and timing does not reveal which
  // login names exist. The outcome is irrelevant and not returned.
  void VerifyDummy(std::string_view password) const;

  // True when `encoded` should be replaced by a fresh Hash after a successful Verify: it is not a
  // parseable argon2id v=19 string, or its memory, iterations or lanes are below the current
  // Params, or its salt or hash is shorter than what Hash makes.
  bool NeedsRehash(std::string_view encoded) const;

 private:
  Params params_;
  // A PHC string at params_ with a random salt and a random hash, which no password matches. It
  // is only verified against, so its hash need not be computed.
  std::string dummy_encoded_;
};

}  // namespace sb::identity
