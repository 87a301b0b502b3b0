#pragma once

// Switchboard access tokens: compact JWS (RFC 7515) carrying RFC 9068-style claims, signed with
// Ed25519 (header {"alg":"EdDSA","typ":"at+jwt","kid":...}).
//
// Identity signs them with a JwtSigner; every service checks them with a JwtVerifier that holds
// the current public keys (JWKS) and remembers tokens it has already verified, so that a token
// seen before costs a hash lookup rather than a signature check.
//
//   JwtSigner signer("2024-05-k1", private_key);
//   SB_ASSIGN_OR_RETURN(std::string token, signer.Sign(claims));
//
//   JwtVerifier verifier({.issuer = "https://id.example", .audience = "switchboard"}, clock);
//   verifier.SetKeys({{"2024-05-k1", private_key.PublicOnly()}});
//   absl::StatusOr<AccessClaims> claims = verifier.Verify(token);

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/auth/signing_key.h"
#include "libs/common/clock.h"

namespace sb::auth {

// Claims of a Switchboard access token. On the wire dates are NumericDate (whole seconds since the
// Unix epoch), so Sign drops sub-second parts.
struct AccessClaims {
  std::string iss, sub, aud, jti;
  std::string tid;           // tenant id
  std::string sid;           // session id (empty for API keys / service tokens; then not sent)
  absl::Time iat, nbf, exp;  // Verify sets nbf to iat when the token has no nbf
  std::vector<std::string> roles;
  std::vector<std::string> perms;  // "permission:scope", e.g. "calls.read:team"
  bool rst = false;                // restricted (password change only); sent only when true
  std::string amr;                 // optional: "pwd", "pwd+otp"; not sent when empty

  friend bool operator==(const AccessClaims&, const AccessClaims&) = default;
};

// Signs access tokens with one private key. Thread-safe.
class JwtSigner {
 public:
  // `key` must have its private half and `key_id` must be non-empty UTF-8; otherwise every Sign
  // returns FailedPrecondition (no private half) or InvalidArgument (key id).
  JwtSigner(std::string key_id, Ed25519Key key);

  // The compact JWS "header.payload.signature" with `key_id` as kid. InvalidArgument when iss,
  // sub, aud, jti or tid is empty, a date is outside 1970..9999, or a string is not UTF-8.
  absl::StatusOr<std::string> Sign(const AccessClaims& claims) const;

  const std::string& key_id() const { return key_id_; }

 private:
  std::string key_id_;
  Ed25519Key key_;
  absl::Status status_;         // why this signer cannot sign, if it cannot
  std::string encoded_header_;  // base64url header and the '.' that follows it
};

// A public key a verifier accepts, under its kid. After `not_after` tokens with this kid are
// refused (the key is retired), whatever their own exp says.
struct VerificationKey {
  std::string key_id;
  Ed25519Key key;
  absl::Time not_after = absl::InfiniteFuture();
};

struct JwtVerifierOptions {
  std::string issuer;                         // required: the iss every token must carry
  std::string audience;                       // required: must be the aud or one of them
  absl::Duration leeway = absl::Seconds(30);  // clock skew allowed on exp/nbf/iat
  size_t cache_capacity = 20000;  // verified-token cache entries (~2.3 KB each); 0: none
  size_t max_token_bytes = 8192;  // longer tokens are refused unread
};

// Verifies access tokens against the current key set. Thread-safe: Verify may run on any number
// of threads at once and concurrently with SetKeys.
//
// Rules: three unpadded base64url segments; header an object with alg exactly "EdDSA" (checked
// before anything else in it), no "crit", typ exactly "at+jwt", a kid in the key set whose key is
// not retired; a 64-byte Ed25519 signature over "header.payload"; payload an object with
// iss == issuer, aud == audience (or an array holding it), exp, iat, and non-empty sub, tid and
// jti; now < exp + leeway, nbf (if any) <= now + leeway, iat <= now + leeway. Optional claims
// sid, amr (strings), roles, perms (arrays of strings) and rst (bool) must have those types.
//
// Verified tokens are cached (keyed by the full token text) up to cache_capacity entries; a hit
// still checks the dates against the clock and that the kid still names the same key in the
// current set and is not retired. Failures are never cached.
class JwtVerifier {
 public:
  // `clock` must outlive the verifier.
  JwtVerifier(JwtVerifierOptions options, const Clock& clock);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Replaces the key set and drops cached tokens whose kid is gone or now names another key.
  // Key ids should be unique; of repeated ones the first is used. Readers never wait on each
  // other; SetKeys waits for the readers of the old set to finish their key lookups.
  void SetKeys(std::vector<VerificationKey> keys);

  // The token's claims, with aud set to our audience. Errors:
  //   Unauthenticated with a short reason that never echoes the token: "malformed token: ...",
  //     "algorithm 'none' not allowed", "wrong token type", "unknown key id",
  //     "signing key retired", "bad signature", "wrong issuer", "wrong audience",
  //     "token expired", "token not yet valid", "token issued in the future".
  //   FailedPrecondition when the options have no issuer or audience.
  absl::StatusOr<AccessClaims> Verify(std::string_view token) const;

 private:
  class KeySet;
  class Cache;
  enum class KeyState { kValid, kUnknown, kRetired, kReplaced };

  absl::StatusOr<AccessClaims> VerifyUncached(std::string_view token, absl::Time now) const;
  // Whether `key_id` still names the key with `public_bytes` and is not retired at `now`.
  KeyState CheckKey(std::string_view key_id, std::string_view public_bytes, absl::Time now) const;
  absl::Status CheckDates(const AccessClaims& claims, absl::Time now) const;

  const JwtVerifierOptions options_;
  const Clock& clock_;
  mutable absl::Mutex keys_mu_;
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(keys_mu_);  // never null
  std::unique_ptr<Cache> cache_;                                  // null when disabled
};

}  // namespace sb::auth
