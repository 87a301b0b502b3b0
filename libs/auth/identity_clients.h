#pragma once

// What a service other than identity needs to authenticate requests the way identity does:
//
//   RemoteSigningKeys  fetches identity's public keys (GetSigningKeys) into a JwtVerifier, at
//                      start and then every `key_refresh` (identity publishes the next key a day
//                      before it signs with it, so a refresh every few minutes never misses it);
//   RemoteApiKeys      resolves API keys with identity's IntrospectToken (service credential),
//                      caching each answer for the TTL identity gives (at most 30 s).
//
// ServiceAuth bundles them with a RedisRevocationList, the Authenticator and an Authorizer over
// org's scope facts (cached), so a module writes:
//
//   auto& auth = module->Own(std::make_unique<auth::ServiceAuth>(auth::ServiceAuth::Deps{...}));
//   module->OnStart([&] { return auth.Start(); });  module->OnStop([&] { auth.Stop(); });
//   ... SB_ASSIGN_OR_RETURN(auth::Principal p, auth.authenticator().Authenticate(*context));
//
// Thread-safe.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <grpcpp/channel.h>

#include "absl/container/flat_hash_map.h"
#include "libs/app/platform.h"
#include "libs/auth/authenticator.h"
#include "libs/auth/authorizer.h"
#include "libs/auth/cached_scope_facts.h"
#include "libs/auth/jwt.h"
#include "libs/auth/org_scope_facts.h"
#include "libs/auth/revocation_list.h"
#include "libs/common/clock.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"

namespace sb::auth {

class RemoteSigningKeys {
 public:
  RemoteSigningKeys(ChannelFactory identity, JwtVerifier& verifier,
                    absl::Duration deadline = absl::Seconds(3));
  // Fetches the keys now. Unavailable when identity cannot be reached.
  absl::Status Refresh();

 private:
  ::switchboard::identity::v1::IdentityService::Stub& Stub();
  ChannelFactory channel_;
  JwtVerifier& verifier_;
  const absl::Duration deadline_;
  std::once_flag once_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> stub_;
};

class RemoteApiKeys final : public ApiKeyResolver {
 public:
  RemoteApiKeys(ChannelFactory identity, std::string internal_token, const Clock& clock,
                absl::Duration deadline = absl::Seconds(3));
  absl::StatusOr<Principal> ResolveApiKey(std::string_view secret) override;

 private:
  struct Entry {
    Principal principal;
    absl::Time expires;
  };
  ::switchboard::identity::v1::IdentityService::Stub& Stub();
  ChannelFactory channel_;
  const std::string internal_token_;
  const Clock& clock_;
  const absl::Duration deadline_;
  std::once_flag once_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> stub_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_;  // guarded by mu_; keyed by SHA-256 of the key
};

// Converts identity's Principal message.
Principal PrincipalFromProto(const ::switchboard::identity::v1::Principal& p);

class ServiceAuth {
 public:
  struct Deps {
    ChannelFactory identity;
    ChannelFactory org;
    redis::Client& redis;
    const Clock& clock;
    std::string internal_token;
    std::string issuer = "switchboard-identity";
    std::string audience = "switchboard";
    absl::Duration key_refresh = absl::Minutes(5);
    RedisRevocationListOptions revocations;
  };
  explicit ServiceAuth(Deps deps);
  // As every service module wires it: identity and org through the platform's channels, its
  // Redis, clock and internal token.
  explicit ServiceAuth(const app::Platform& platform);
  ~ServiceAuth();

  // Loads the signing keys (retrying in the background when identity is not up yet) and starts
  // polling revocations. Always OK: until keys arrive, tokens are refused as unknown-key.
  absl::Status Start();
  void Stop();

  const Authenticator& authenticator() const { return authenticator_; }
  const Authorizer& authorizer() const { return authorizer_; }
  RedisRevocationList& revocations() { return revocations_; }
  RemoteSigningKeys& keys() { return keys_; }

 private:
  Deps deps_;
  JwtVerifier verifier_;
  RemoteSigningKeys keys_;
  RemoteApiKeys api_keys_;
  RedisRevocationList revocations_;
  OrgScopeFacts org_facts_;
  CachedScopeFacts facts_;
  Authorizer authorizer_;
  Authenticator authenticator_;

  std::mutex run_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread refresher_;
};

}  // namespace sb::auth
