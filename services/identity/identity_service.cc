#include "services/identity/identity_service.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/app/call_context.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/identity/builtin_roles.h"
#include "services/identity/crypto/secrets.h"
#include "spdlog/spdlog.h"

namespace sb::identity {

const char kUserColumns[] =
    "u.id, u.tenant_id, u.first_name, u.last_name, u.display_name, u.login_name, u.email, "
    "u.email_verified, u.time_zone, u.language, u.avatar_etag, u.state, u.must_change_password, "
    "u.totp_secret IS NOT NULL, "
    "ARRAY(SELECT role_id FROM identity.user_roles r WHERE r.user_id = u.id ORDER BY role_id), "
    "extract(epoch FROM u.created_at)::float8, extract(epoch FROM u.updated_at)::float8, "
    "extract(epoch FROM u.last_login_at)::float8, extract(epoch FROM u.deleted_at)::float8, "
    "u.password_hash";

UserRecord UserFromRow(const pqxx::row& row, const std::string& avatar_url_prefix) {
  UserRecord rec;
  v1::User& u = rec.user;
  u.set_id(row[0].as<std::string>());
  u.set_tenant_id(row[1].as<std::string>());
  u.set_first_name(row[2].as<std::string>());
  u.set_last_name(row[3].as<std::string>());
  u.set_display_name(row[4].as<std::string>());
  u.set_login_name(row[5].is_null() ? "" : row[5].as<std::string>());
  u.set_email(row[6].is_null() ? "" : row[6].as<std::string>());
  u.set_email_verified(row[7].as<bool>());
  u.set_time_zone(row[8].as<std::string>());
  u.set_language(row[9].as<std::string>());
  if (!row[10].is_null()) {
    u.set_avatar_url(absl::StrCat(avatar_url_prefix, "/users/", u.id(),
                                  "/avatar?v=", row[10].as<std::string>()));
  }
  u.set_state(static_cast<v1::UserState>(row[11].as<int>()));
  u.set_must_change_password(row[12].as<bool>());
  rec.totp_enabled = row[13].as<bool>();
  u.set_totp_enabled(rec.totp_enabled);
  for (const std::string& role : pg::TextArray(row[14])) u.add_role_ids(role);
  pg::SetTimestamp(u.mutable_created_at(), row[15]);
  pg::SetTimestamp(u.mutable_updated_at(), row[16]);
  if (!row[17].is_null()) pg::SetTimestamp(u.mutable_last_login_at(), row[17]);
  if (!row[18].is_null()) pg::SetTimestamp(u.mutable_deleted_at(), row[18]);
  rec.password_hash = row[19].is_null() ? "" : row[19].as<std::string>();
  return rec;
}

// API keys of this identity instance's own table. A key never does more than its creator can do
// now: it stops with its creator's account, and its permissions are cut to the creator's current
// ones (a demoted admin's key is demoted too).
class IdentityService::LocalApiKeys final : public auth::ApiKeyResolver {
 public:
  LocalApiKeys(const IdentityService& service) : service_(service) {}

  absl::StatusOr<auth::Principal> ResolveApiKey(std::string_view secret) override {
    const std::string hash = Sha256Hex(secret);
    return service_.deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<auth::Principal> {
      pqxx::result r = tx.exec_params(
          "SELECT k.tenant_id, k.id, k.created_by_user_id, k.permissions, "
          "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > to_timestamp($2)), "
          "t.state, (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'), "
          "extract(epoch FROM k.expires_at)::float8, u.state "
          "FROM identity.api_keys k JOIN identity.tenants t ON t.id = k.tenant_id "
          "JOIN identity.users u ON u.id = k.created_by_user_id WHERE k.key_hash = $1",
          hash, pg::ToEpoch(service_.deps_.clock.Now()));
      if (r.empty()) return absl::UnauthenticatedError("unknown API key");
      if (!r[0][4].as<bool>()) return absl::UnauthenticatedError("API key revoked or expired");
      if (r[0][5].as<int>() != v1::TENANT_STATE_ACTIVE) {
        return absl::UnauthenticatedError("the API key's tenant is not active");
      }
      if (r[0][8].as<int>() != v1::USER_STATE_ACTIVE) {
        return absl::UnauthenticatedError("the API key's creator is no longer active");
      }
      auth::Principal p;
      p.kind = auth::Principal::Kind::kApiKey;
      p.tenant_id = r[0][0].as<std::string>();
      p.api_key_id = r[0][1].as<std::string>();
      p.user_id = r[0][2].as<std::string>();
      const auth::PermissionSet creator = service_.LoadAccess(tx, p.tenant_id, p.user_id).effective;
      for (const auth::Grant& g : auth::PermissionSet::FromTexts(pg::TextArray(r[0][3])).Grants()) {
        if (creator.Has(g.permission, g.scope)) p.permissions.Add(g);
      }
      p.issued_at = service_.deps_.clock.Now();
      if (!r[0][7].is_null()) p.expires_at = pg::TimeFromEpoch(r[0][7]);
      if (r[0][6].as<bool>()) {
        tx.exec_params("UPDATE identity.api_keys SET last_used_at = now() WHERE id = $1",
                       p.api_key_id);
      }
      return p;
    });
  }

 private:
  const IdentityService& service_;
};

IdentityService::IdentityService(IdentityDeps deps, IdentityOptions options)
    : deps_(deps),
      options_(std::move(options)),
      authorizer_(deps.scope_facts),
      hasher_(options_.password_hash),
      publisher_(deps.pg, deps.redis, deps.clock, options_.revocation_key) {}

IdentityService::~IdentityService() { Stop(); }

absl::StatusOr<std::unique_ptr<IdentityService>> IdentityService::Create(IdentityDeps deps,
                                                                         IdentityOptions options) {
  if (options.internal_token.empty()) {
    return absl::InvalidArgumentError("identity: an internal service token is required");
  }
  SB_ASSIGN_OR_RETURN(Sealer sealer, Sealer::FromBase64Key(options.secrets_key));
  std::unique_ptr<IdentityService> service(new IdentityService(deps, std::move(options)));
  IdentityService& s = *service;
  s.sealer_ = std::move(sealer);
  s.verifier_ = std::make_unique<auth::JwtVerifier>(
      auth::JwtVerifierOptions{.issuer = s.options_.issuer,
                               .audience = s.options_.audience,
                               .leeway = s.options_.token_leeway},
      deps.clock);
  s.keys_ = std::make_unique<KeyRing>(deps.pg, deps.clock, *s.verifier_,
                                      s.options_.access_token_ttl, s.sealer_);
  SB_RETURN_IF_ERROR(s.keys_->Load());
  s.api_keys_ = std::make_unique<LocalApiKeys>(s);
  s.authenticator_ = std::make_unique<auth::Authenticator>(
      *s.verifier_, deps.revocations, s.api_keys_.get(), s.options_.internal_token);
  return service;
}

void IdentityService::Start() {
  std::lock_guard lock(upkeep_mu_);
  if (upkeep_.joinable()) return;
  stopping_ = false;
  upkeep_ = std::thread([this] {
    absl::Time next_key_load = deps_.clock.Now() + absl::Minutes(5);
    std::unique_lock lock(upkeep_mu_);
    while (!stopping_) {
      lock.unlock();
      PublishRevocations();
      if (deps_.clock.Now() >= next_key_load) {
        if (absl::Status s = keys_->Load(); !s.ok()) {
          spdlog::warn("identity: reloading signing keys failed: {}", s.ToString());
        }
        next_key_load = deps_.clock.Now() + absl::Minutes(5);
      }
      lock.lock();
      upkeep_wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    }
  });
}

void IdentityService::Stop() {
  {
    std::lock_guard lock(upkeep_mu_);
    stopping_ = true;
  }
  upkeep_wake_.notify_all();
  if (upkeep_.joinable()) upkeep_.join();
}

absl::StatusOr<auth::Principal> IdentityService::Caller(grpc::ServerContext& context) const {
  return authenticator_->Authenticate(context);
}

namespace {

// At most `max` bytes of `s`, cut at a UTF-8 character boundary (a cut inside a character would
// make text PostgreSQL refuses, and fail the audit insert with it).
std::string Utf8Prefix(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

}  // namespace

ClientAddress IdentityService::ClientOf(const grpc::ServerContext& context,
                                        const v1::ClientInfo* given) const {
  ClientAddress client;
  if (authenticator_->RequireService(context).ok()) {
    if (given != nullptr) {
      client.ip = given->ip_address();
      client.user_agent = given->user_agent();
    }
    const auto& md = context.client_metadata();
    if (client.ip.empty()) {
      if (auto it = md.find("x-sb-client-ip"); it != md.end()) {
        client.ip = std::string(it->second.data(), it->second.size());
      }
    }
    if (client.user_agent.empty()) {
      if (auto it = md.find("x-sb-user-agent"); it != md.end()) {
        client.user_agent = std::string(it->second.data(), it->second.size());
      }
    }
  }
  if (client.ip.empty()) client.ip = app::PeerIp(context);
  client.ip = Utf8Prefix(client.ip, 64);
  client.user_agent = Utf8Prefix(client.user_agent, 256);
  return client;
}

absl::StatusOr<std::string> IdentityService::TenantFor(const auth::Principal& caller,
                                                       const std::string& requested) const {
  if (requested.empty() || requested == caller.tenant_id) return caller.tenant_id;
  if (!caller.is_platform_admin() && !caller.is_service()) {
    return absl::NotFoundError("tenant not found");
  }
  SB_ASSIGN_OR_RETURN(TenantId id, TenantId::Parse(requested, "tenant_id"));
  return id.value();
}

absl::StatusOr<UserRecord> IdentityService::LoadUser(pqxx::work& tx, const std::string& tenant_id,
                                                     const std::string& user_id,
                                                     bool for_update) const {
  if (!IsUuid(user_id)) return absl::NotFoundError("user not found");
  pqxx::result r = tx.exec_params(
      absl::StrCat("SELECT ", kUserColumns,
                   " FROM identity.users u WHERE u.id = $1 AND ($2 = '' OR u.tenant_id::text = $2)",
                   for_update ? " FOR UPDATE" : ""),
      user_id, tenant_id);
  if (r.empty()) return absl::NotFoundError("user not found");
  return UserFromRow(r[0], options_.avatar_url_prefix);
}

UserAccess IdentityService::LoadAccess(pqxx::work& tx, const std::string& tenant_id,
                                       const std::string& user_id) const {
  UserAccess access;
  for (const auto& row : tx.exec_params(
           "SELECT role_id FROM identity.user_roles WHERE tenant_id = $1 AND user_id = $2 "
           "ORDER BY role_id",
           tenant_id, user_id)) {
    access.role_ids.push_back(row[0].as<std::string>());
  }
  absl::StatusOr<auth::PermissionSet> roles =
      RolePermissions(tx, tenant_id, access.role_ids, "role_ids");
  if (roles.ok()) access.effective = *std::move(roles);
  for (const auto& row :
       tx.exec_params("SELECT permission, effect, scope, set_by_user_id, "
                      "extract(epoch FROM set_at)::float8 FROM identity.permission_overrides "
                      "WHERE tenant_id = $1 AND user_id = $2 ORDER BY permission",
                      tenant_id, user_id)) {
    v1::PermissionOverride o;
    o.mutable_grant()->set_permission(row[0].as<std::string>());
    o.set_effect(static_cast<v1::PermissionOverride::Effect>(row[1].as<int>()));
    o.mutable_grant()->set_scope(static_cast<switchboard::common::v1::Scope>(row[2].as<int>()));
    if (!row[3].is_null()) o.set_set_by_user_id(row[3].as<std::string>());
    pg::SetTimestamp(o.mutable_set_at(), row[4]);
    access.overrides.push_back(o);
  }
  // Denials first take the role-given permission away; grants then add theirs.
  for (const v1::PermissionOverride& o : access.overrides) {
    if (o.effect() == v1::PermissionOverride::EFFECT_DENY) {
      access.effective.Remove(o.grant().permission());
    }
  }
  for (const v1::PermissionOverride& o : access.overrides) {
    if (o.effect() == v1::PermissionOverride::EFFECT_GRANT) {
      access.effective.Add({o.grant().permission(), static_cast<auth::Scope>(o.grant().scope())});
    }
  }
  return access;
}

absl::StatusOr<auth::PermissionSet> IdentityService::RolePermissions(
    pqxx::work& tx, const std::string& tenant_id, const std::vector<std::string>& role_ids,
    std::string_view field) const {
  auth::PermissionSet set;
  for (size_t i = 0; i < role_ids.size(); ++i) {
    const std::string& id = role_ids[i];
    if (const BuiltinRole* role = FindBuiltinRole(id)) {
      set.AddAll(role->permissions);
      continue;
    }
    pqxx::result r;
    if (IsUuid(id)) {
      r = tx.exec_params("SELECT permissions FROM identity.roles WHERE tenant_id = $1 AND id = $2",
                         tenant_id, id);
    }
    if (r.empty()) {
      return app::FieldError(absl::StrCat(std::string(field), "[", i, "]"), "UNKNOWN_ROLE",
                             absl::StrCat("unknown role '", id.substr(0, 64), "'"));
    }
    set.AddAll(auth::PermissionSet::FromTexts(pg::TextArray(r[0][0])));
  }
  return set;
}

absl::Status IdentityService::RequireCovers(const auth::Principal& caller,
                                            const auth::PermissionSet& wanted) {
  std::vector<auth::Grant> missing = caller.permissions.Uncovered(wanted);
  if (missing.empty()) return absl::OkStatus();
  return app::WithReason(absl::PermissionDeniedError(absl::StrCat(
                             "cannot grant ", auth::GrantText(missing[0]), ": you do not hold it (",
                             missing.size(), " permission(s) beyond yours)")),
                         "PRIVILEGE_ESCALATION");
}

auth::Resource IdentityService::UserResource(const std::string& tenant_id,
                                             const std::string& user_id) const {
  return auth::Resource{.type = "user", .tenant_id = tenant_id, .owner_user_id = user_id};
}

absl::Status IdentityService::CheckOnUser(const auth::Principal& caller,
                                          std::string_view permission, const std::string& tenant_id,
                                          const std::string& user_id) const {
  absl::Status s = authorizer_.Check(caller, permission, UserResource(tenant_id, user_id));
  // A user the caller may not even see is, for them, not there.
  if (absl::IsPermissionDenied(s) && !caller.restricted &&
      !authorizer_.Check(caller, auth::perm::kUsersRead, UserResource(tenant_id, user_id)).ok()) {
    return absl::NotFoundError("user not found");
  }
  return s;
}

absl::Status IdentityService::CheckManage(pqxx::work& tx, const auth::Principal& caller,
                                          std::string_view permission, const std::string& tenant_id,
                                          const std::string& user_id) const {
  SB_RETURN_IF_ERROR(CheckOnUser(caller, permission, tenant_id, user_id));
  // Only a person acting on their own account is "self"; an API key acting on its creator is not.
  if (caller.kind == auth::Principal::Kind::kUser && caller.user_id == user_id) {
    return absl::OkStatus();
  }
  const UserAccess target = LoadAccess(tx, tenant_id, user_id);
  if (!caller.permissions.CoversAll(target.effective)) {
    return app::WithReason(absl::PermissionDeniedError(
                               "this user holds permissions you do not: you cannot manage them"),
                           "TARGET_OUTRANKS_CALLER");
  }
  // A manager by org unit manages only users who sit wholly inside their subtree: someone who is
  // also placed elsewhere would carry the caller's changes (a new role, a reset password) to
  // units the caller does not manage.
  if (!auth::Authorizer::HoldsTenantWide(caller, permission) && !caller.is_platform_admin()) {
    const std::vector<auth::Scope> scopes = caller.permissions.ScopesOf(permission);
    if (std::find(scopes.begin(), scopes.end(), auth::Scope::kOrgUnit) != scopes.end()) {
      auto mine = deps_.scope_facts.Resolve(tenant_id, caller.user_id, auth::Scope::kOrgUnit);
      auto theirs = deps_.scope_facts.Resolve(tenant_id, user_id, auth::Scope::kOrgUnit);
      if (!mine.ok() || !theirs.ok()) {
        return absl::UnavailableError("cannot check access now: org does not answer");
      }
      for (const std::string& unit : (*theirs)->org_unit_ids) {
        if (!(*mine)->org_unit_ids.contains(unit)) {
          return app::WithReason(
              absl::PermissionDeniedError(
                  "this user also belongs to org units outside yours: you cannot manage them"),
              "TARGET_OUTSIDE_SCOPE");
        }
      }
    }
  }
  return absl::OkStatus();
}

v1::TenantSecurity IdentityService::SecurityOf(pqxx::work& tx, const std::string& tenant_id) const {
  v1::TenantSecurity security;
  pqxx::result r =
      tx.exec_params("SELECT settings->'security' FROM identity.tenants WHERE id = $1", tenant_id);
  if (!r.empty() && !r[0][0].is_null()) {
    pg::ParseJsonInto(r[0][0].as<std::string>(), &security);
  }
  if (security.password_min_length() < 8) {
    security.set_password_min_length(std::max(8, options_.min_password_length));
  }
  auto ttl_or = [](const google::protobuf::Duration& d, absl::Duration fallback,
                   absl::Duration max) {
    absl::Duration v = absl::Seconds(d.seconds());
    if (v <= absl::ZeroDuration()) v = fallback;
    return std::min(v, max);
  };
  const absl::Duration session =
      ttl_or(security.session_ttl(), options_.session_ttl, options_.max_session_ttl);
  const absl::Duration remember =
      ttl_or(security.remember_me_ttl(), options_.remember_me_ttl, options_.max_session_ttl);
  security.mutable_session_ttl()->set_seconds(absl::ToInt64Seconds(session));
  security.mutable_remember_me_ttl()->set_seconds(absl::ToInt64Seconds(remember));
  return security;
}

absl::StatusOr<std::pair<std::string, absl::Time>> IdentityService::IssueAccessToken(
    pqxx::work& tx, const UserRecord& user, const std::string& session_id, bool restricted,
    const std::string& amr) {
  const absl::Time now = deps_.clock.Now();
  auth::AccessClaims claims;
  claims.iss = options_.issuer;
  claims.aud = options_.audience;
  claims.sub = user.user.id();
  claims.tid = user.user.tenant_id();
  claims.sid = session_id;
  claims.jti = NewUuid();
  claims.iat = now;
  claims.nbf = now;
  claims.exp = now + options_.access_token_ttl;
  claims.rst = restricted;
  claims.amr = amr;
  if (!restricted) {
    UserAccess access = LoadAccess(tx, user.user.tenant_id(), user.user.id());
    claims.roles = access.role_ids;
    claims.perms = access.effective.Texts();
  }
  SB_ASSIGN_OR_RETURN(std::string token, keys_->Sign(claims));
  return std::make_pair(std::move(token), claims.exp);
}

absl::StatusOr<IdentityService::IssuedSession> IdentityService::StartSession(
    pqxx::work& tx, const UserRecord& user, bool remember_me, bool restricted,
    const std::string& amr, const ClientAddress& client) {
  const absl::Time now = deps_.clock.Now();
  const v1::TenantSecurity security = SecurityOf(tx, user.user.tenant_id());
  // A restricted session lives only as long as its first access token: enough to change the
  // password or enrol 2FA, then the user logs in again with full tokens.
  const absl::Duration ttl = restricted    ? options_.access_token_ttl
                             : remember_me ? absl::Seconds(security.remember_me_ttl().seconds())
                                           : absl::Seconds(security.session_ttl().seconds());
  IssuedSession issued;
  issued.session_id = NewUuid();
  const double now_s = pg::ToEpoch(now);
  tx.exec_params(
      "INSERT INTO identity.sessions (tenant_id, id, user_id, remember_me, restricted, amr, "
      "created_at, last_used_at, expires_at, client_ip, user_agent) VALUES ($1, $2, $3, $4, $5, "
      "$6, to_timestamp($7), to_timestamp($7), to_timestamp($8), $9, $10)",
      user.user.tenant_id(), issued.session_id, user.user.id(), remember_me, restricted, amr, now_s,
      now_s + absl::ToDoubleSeconds(ttl), client.ip, client.user_agent);
  const std::string refresh = absl::StrCat("sbr_", RandomUrlToken(32));
  tx.exec_params(
      "INSERT INTO identity.refresh_tokens (token_hash, tenant_id, session_id, issued_at, "
      "expires_at) VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($5))",
      Sha256Hex(refresh), user.user.tenant_id(), issued.session_id, now_s,
      now_s + absl::ToDoubleSeconds(ttl));
  SB_ASSIGN_OR_RETURN(auto access, IssueAccessToken(tx, user, issued.session_id, restricted, amr));
  v1::TokenPair& t = issued.tokens;
  t.set_access_token(access.first);
  pg::SetTimestamp(t.mutable_access_token_expires_at(), access.second);
  t.set_refresh_token(refresh);
  pg::SetTimestamp(t.mutable_refresh_token_expires_at(), now + ttl);
  t.set_token_type("Bearer");
  t.set_restricted(restricted);
  return issued;
}

void IdentityService::RevokeUserSessions(pqxx::work& tx, const std::string& user_id,
                                         const std::string& reason) {
  for (const auto& row :
       tx.exec_params("UPDATE identity.sessions SET revoked_at = now(), revoke_reason = $2 "
                      "WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
                      user_id, reason)) {
    RevocationPublisher::Record(tx, auth::Revocation::Kind::kSession, row[0].as<std::string>());
  }
  // A half-done login (password passed, TOTP pending) must not outlive a reset either.
  tx.exec_params("DELETE FROM identity.login_challenges WHERE user_id = $1", user_id);
  // Every access token names its session, so these revocations end them all. (A user-wide
  // revocation would also catch the fresh token that ChangePassword issues next, whenever the
  // database clock runs ahead of this process's.)
}

void IdentityService::RevokeApiKeysInCaches(pqxx::work& tx, const std::string& user_id) {
  for (const auto& row : tx.exec_params(
           "SELECT id FROM identity.api_keys WHERE created_by_user_id = $1 AND revoked_at IS NULL",
           user_id)) {
    RevocationPublisher::Record(tx, auth::Revocation::Kind::kApiKey, row[0].as<std::string>());
  }
}

void IdentityService::PublishRevocations() {
  if (absl::Status s = publisher_.Publish(); !s.ok()) {
    spdlog::warn("revocations: will publish again shortly: {}", s.ToString());
  }
}

}  // namespace sb::identity
