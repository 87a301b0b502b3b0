#pragma once

// Authenticator turns the credential of a request into a Principal: an access token (JWT signed
// by identity), an API key ("sbk_..."), or — for "Internal:" RPCs — the service credential that
// the platform's own processes share.
//
//   SB_ASSIGN_OR_RETURN(auth::Principal p, authenticator.Authenticate(*context));
//
// Status codes: Unauthenticated (no credential, malformed, bad signature, expired, wrong
// audience, revoked, unknown API key); Unavailable (the revocation list or the API-key lookup
// cannot be reached: fail closed). Thread-safe; everything it is given must outlive it.

#include <string>
#include <string_view>

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "libs/auth/jwt.h"
#include "libs/auth/principal.h"
#include "libs/auth/revocation_list.h"

namespace sb::auth {

// The metadata key that carries the service credential on internal calls.
inline constexpr char kInternalTokenHeader[] = "x-sb-internal-token";
// API keys start with this.
inline constexpr char kApiKeyPrefix[] = "sbk_";

// Looks API keys up (identity itself reads its table; other services ask identity's
// IntrospectToken and cache the answer).
class ApiKeyResolver {
 public:
  virtual ~ApiKeyResolver() = default;
  // Unauthenticated for unknown, revoked or expired keys; Unavailable when the lookup fails.
  virtual absl::StatusOr<Principal> ResolveApiKey(std::string_view secret) = 0;
};

// Builds the principal of verified access-token claims.
Principal PrincipalFromClaims(const AccessClaims& claims);

class Authenticator {
 public:
  // `api_keys` may be null (then API keys are refused). `internal_token` is the shared service
  // credential; empty refuses every internal call.
  Authenticator(const JwtVerifier& verifier, const RevocationList& revocations,
                ApiKeyResolver* api_keys, std::string internal_token);

  // From a bearer credential (token text without "Bearer ").
  absl::StatusOr<Principal> Authenticate(std::string_view bearer) const;
  // From a request's "authorization: Bearer ..." metadata.
  absl::StatusOr<Principal> Authenticate(const grpc::ServerContextBase& context) const;
  // For "Internal:" RPCs: OK when the request carries the service credential
  // (x-sb-internal-token), Unauthenticated otherwise. Compared in constant time.
  absl::Status RequireService(const grpc::ServerContextBase& context) const;
  // The same, telling a person apart: a valid user token or API key gets PermissionDenied (the
  // caller is known, the RPC is not theirs), a bad one its own error, none Unauthenticated.
  absl::Status RequireInternal(const grpc::ServerContextBase& context) const;

  const std::string& internal_token() const { return internal_token_; }

 private:
  const JwtVerifier& verifier_;
  const RevocationList& revocations_;
  ApiKeyResolver* api_keys_;
  const std::string internal_token_;
};

}  // namespace sb::auth
