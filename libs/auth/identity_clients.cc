#include "libs/auth/identity_clients.h"

#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sb::auth {

namespace iv1 = ::switchboard::identity::v1;

namespace {

std::unique_ptr<grpc::ClientContext> Context(absl::Duration deadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return context;
}

std::string Sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

}  // namespace

Principal PrincipalFromProto(const iv1::Principal& p) {
  Principal out;
  out.kind = p.api_key_id().empty() ? Principal::Kind::kUser : Principal::Kind::kApiKey;
  out.tenant_id = p.tenant_id();
  out.user_id = p.user_id();
  out.api_key_id = p.api_key_id();
  out.session_id = p.session_id();
  out.role_ids.assign(p.role_ids().begin(), p.role_ids().end());
  for (const auto& g : p.permissions()) {
    out.permissions.Add({g.permission(), static_cast<Scope>(g.scope())});
  }
  out.restricted = p.restricted();
  if (p.has_expires_at()) {
    out.expires_at =
        absl::FromUnixSeconds(p.expires_at().seconds()) + absl::Nanoseconds(p.expires_at().nanos());
  }
  return out;
}

RemoteSigningKeys::RemoteSigningKeys(ChannelFactory identity, JwtVerifier& verifier,
                                     absl::Duration deadline)
    : channel_(std::move(identity)), verifier_(verifier), deadline_(deadline) {}

iv1::IdentityService::Stub& RemoteSigningKeys::Stub() {
  std::call_once(once_, [this] { stub_ = iv1::IdentityService::NewStub(channel_()); });
  return *stub_;
}

absl::Status RemoteSigningKeys::Refresh() {
  iv1::GetSigningKeysResponse resp;
  auto context = Context(deadline_);
  grpc::Status s = Stub().GetSigningKeys(context.get(), iv1::GetSigningKeysRequest(), &resp);
  if (!s.ok())
    return absl::UnavailableError(absl::StrCat("identity GetSigningKeys: ", s.error_message()));
  std::vector<VerificationKey> keys;
  for (const auto& k : resp.keys()) {
    if (k.algorithm() != "EdDSA") continue;
    absl::StatusOr<Ed25519Key> key = Ed25519Key::FromPublicPem(k.public_key_pem());
    if (!key.ok()) {
      spdlog::warn("identity signing key {} does not parse: {}", k.key_id(),
                   key.status().ToString());
      continue;
    }
    absl::Time not_after = absl::InfiniteFuture();
    if (k.has_not_after()) not_after = absl::FromUnixSeconds(k.not_after().seconds());
    keys.push_back({k.key_id(), *std::move(key), not_after});
  }
  verifier_.SetKeys(std::move(keys));
  return absl::OkStatus();
}

RemoteApiKeys::RemoteApiKeys(ChannelFactory identity, std::string internal_token,
                             const Clock& clock, absl::Duration deadline)
    : channel_(std::move(identity)),
      internal_token_(std::move(internal_token)),
      clock_(clock),
      deadline_(deadline) {}

iv1::IdentityService::Stub& RemoteApiKeys::Stub() {
  std::call_once(once_, [this] { stub_ = iv1::IdentityService::NewStub(channel_()); });
  return *stub_;
}

absl::StatusOr<Principal> RemoteApiKeys::ResolveApiKey(std::string_view secret) {
  const std::string key = Sha256(secret);
  const absl::Time now = clock_.Now();
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > now) return it->second.principal;
  }
  iv1::IntrospectTokenRequest req;
  req.set_token(std::string(secret));
  iv1::IntrospectTokenResponse resp;
  auto context = Context(deadline_);
  context->AddMetadata(kInternalTokenHeader, internal_token_);
  grpc::Status s = Stub().IntrospectToken(context.get(), req, &resp);
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::UnauthenticatedError(s.error_message());
  }
  if (!s.ok())
    return absl::UnavailableError(absl::StrCat("identity IntrospectToken: ", s.error_message()));
  Principal principal = PrincipalFromProto(resp.principal());
  const absl::Duration ttl = std::min(absl::Seconds(resp.cache_ttl().seconds()), absl::Seconds(30));
  std::lock_guard lock(mu_);
  if (cache_.size() > 10000) cache_.clear();
  cache_[key] = {principal, now + ttl};
  return principal;
}

ServiceAuth::ServiceAuth(Deps deps)
    : deps_(std::move(deps)),
      verifier_({.issuer = deps_.issuer, .audience = deps_.audience}, deps_.clock),
      keys_(deps_.identity, verifier_),
      api_keys_(deps_.identity, deps_.internal_token, deps_.clock),
      revocations_(deps_.redis, deps_.clock, deps_.revocations),
      org_facts_(deps_.org, deps_.internal_token),
      facts_(org_facts_, deps_.clock),
      authorizer_(facts_),
      authenticator_(verifier_, revocations_, &api_keys_, deps_.internal_token) {}

ServiceAuth::ServiceAuth(const app::Platform& platform)
    : ServiceAuth(Deps{.identity = [platform] { return platform.ChannelTo("identity"); },
                       .org = [platform] { return platform.ChannelTo("org"); },
                       .redis = platform.redis(),
                       .clock = platform.clock(),
                       .internal_token = platform.config().internal_token}) {}

ServiceAuth::~ServiceAuth() { Stop(); }

absl::Status ServiceAuth::Start() {
  (void)revocations_.PollOnce();
  revocations_.Start();
  std::lock_guard lock(run_mu_);
  if (refresher_.joinable()) return absl::OkStatus();
  stopping_ = false;
  refresher_ = std::thread([this] {
    bool loaded = false;
    std::unique_lock lock(run_mu_);
    while (!stopping_) {
      lock.unlock();
      absl::Status s = keys_.Refresh();
      if (!s.ok()) spdlog::warn("auth: signing keys not loaded yet: {}", s.ToString());
      loaded = loaded || s.ok();
      lock.lock();
      // Until the first load works, try again every second; then every key_refresh.
      wake_.wait_for(lock,
                     absl::ToChronoMilliseconds(loaded ? deps_.key_refresh : absl::Seconds(1)),
                     [this] { return stopping_; });
    }
  });
  return absl::OkStatus();
}

void ServiceAuth::Stop() {
  {
    std::lock_guard lock(run_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  revocations_.Stop();
}

}  // namespace sb::auth
