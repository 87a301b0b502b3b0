#include "libs/auth/authenticator.h"

#include <openssl/crypto.h>

#include "absl/strings/match.h"
#include "libs/app/call_context.h"

namespace sb::auth {

Principal PrincipalFromClaims(const AccessClaims& claims) {
  Principal p;
  p.kind = Principal::Kind::kUser;
  p.tenant_id = claims.tid;
  p.user_id = claims.sub;
  p.session_id = claims.sid;
  p.role_ids = claims.roles;
  p.permissions = PermissionSet::FromTexts(claims.perms);
  p.restricted = claims.rst;
  // iat carries milliseconds as a double: round to the millisecond the token was signed in.
  p.issued_at = absl::FromUnixMillis(absl::ToUnixMillis(claims.iat + absl::Microseconds(500)));
  p.expires_at = claims.exp;
  return p;
}

Authenticator::Authenticator(const JwtVerifier& verifier, const RevocationList& revocations,
                             ApiKeyResolver* api_keys, std::string internal_token)
    : verifier_(verifier),
      revocations_(revocations),
      api_keys_(api_keys),
      internal_token_(std::move(internal_token)) {}

absl::StatusOr<Principal> Authenticator::Authenticate(std::string_view bearer) const {
  if (bearer.empty()) return absl::UnauthenticatedError("no credential: send a bearer token");
  Principal principal;
  if (absl::StartsWith(absl::string_view(bearer.data(), bearer.size()), kApiKeyPrefix)) {
    if (api_keys_ == nullptr) return absl::UnauthenticatedError("API keys are not accepted here");
    absl::StatusOr<Principal> key = api_keys_->ResolveApiKey(bearer);
    if (!key.ok()) return key.status();
    principal = *std::move(key);
  } else {
    absl::StatusOr<AccessClaims> claims = verifier_.Verify(bearer);
    if (!claims.ok()) return claims.status();
    principal = PrincipalFromClaims(*claims);
  }
  if (absl::Status s = revocations_.Check(principal); !s.ok()) return s;
  return principal;
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  return Authenticate(app::CallContext::From(context).bearer_token);
}

absl::Status Authenticator::RequireService(const grpc::ServerContextBase& context) const {
  const auto& md = context.client_metadata();
  auto it = md.find(kInternalTokenHeader);
  if (internal_token_.empty() || it == md.end() || it->second.size() != internal_token_.size() ||
      CRYPTO_memcmp(it->second.data(), internal_token_.data(), internal_token_.size()) != 0) {
    return absl::UnauthenticatedError("this RPC is internal: service credential required");
  }
  return absl::OkStatus();
}

absl::Status Authenticator::RequireInternal(const grpc::ServerContextBase& context) const {
  absl::Status service = RequireService(context);
  if (service.ok()) return service;
  if (app::CallContext::From(context).bearer_token.empty()) return service;
  if (absl::StatusOr<Principal> person = Authenticate(context); !person.ok()) {
    return person.status();
  }
  return absl::PermissionDeniedError("this RPC is for the platform's own services");
}

}  // namespace sb::auth
