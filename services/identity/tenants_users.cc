// Tenants and users: CreateTenant ... DeleteUserAvatar, and EnsurePlatformAdmin.

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/app/call_context.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/identity/builtin_roles.h"
#include "services/identity/crypto/password_policy.h"
#include "services/identity/crypto/secrets.h"
#include "services/identity/identity_service.h"
#include "services/identity/throttle.h"
#include "spdlog/spdlog.h"

namespace sb::identity {
namespace {

namespace cv1 = ::switchboard::common::v1;
using nlohmann::json;

constexpr char kTenantColumns[] =
    "t.id, t.slug, t.display_name, t.state, t.sip_domain, t.time_zone, t.default_language, "
    "t.default_country, t.settings::text, extract(epoch FROM t.created_at)::float8, "
    "extract(epoch FROM t.updated_at)::float8";
constexpr size_t kMaxAvatarBytes = 1 << 20;

v1::Tenant TenantFromRow(const pqxx::row& row) {
  v1::Tenant t;
  // The settings column holds the Tenant's settings fields as proto3 JSON.
  pg::ParseJsonInto(row[8].as<std::string>(), &t);
  t.set_id(row[0].as<std::string>());
  t.set_slug(row[1].as<std::string>());
  t.set_display_name(row[2].as<std::string>());
  t.set_state(static_cast<v1::TenantState>(row[3].as<int>()));
  t.set_sip_domain(row[4].as<std::string>());
  t.set_time_zone(row[5].as<std::string>());
  t.set_default_language(row[6].as<std::string>());
  t.set_default_country(row[7].as<std::string>());
  pg::SetTimestamp(t.mutable_created_at(), row[9]);
  pg::SetTimestamp(t.mutable_updated_at(), row[10]);
  return t;
}

// The part of a Tenant kept in the settings column.
std::string SettingsJson(const v1::Tenant& t) {
  v1::Tenant settings;
  *settings.mutable_security() = t.security();
  settings.set_recording_policy(t.recording_policy());
  settings.set_recording_retention_days(t.recording_retention_days());
  settings.set_cdr_retention_days(t.cdr_retention_days());
  return pg::ToJson(settings);
}

absl::StatusOr<v1::Tenant> LoadTenant(pqxx::work& tx, const std::string& id) {
  if (!IsUuid(id)) return absl::NotFoundError("tenant not found");
  pqxx::result r = tx.exec_params(
      absl::StrCat("SELECT ", kTenantColumns, " FROM identity.tenants t WHERE t.id = $1"), id);
  if (r.empty()) return absl::NotFoundError("tenant not found");
  return TenantFromRow(r[0]);
}

absl::Status ValidateSipDomain(const std::string& domain, const std::string& field) {
  if (domain.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (domain.size() > 253)
    return app::FieldError(field, "TOO_LONG", "must be at most 253 characters");
  for (char c : domain) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) {
      return app::FieldError(field, "NOT_HOSTNAME", "must be a DNS name like acme.sip.example.com");
    }
  }
  if (domain.front() == '.' || domain.back() == '.' || domain.front() == '-') {
    return app::FieldError(field, "NOT_HOSTNAME", "must be a DNS name like acme.sip.example.com");
  }
  return absl::OkStatus();
}

// Validates and normalises the settable fields of a tenant; `prefix` is "tenant." for messages.
absl::Status NormalizeTenantSettings(v1::Tenant& t, const std::string& prefix) {
  SB_ASSIGN_OR_RETURN(std::string name,
                      app::NormalizeName(t.display_name(), prefix + "display_name", true));
  t.set_display_name(name);
  SB_RETURN_IF_ERROR(app::ValidateTimeZone(t.time_zone(), prefix + "time_zone"));
  SB_RETURN_IF_ERROR(app::ValidateLanguage(t.default_language(), prefix + "default_language"));
  if (!t.default_country().empty()) {
    const std::string& c = t.default_country();
    if (c.size() != 2 || !absl::ascii_isupper(static_cast<unsigned char>(c[0])) ||
        !absl::ascii_isupper(static_cast<unsigned char>(c[1]))) {
      return app::FieldError(prefix + "default_country", "NOT_COUNTRY_CODE",
                             "must be an ISO 3166-1 alpha-2 code like HU");
    }
  }
  if (t.recording_policy() == cv1::RECORDING_POLICY_UNSPECIFIED) {
    t.set_recording_policy(cv1::RECORDING_POLICY_ALWAYS);
  }
  if (t.recording_policy() == cv1::RECORDING_POLICY_INHERIT) {
    return app::FieldError(prefix + "recording_policy", "INVALID",
                           "INHERIT is only valid on projects");
  }
  if (t.recording_retention_days() < 0 || t.recording_retention_days() > 36500) {
    return app::FieldError(prefix + "recording_retention_days", "OUT_OF_RANGE", "must be 0..36500");
  }
  if (t.cdr_retention_days() < 0 || t.cdr_retention_days() > 36500) {
    return app::FieldError(prefix + "cdr_retention_days", "OUT_OF_RANGE", "must be 0..36500");
  }
  const v1::TenantSecurity& sec = t.security();
  if (sec.password_min_length() != 0 &&
      (sec.password_min_length() < 8 || sec.password_min_length() > 128)) {
    return app::FieldError(prefix + "security.password_min_length", "OUT_OF_RANGE",
                           "must be 8..128 (0: the platform default)");
  }
  if (sec.session_ttl().seconds() < 0 || sec.remember_me_ttl().seconds() < 0) {
    return app::FieldError(prefix + "security.session_ttl", "OUT_OF_RANGE", "must not be negative");
  }
  for (int i = 0; i < sec.require_totp_role_ids_size(); ++i) {
    if (FindBuiltinRole(sec.require_totp_role_ids(i)) == nullptr &&
        !IsUuid(sec.require_totp_role_ids(i))) {
      return app::FieldError(absl::StrCat(prefix, "security.require_totp_role_ids[", i, "]"),
                             "UNKNOWN_ROLE", "is not a role id");
    }
  }
  return absl::OkStatus();
}

// The fields of a new user, validated and normalised. Roles are checked by the caller.
struct NewUser {
  std::string first_name, last_name, display_name, login_name, email, time_zone, language;
  bool email_verified = false;
  bool must_change_password = false;
};

absl::StatusOr<NewUser> NormalizeNewUser(const v1::User& u, const v1::Tenant& tenant,
                                         const std::string& prefix) {
  NewUser n;
  SB_ASSIGN_OR_RETURN(n.first_name,
                      app::NormalizeName(u.first_name(), prefix + "first_name", true));
  SB_ASSIGN_OR_RETURN(n.last_name, app::NormalizeName(u.last_name(), prefix + "last_name", true));
  SB_ASSIGN_OR_RETURN(n.display_name,
                      app::NormalizeName(u.display_name(), prefix + "display_name", false));
  if (n.display_name.empty()) n.display_name = n.first_name + " " + n.last_name;
  if (u.login_name().empty() && u.email().empty()) {
    return app::FieldError(prefix + "login_name", "REQUIRED", "login_name or email is required");
  }
  if (!u.login_name().empty()) {
    SB_ASSIGN_OR_RETURN(n.login_name,
                        app::NormalizeLoginName(u.login_name(), prefix + "login_name"));
  }
  if (!u.email().empty()) {
    SB_ASSIGN_OR_RETURN(n.email, app::NormalizeEmail(u.email(), prefix + "email"));
  }
  n.time_zone = u.time_zone().empty() ? tenant.time_zone() : u.time_zone();
  SB_RETURN_IF_ERROR(app::ValidateTimeZone(n.time_zone, prefix + "time_zone"));
  n.language = u.language().empty() ? tenant.default_language() : u.language();
  SB_RETURN_IF_ERROR(app::ValidateLanguage(n.language, prefix + "language"));
  n.email_verified = u.email_verified() && !n.email.empty();
  n.must_change_password = u.must_change_password();
  return n;
}

// AlreadyExists naming the field when another live user of the tenant has the login or email.
absl::Status CheckUnique(pqxx::work& tx, const std::string& tenant_id, const std::string& login,
                         const std::string& email, const std::string& except_user,
                         const std::string& prefix) {
  if (!login.empty()) {
    pqxx::result r = tx.exec_params(
        "SELECT 1 FROM identity.users WHERE tenant_id = $1 AND login_name = $2 AND state <> 3 "
        "AND id::text <> $3",
        tenant_id, login, except_user);
    if (!r.empty()) {
      return app::FieldError(absl::StatusCode::kAlreadyExists, prefix + "login_name", "DUPLICATE",
                             absl::StrCat("'", login, "' is already taken in this tenant"));
    }
  }
  if (!email.empty()) {
    pqxx::result r = tx.exec_params(
        "SELECT 1 FROM identity.users WHERE tenant_id = $1 AND lower(email) = lower($2) AND "
        "state <> 3 AND id::text <> $3",
        tenant_id, email, except_user);
    if (!r.empty()) {
      return app::FieldError(absl::StatusCode::kAlreadyExists, prefix + "email", "DUPLICATE",
                             "another user of this tenant has this email");
    }
  }
  return absl::OkStatus();
}

// Inserts a user row and its roles; returns the id.
std::string InsertUser(pqxx::work& tx, const std::string& tenant_id, const NewUser& n,
                       const std::string& password_hash, const std::vector<std::string>& roles,
                       double now) {
  const std::string id = NewUuid();
  tx.exec_params(
      "INSERT INTO identity.users (tenant_id, id, first_name, last_name, display_name, "
      "login_name, email, email_verified, time_zone, language, state, must_change_password, "
      "password_hash, password_changed_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, "
      "$6, $7, $8, $9, $10, 1, $11, $12, to_timestamp($13), to_timestamp($13), "
      "to_timestamp($13))",
      tenant_id, id, n.first_name, n.last_name, n.display_name, pg::NullIfEmpty(n.login_name),
      pg::NullIfEmpty(n.email), n.email_verified, n.time_zone, n.language, n.must_change_password,
      password_hash, now);
  for (const std::string& role : roles) {
    tx.exec_params(
        "INSERT INTO identity.user_roles (tenant_id, user_id, role_id) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        tenant_id, id, role);
  }
  return id;
}

// True when `user_id` is the last active user of the tenant holding the admin role.
bool IsLastAdmin(pqxx::work& tx, const std::string& tenant_id, const std::string& user_id) {
  // Two admins demoting each other at once must not both pass: one tenant-wide lock.
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('identity.admins:' || $1))", tenant_id);
  pqxx::result r = tx.exec_params(
      "SELECT bool_or(u.id = $2::uuid), count(*) FROM identity.users u JOIN identity.user_roles r "
      "ON r.user_id = u.id WHERE u.tenant_id = $1 AND r.role_id = 'admin' AND u.state = 1",
      tenant_id, user_id);
  return !r[0][0].is_null() && r[0][0].as<bool>() && r[0][1].as<int64_t>() <= 1;
}

std::vector<std::string> Dedup(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

// Throttle keys of a user's logins, cleared when an admin unlocks them.
void ClearLoginLocks(pqxx::work& tx, const std::string& tenant_id, const v1::User& user) {
  tx.exec_params("DELETE FROM identity.throttle WHERE key = 'login-user:' || $1", user.id());
  tx.exec_params(
      "DELETE FROM identity.throttle WHERE key IN (SELECT 'login:' || s || ':' || l FROM "
      "(SELECT slug FROM identity.tenants WHERE id = $1 UNION ALL SELECT '*') AS a(s), "
      "(SELECT lower($2) UNION ALL SELECT lower($3)) AS b(l))",
      tenant_id, user.login_name(), user.email());
}

bool IsImage(const std::string& type, const std::string& data) {
  if (type == "image/png") return absl::StartsWith(data, "\x89PNG\r\n\x1a\n");
  if (type == "image/jpeg") return absl::StartsWith(data, "\xFF\xD8\xFF");
  if (type == "image/webp") {
    return data.size() >= 12 && data.compare(0, 4, "RIFF") == 0 && data.compare(8, 4, "WEBP") == 0;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Platform bootstrap

absl::Status IdentityService::EnsurePlatformAdmin(const std::string& login_name,
                                                  const std::string& password) {
  SB_ASSIGN_OR_RETURN(std::string login,
                      app::NormalizeLoginName(login_name, "platform_admin_login"));
  SB_RETURN_IF_ERROR(CheckPassword(password, 12, {login, "", "", ""}, "platform_admin_password"));
  SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(password));
  return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('identity.platform_admin'))");
    const double now = pg::ToEpoch(deps_.clock.Now());
    pqxx::result t =
        tx.exec_params("SELECT id FROM identity.tenants WHERE slug = $1", kPlatformTenantSlug);
    std::string tenant_id;
    if (t.empty()) {
      tenant_id = NewUuid();
      v1::Tenant settings;
      settings.set_recording_policy(cv1::RECORDING_POLICY_NEVER);
      tx.exec_params(
          "INSERT INTO identity.tenants (id, slug, display_name, state, sip_domain, time_zone, "
          "default_language, settings, created_at, updated_at) VALUES ($1, $2, 'Platform', 1, "
          "'platform.invalid', 'UTC', 'en', $3::jsonb, to_timestamp($4), to_timestamp($4))",
          tenant_id, kPlatformTenantSlug, SettingsJson(settings), now);
    } else {
      tenant_id = t[0][0].as<std::string>();
    }
    pqxx::result admins = tx.exec(
        "SELECT 1 FROM identity.user_roles r JOIN identity.users u ON u.id = r.user_id "
        "WHERE r.role_id = 'platform_admin' AND u.state <> 3 LIMIT 1");
    if (!admins.empty()) return absl::OkStatus();
    NewUser n{.first_name = "Platform",
              .last_name = "Admin",
              .display_name = "Platform Admin",
              .login_name = login,
              .time_zone = "UTC",
              .language = "en"};
    const std::string id = InsertUser(tx, tenant_id, n, hash, {kPlatformAdminRole}, now);
    WriteAudit(tx, AuditActor{}, ClientAddress{},
               {.tenant_id = tenant_id,
                .action = "user.create",
                .target_type = "user",
                .target_id = id,
                .target_display_name = n.display_name,
                .changes = {{"reason", "platform admin bootstrap"}}});
    spdlog::info("identity: created platform admin '{}'", login);
    return absl::OkStatus();
  });
}

absl::Status IdentityService::SeedDemoTenant(const std::string& password) {
  SB_RETURN_IF_ERROR(CheckPassword(password, 10, {}, "demo_password"));
  SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(password));
  return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('identity.demo_tenant'))");
    if (!tx.exec("SELECT 1 FROM identity.tenants WHERE slug = 'demo'").empty()) {
      return absl::OkStatus();
    }
    const double now = pg::ToEpoch(deps_.clock.Now());
    const std::string tenant_id = NewUuid();
    v1::Tenant settings;
    settings.set_recording_policy(cv1::RECORDING_POLICY_ALWAYS);
    tx.exec_params(
        "INSERT INTO identity.tenants (id, slug, display_name, state, sip_domain, time_zone, "
        "default_language, default_country, settings, created_at, updated_at) VALUES ($1, "
        "'demo', 'Demo Call Center', 1, 'demo.sip.localhost', 'Europe/Budapest', 'en', 'HU', "
        "$2::jsonb, to_timestamp($3), to_timestamp($3))",
        tenant_id, SettingsJson(settings), now);
    struct Person {
      const char* login;
      const char* first;
      const char* last;
      const char* role;
    };
    for (const Person& p : {Person{"admin", "Ada", "Admin", kAdminRole},
                            Person{"supervisor", "Sam", "Supervisor", "head"},
                            Person{"agent1", "Anna", "Agent", kAgentRole},
                            Person{"agent2", "Bence", "Agent", kAgentRole},
                            Person{"agent3", "Clara", "Agent", kAgentRole}}) {
      NewUser n{.first_name = p.first,
                .last_name = p.last,
                .display_name = absl::StrCat(p.first, " ", p.last),
                .login_name = p.login,
                .time_zone = "Europe/Budapest",
                .language = "en"};
      const std::string id = InsertUser(tx, tenant_id, n, hash, {p.role}, now);
      WriteAudit(tx, AuditActor{}, ClientAddress{},
                 {.tenant_id = tenant_id,
                  .action = "user.create",
                  .target_type = "user",
                  .target_id = id,
                  .target_display_name = n.display_name,
                  .changes = {{"reason", "demo tenant"}, {"role_ids", {p.role}}}});
    }
    spdlog::info("identity: created the demo tenant 'demo'");
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------------
// Tenants

grpc::Status IdentityService::CreateTenant(grpc::ServerContext* context,
                                           const v1::CreateTenantRequest* request,
                                           v1::CreateTenantResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (!caller.permissions.Has(auth::perm::kTenantsManage, auth::Scope::kPlatform)) {
      return absl::PermissionDeniedError("permission tenants.manage is required");
    }
    v1::Tenant tenant = request->tenant();
    tenant.set_slug(absl::AsciiStrToLower(tenant.slug()));
    SB_RETURN_IF_ERROR(app::ValidateSlug(tenant.slug(), "tenant.slug"));
    if (tenant.default_language().empty()) tenant.set_default_language("en");
    if (tenant.time_zone().empty()) tenant.set_time_zone("UTC");
    tenant.set_sip_domain(absl::AsciiStrToLower(tenant.sip_domain()));
    SB_RETURN_IF_ERROR(ValidateSipDomain(tenant.sip_domain(), "tenant.sip_domain"));
    SB_RETURN_IF_ERROR(NormalizeTenantSettings(tenant, "tenant."));
    const v1::CreateUserRequest& admin = request->admin();
    if (admin.org_unit_ids_size() > 0 || admin.team_ids_size() > 0) {
      return app::FieldError("admin.org_unit_ids", "NOT_ALLOWED",
                             "the first admin is placed in the organisation later");
    }
    SB_ASSIGN_OR_RETURN(NewUser n, NormalizeNewUser(admin.user(), tenant, "admin.user."));
    std::string password = admin.password();
    std::string generated;
    if (password.empty()) {
      generated = GeneratePassword();
      password = generated;
      n.must_change_password = true;
    } else {
      SB_RETURN_IF_ERROR(CheckPassword(password, std::max(8, options_.min_password_length),
                                       {n.login_name, n.email, n.first_name, n.last_name},
                                       "admin.password"));
      SB_RETURN_IF_ERROR(CheckPasswordConfirmation(password, admin.password_confirmation(),
                                                   "admin.password_confirmation"));
    }
    SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(password));
    const ClientAddress client = ClientOf(*context);
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      if (!tx.exec_params("SELECT 1 FROM identity.tenants WHERE slug = $1", tenant.slug())
               .empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "tenant.slug", "DUPLICATE",
                               absl::StrCat("a tenant '", tenant.slug(), "' exists already"));
      }
      if (!tx.exec_params("SELECT 1 FROM identity.tenants WHERE lower(sip_domain) = $1",
                          tenant.sip_domain())
               .empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "tenant.sip_domain", "DUPLICATE",
                               "another tenant uses this SIP domain");
      }
      const double now = pg::ToEpoch(deps_.clock.Now());
      const std::string tenant_id = NewUuid();
      tx.exec_params(
          "INSERT INTO identity.tenants (id, slug, display_name, state, sip_domain, time_zone, "
          "default_language, default_country, settings, created_at, updated_at) VALUES ($1, $2, "
          "$3, 1, $4, $5, $6, $7, $8::jsonb, to_timestamp($9), to_timestamp($9))",
          tenant_id, tenant.slug(), tenant.display_name(), tenant.sip_domain(), tenant.time_zone(),
          tenant.default_language(), tenant.default_country(), SettingsJson(tenant), now);
      const std::string admin_id = InsertUser(tx, tenant_id, n, hash, {kAdminRole}, now);
      WriteAudit(tx, AuditActor::Of(caller), client,
                 {.tenant_id = tenant_id,
                  .action = "tenant.create",
                  .target_type = "tenant",
                  .target_id = tenant_id,
                  .target_display_name = tenant.display_name()});
      WriteAudit(tx, AuditActor::Of(caller), client,
                 {.tenant_id = tenant_id,
                  .action = "user.create",
                  .target_type = "user",
                  .target_id = admin_id,
                  .target_display_name = n.display_name,
                  .changes = {{"role_ids", {kAdminRole}}}});
      SB_ASSIGN_OR_RETURN(*response->mutable_tenant(), LoadTenant(tx, tenant_id));
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, tenant_id, admin_id));
      *response->mutable_admin() = rec.user;
      return absl::OkStatus();
    }));
    response->set_admin_initial_password(generated);
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::GetTenant(grpc::ServerContext* context,
                                        const v1::GetTenantRequest* request, v1::Tenant* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    std::string tenant_id;
    if (authenticator_->RequireService(*context).ok()) {
      // Services read a tenant's settings (org: the default country for phone numbers).
      SB_ASSIGN_OR_RETURN(TenantId id, TenantId::Parse(request->tenant_id(), "tenant_id"));
      tenant_id = id.value();
    } else {
      SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
      SB_ASSIGN_OR_RETURN(tenant_id, TenantFor(caller, request->tenant_id()));
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(*response, LoadTenant(tx, tenant_id));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::ListTenants(grpc::ServerContext* context,
                                          const v1::ListTenantsRequest* request,
                                          v1::ListTenantsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (!caller.permissions.Has(auth::perm::kTenantsManage, auth::Scope::kPlatform)) {
      return absl::PermissionDeniedError("permission tenants.manage is required");
    }
    const std::string fingerprint = absl::StrCat(request->query(), "|", request->state());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      const std::string where =
          "($1 = '' OR t.slug ILIKE '%' || $1 || '%' OR t.display_name ILIKE '%' || $1 || '%') "
          "AND ($2 = 0 OR t.state = $2)";
      const int64_t total =
          tx.exec_params(absl::StrCat("SELECT count(*) FROM identity.tenants t WHERE ", where),
                         request->query(), static_cast<int>(request->state()))[0][0]
              .as<int64_t>();
      for (const auto& row : tx.exec_params(
               absl::StrCat("SELECT ", kTenantColumns, " FROM identity.tenants t WHERE ", where,
                            " ORDER BY t.slug LIMIT $3 OFFSET $4"),
               request->query(), static_cast<int>(request->state()), page.limit, page.offset)) {
        *response->add_tenants() = TenantFromRow(row);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::UpdateTenant(grpc::ServerContext* context,
                                           const v1::UpdateTenantRequest* request,
                                           v1::Tenant* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_ASSIGN_OR_RETURN(std::string tenant_id, TenantFor(caller, request->tenant().id()));
    const bool platform =
        caller.permissions.Has(auth::perm::kTenantsManage, auth::Scope::kPlatform);
    if (!platform && !caller.permissions.Has(auth::perm::kSettingsManage, auth::Scope::kTenant)) {
      return absl::PermissionDeniedError("permission settings.manage is required");
    }
    if (request->update_mask().paths_size() == 0) {
      return app::FieldError("update_mask", "REQUIRED", "name the fields to change");
    }
    bool revoke_all = false;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Tenant current, LoadTenant(tx, tenant_id));
      if (current.state() == v1::TENANT_STATE_DELETED) {
        return absl::FailedPreconditionError("the tenant is deleted");
      }
      v1::Tenant next = current;
      const v1::Tenant& in = request->tenant();
      json changes = json::object();
      for (const std::string& path : request->update_mask().paths()) {
        if (path == "display_name") {
          next.set_display_name(in.display_name());
        } else if (path == "time_zone") {
          next.set_time_zone(in.time_zone());
        } else if (path == "default_language") {
          next.set_default_language(in.default_language());
        } else if (path == "default_country") {
          next.set_default_country(in.default_country());
        } else if (path == "security") {
          *next.mutable_security() = in.security();
        } else if (path == "security.require_totp") {
          next.mutable_security()->set_require_totp(in.security().require_totp());
        } else if (path == "security.require_totp_role_ids") {
          *next.mutable_security()->mutable_require_totp_role_ids() =
              in.security().require_totp_role_ids();
        } else if (path == "security.password_min_length") {
          next.mutable_security()->set_password_min_length(in.security().password_min_length());
        } else if (path == "security.session_ttl") {
          *next.mutable_security()->mutable_session_ttl() = in.security().session_ttl();
        } else if (path == "security.remember_me_ttl") {
          *next.mutable_security()->mutable_remember_me_ttl() = in.security().remember_me_ttl();
        } else if (path == "recording_policy") {
          next.set_recording_policy(in.recording_policy());
        } else if (path == "recording_retention_days") {
          next.set_recording_retention_days(in.recording_retention_days());
        } else if (path == "cdr_retention_days") {
          next.set_cdr_retention_days(in.cdr_retention_days());
        } else if (path == "state") {
          if (!platform) {
            return absl::PermissionDeniedError("only a platform admin changes a tenant's state");
          }
          if (in.state() != v1::TENANT_STATE_ACTIVE && in.state() != v1::TENANT_STATE_SUSPENDED) {
            return app::FieldError("tenant.state", "INVALID",
                                   "must be ACTIVE or SUSPENDED (DeleteTenant deletes)");
          }
          next.set_state(in.state());
        } else if (path == "sip_domain") {
          if (!platform) {
            return absl::PermissionDeniedError("only a platform admin changes the SIP domain");
          }
          next.set_sip_domain(absl::AsciiStrToLower(in.sip_domain()));
          SB_RETURN_IF_ERROR(ValidateSipDomain(next.sip_domain(), "tenant.sip_domain"));
        } else if (path == "slug") {
          return app::FieldError("update_mask", "IMMUTABLE", "slug cannot be changed");
        } else {
          return app::FieldError("update_mask", "UNKNOWN_FIELD",
                                 absl::StrCat("'", path, "' is not an updatable tenant field"));
        }
      }
      SB_RETURN_IF_ERROR(NormalizeTenantSettings(next, "tenant."));
      if (next.sip_domain() != current.sip_domain()) {
        if (!tx.exec_params(
                   "SELECT 1 FROM identity.tenants WHERE lower(sip_domain) = $1 AND id <> $2",
                   next.sip_domain(), tenant_id)
                 .empty()) {
          return app::FieldError(absl::StatusCode::kAlreadyExists, "tenant.sip_domain", "DUPLICATE",
                                 "another tenant uses this SIP domain");
        }
        // HA1 digests contain the realm: they cannot follow a domain change.
        if (!tx.exec_params("SELECT 1 FROM identity.sip_credentials WHERE tenant_id = $1 LIMIT 1",
                            tenant_id)
                 .empty()) {
          return app::FieldError(absl::StatusCode::kFailedPrecondition, "tenant.sip_domain",
                                 "SIP_CREDENTIALS_EXIST",
                                 "delete or reset the tenant's SIP credentials first: their "
                                 "digests contain the old domain");
        }
      }
      AddChange(changes, "display_name", current.display_name(), next.display_name());
      AddChange(changes, "time_zone", current.time_zone(), next.time_zone());
      AddChange(changes, "default_language", current.default_language(), next.default_language());
      AddChange(changes, "default_country", current.default_country(), next.default_country());
      AddChange(changes, "settings", json::parse(SettingsJson(current)),
                json::parse(SettingsJson(next)));
      AddChange(changes, "state", current.state(), next.state());
      AddChange(changes, "sip_domain", current.sip_domain(), next.sip_domain());
      tx.exec_params(
          "UPDATE identity.tenants SET display_name = $2, time_zone = $3, default_language = $4, "
          "default_country = $5, settings = $6::jsonb, state = $7, sip_domain = $8, updated_at = "
          "to_timestamp($9) WHERE id = $1",
          tenant_id, next.display_name(), next.time_zone(), next.default_language(),
          next.default_country(), SettingsJson(next), static_cast<int>(next.state()),
          next.sip_domain(), pg::ToEpoch(deps_.clock.Now()));
      if (next.state() == v1::TENANT_STATE_SUSPENDED && current.state() != next.state()) {
        for (const auto& row :
             tx.exec_params("SELECT id FROM identity.users WHERE tenant_id = $1", tenant_id)) {
          RevokeUserSessions(tx, row[0].as<std::string>(), "tenant suspended");
          RevokeApiKeysInCaches(tx, row[0].as<std::string>());
        }
        revoke_all = true;
      }
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = "tenant.update",
                  .target_type = "tenant",
                  .target_id = tenant_id,
                  .target_display_name = next.display_name(),
                  .changes = changes});
      SB_ASSIGN_OR_RETURN(*response, LoadTenant(tx, tenant_id));
      return absl::OkStatus();
    }));
    if (revoke_all) PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::DeleteTenant(grpc::ServerContext* context,
                                           const v1::DeleteTenantRequest* request,
                                           google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (!caller.permissions.Has(auth::perm::kTenantsManage, auth::Scope::kPlatform)) {
      return absl::PermissionDeniedError("permission tenants.manage is required");
    }
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Tenant tenant, LoadTenant(tx, request->tenant_id()));
      if (tenant.slug() == kPlatformTenantSlug || tenant.id() == caller.tenant_id) {
        return absl::FailedPreconditionError("the platform tenant cannot be deleted");
      }
      if (tenant.state() == v1::TENANT_STATE_DELETED)
        return absl::NotFoundError("tenant not found");
      tx.exec_params("UPDATE identity.tenants SET state = 3, updated_at = now() WHERE id = $1",
                     tenant.id());
      for (const auto& row :
           tx.exec_params("SELECT id FROM identity.users WHERE tenant_id = $1", tenant.id())) {
        RevokeUserSessions(tx, row[0].as<std::string>(), "tenant deleted");
        RevokeApiKeysInCaches(tx, row[0].as<std::string>());
      }
      tx.exec_params(
          "UPDATE identity.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND "
          "revoked_at IS NULL",
          tenant.id());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant.id(),
                  .action = "tenant.delete",
                  .target_type = "tenant",
                  .target_id = tenant.id(),
                  .target_display_name = tenant.display_name()});
      return absl::OkStatus();
    }));
    PublishRevocations();
    return absl::OkStatus();
  }());
}

// ---------------------------------------------------------------------------------------------
// Users

absl::Status IdentityService::UndoNewUser(const std::string& tenant_id, const std::string& user_id,
                                          absl::Status org_answer) {
  SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec_params("DELETE FROM identity.users WHERE tenant_id = $1 AND id = $2", tenant_id,
                   user_id);
    return absl::OkStatus();
  }));
  // Whatever org kept of the half-made user goes too (best effort: ReleaseUser is idempotent).
  (void)deps_.org.Release({tenant_id, ""}, user_id);
  return org_answer;
}

grpc::Status IdentityService::CreateUser(grpc::ServerContext* context,
                                         const v1::CreateUserRequest* request, v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer_.ReachFor(caller, auth::perm::kUsersManage));
    const std::vector<std::string> units = Dedup(request->org_unit_ids());
    const std::vector<std::string> teams = Dedup(request->team_ids());
    if (!reach.all) {
      // Outside tenant-wide rights a new user must land where the caller manages.
      if (units.empty() && teams.empty()) {
        return app::FieldError(absl::StatusCode::kPermissionDenied, "org_unit_ids", "OUTSIDE_SCOPE",
                               "you manage users only inside your org units or teams: name at "
                               "least one of them");
      }
      for (size_t i = 0; i < units.size(); ++i) {
        if (!reach.org_unit_ids.contains(units[i])) {
          return app::FieldError(absl::StatusCode::kPermissionDenied,
                                 absl::StrCat("org_unit_ids[", i, "]"), "OUTSIDE_SCOPE",
                                 "is not in your org-unit subtree");
        }
      }
      for (size_t i = 0; i < teams.size(); ++i) {
        if (!reach.team_ids.contains(teams[i])) {
          return app::FieldError(absl::StatusCode::kPermissionDenied,
                                 absl::StrCat("team_ids[", i, "]"), "OUTSIDE_SCOPE",
                                 "is not one of the teams you lead");
        }
      }
    }
    const std::string tenant_id = caller.tenant_id;
    v1::Tenant tenant;
    v1::TenantSecurity security;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(tenant, LoadTenant(tx, tenant_id));
      security = SecurityOf(tx, tenant_id);
      return absl::OkStatus();
    }));
    SB_ASSIGN_OR_RETURN(NewUser n, NormalizeNewUser(request->user(), tenant, "user."));
    std::vector<std::string> roles = Dedup(request->user().role_ids());
    if (roles.empty()) roles.push_back(kAgentRole);
    if (request->password().empty()) {
      return app::FieldError("password", "REQUIRED", "is required");
    }
    SB_RETURN_IF_ERROR(CheckPassword(request->password(), security.password_min_length(),
                                     {n.login_name, n.email, n.first_name, n.last_name}));
    SB_RETURN_IF_ERROR(
        CheckPasswordConfirmation(request->password(), request->password_confirmation()));
    SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(request->password()));
    const std::string bearer = app::CallContext::From(*context).bearer_token;
    std::string id;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_RETURN_IF_ERROR(CheckUnique(tx, tenant_id, n.login_name, n.email, "", "user."));
      SB_ASSIGN_OR_RETURN(auth::PermissionSet perms,
                          RolePermissions(tx, tenant_id, roles, "user.role_ids"));
      SB_RETURN_IF_ERROR(RequireCovers(caller, perms));
      id = InsertUser(tx, tenant_id, n, hash, roles, pg::ToEpoch(deps_.clock.Now()));
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = "user.create",
                  .target_type = "user",
                  .target_id = id,
                  .target_display_name = n.display_name,
                  .changes = {{"role_ids", roles}, {"org_unit_ids", units}, {"team_ids", teams}}});
      return absl::OkStatus();
    }));
    if (!units.empty() || !teams.empty()) {
      // After the commit, so that org finds the user when it checks the ids it is given; if org
      // refuses (or cannot be reached), the user is removed again and the caller gets org's answer.
      if (absl::Status placed = deps_.org.Place({tenant_id, bearer}, id, units, teams);
          !placed.ok()) {
        return UndoNewUser(tenant_id, id, placed);
      }
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, tenant_id, id));
      *response = rec.user;
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetUser(grpc::ServerContext* context,
                                      const v1::GetUserRequest* request, v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUserFor(tx, caller, request->user_id()));
      absl::Status access = authorizer_.Check(caller, auth::perm::kUsersRead,
                                              UserResource(rec.user.tenant_id(), rec.user.id()));
      // What the caller may not see does not exist for them.
      if (absl::IsPermissionDenied(access)) return absl::NotFoundError("user not found");
      SB_RETURN_IF_ERROR(access);
      *response = rec.user;
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetCurrentUser(grpc::ServerContext* context,
                                             const v1::GetCurrentUserRequest* request,
                                             v1::GetCurrentUserResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (caller.user_id.empty()) {
      return absl::FailedPreconditionError("this credential does not belong to a user");
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, caller.user_id));
      *response->mutable_user() = rec.user;
      SB_ASSIGN_OR_RETURN(*response->mutable_tenant(), LoadTenant(tx, caller.tenant_id));
      for (const auth::Grant& g : caller.permissions.Grants()) {
        v1::PermissionGrant* out = response->add_permissions();
        out->set_permission(g.permission);
        out->set_scope(static_cast<cv1::Scope>(g.scope));
      }
      response->set_restricted(caller.restricted);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::BatchGetUsers(grpc::ServerContext* context,
                                            const v1::BatchGetUsersRequest* request,
                                            v1::BatchGetUsersResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    if (request->user_ids_size() > 1000) {
      return app::FieldError("user_ids", "TOO_MANY", "at most 1000 ids per call");
    }
    // Services (reporting showing agent names) call with the service credential and the tenant in
    // the request metadata; people call with their token and see whom they may read.
    std::optional<auth::Principal> caller;
    std::string tenant_id;
    if (authenticator_->RequireService(*context).ok()) {
      tenant_id = app::CallContext::From(*context).tenant_id;
      if (!IsUuid(tenant_id)) {
        return absl::InvalidArgumentError("internal BatchGetUsers needs x-sb-tenant-id metadata");
      }
    } else {
      SB_ASSIGN_OR_RETURN(caller, Caller(*context));
      SB_RETURN_IF_ERROR(auth::RequireUnrestricted(*caller));
      tenant_id = caller->tenant_id;
    }
    std::vector<std::string> ids;
    for (const auto& id : request->user_ids()) {
      if (IsUuid(id)) ids.push_back(absl::AsciiStrToLower(id));
    }
    std::optional<auth::Reach> reach;
    if (caller) {
      SB_ASSIGN_OR_RETURN(reach, authorizer_.ReachFor(*caller, auth::perm::kUsersRead));
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      for (const auto& row : tx.exec_params(
               absl::StrCat("SELECT ", kUserColumns,
                            " FROM identity.users u WHERE u.tenant_id = $1 AND u.id::text = "
                            "ANY($2::text[]) ORDER BY u.display_name"),
               tenant_id, pg::PgArray(ids))) {
        UserRecord rec = UserFromRow(row, options_.avatar_url_prefix);
        if (reach && !reach->all && !reach->user_ids.contains(rec.user.id())) continue;
        *response->add_users() = std::move(rec.user);
      }
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::ListUsers(grpc::ServerContext* context,
                                        const v1::ListUsersRequest* request,
                                        v1::ListUsersResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer_.ReachFor(caller, auth::perm::kUsersRead));
    static const std::map<std::string, std::string> kOrder = {
        {"", "lower(u.display_name), u.id"},
        {"display_name", "lower(u.display_name), u.id"},
        {"login_name", "u.login_name NULLS LAST, u.id"},
        {"created_at desc", "u.created_at DESC, u.id"},
        {"last_login_at desc", "u.last_login_at DESC NULLS LAST, u.id"},
    };
    auto order = kOrder.find(request->order_by());
    if (order == kOrder.end()) {
      return app::FieldError("order_by", "UNSUPPORTED",
                             "must be display_name, login_name, created_at desc or "
                             "last_login_at desc");
    }
    if (!request->role_id().empty() && FindBuiltinRole(request->role_id()) == nullptr &&
        !IsUuid(request->role_id())) {
      return app::FieldError("role_id", "UNKNOWN_ROLE", "is not a role id");
    }
    // The id filter: the caller's reach, narrowed by the unit and team filters (facts from org).
    std::optional<std::set<std::string>> allowed;
    if (!reach.all) allowed.emplace(reach.user_ids.begin(), reach.user_ids.end());
    const OrgCall org_call{caller.tenant_id, app::CallContext::From(*context).bearer_token};
    auto narrow = [&](const std::vector<std::string>& ids) {
      std::set<std::string> in(ids.begin(), ids.end());
      if (!allowed) {
        allowed = std::move(in);
        return;
      }
      std::set<std::string> both;
      for (const auto& id : *allowed) {
        if (in.contains(id)) both.insert(id);
      }
      allowed = std::move(both);
    };
    if (!request->org_unit_id().empty()) {
      SB_ASSIGN_OR_RETURN(
          std::vector<std::string> ids,
          deps_.org.UsersInOrgUnit(org_call, request->org_unit_id(), request->include_subtree()));
      narrow(ids);
    }
    if (!request->team_id().empty()) {
      SB_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                          deps_.org.UsersInTeam(org_call, request->team_id()));
      narrow(ids);
    }
    const std::string fingerprint =
        absl::StrCat(request->query(), "|", request->role_id(), "|", request->org_unit_id(), "|",
                     request->include_subtree(), "|", request->team_id(), "|", request->state(),
                     "|", request->order_by());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    std::vector<std::string> ids;
    if (allowed) ids.assign(allowed->begin(), allowed->end());
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      const std::string where =
          "u.tenant_id = $1 AND ($2 = '' OR u.first_name ILIKE '%' || $2 || '%' OR u.last_name "
          "ILIKE '%' || $2 || '%' OR u.display_name ILIKE '%' || $2 || '%' OR u.login_name ILIKE "
          "'%' || $2 || '%' OR u.email ILIKE '%' || $2 || '%') AND ($3 = '' OR EXISTS (SELECT 1 "
          "FROM identity.user_roles r WHERE r.user_id = u.id AND r.role_id = $3)) AND "
          "(($4 = 0 AND u.state IN (1, 2)) OR u.state = $4) AND ($5 = false OR u.id::text = "
          "ANY($6::text[]))";
      const std::string query = request->query().substr(0, 100);
      const int state = static_cast<int>(request->state());
      const int64_t total =
          tx.exec_params(absl::StrCat("SELECT count(*) FROM identity.users u WHERE ", where),
                         caller.tenant_id, query, request->role_id(), state, allowed.has_value(),
                         pg::PgArray(ids))[0][0]
              .as<int64_t>();
      for (const auto& row :
           tx.exec_params(absl::StrCat("SELECT ", kUserColumns, " FROM identity.users u WHERE ",
                                       where, " ORDER BY ", order->second, " LIMIT $7 OFFSET $8"),
                          caller.tenant_id, query, request->role_id(), state, allowed.has_value(),
                          pg::PgArray(ids), page.limit, page.offset)) {
        *response->add_users() = UserFromRow(row, options_.avatar_url_prefix).user;
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::UpdateUser(grpc::ServerContext* context,
                                         const v1::UpdateUserRequest* request, v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (request->update_mask().paths_size() == 0) {
      return app::FieldError("update_mask", "REQUIRED", "name the fields to change");
    }
    static const std::set<std::string> kSelfService = {"first_name", "last_name", "display_name",
                                                       "time_zone", "language"};
    static const std::set<std::string> kUpdatable = {
        "first_name",     "last_name", "display_name", "login_name",           "email",
        "email_verified", "time_zone", "language",     "must_change_password", "role_ids"};
    bool self_service_only = true;
    for (const std::string& path : request->update_mask().paths()) {
      if (!kUpdatable.contains(path)) {
        return app::FieldError("update_mask", "UNKNOWN_FIELD",
                               absl::StrCat("'", path, "' is not an updatable user field"));
      }
      if (!kSelfService.contains(path)) self_service_only = false;
    }
    const v1::User& in = request->user();
    bool roles_changed = false;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUserFor(tx, caller, in.id(),
                                                      /*for_update=*/true));
      const v1::User& cur = rec.user;
      const std::string& tenant_id = cur.tenant_id();
      const bool self = caller.kind == auth::Principal::Kind::kUser && cur.id() == caller.user_id;
      if (!(self && self_service_only)) {
        SB_RETURN_IF_ERROR(CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, cur.id()));
      }
      if (cur.state() == v1::USER_STATE_DELETED) {
        return absl::FailedPreconditionError("the user is deleted");
      }
      SB_ASSIGN_OR_RETURN(v1::Tenant tenant, LoadTenant(tx, tenant_id));
      v1::User next = cur;
      json changes = json::object();
      for (const std::string& path : request->update_mask().paths()) {
        if (path == "first_name") {
          SB_ASSIGN_OR_RETURN(std::string v,
                              app::NormalizeName(in.first_name(), "user.first_name", true));
          next.set_first_name(v);
        } else if (path == "last_name") {
          SB_ASSIGN_OR_RETURN(std::string v,
                              app::NormalizeName(in.last_name(), "user.last_name", true));
          next.set_last_name(v);
        } else if (path == "display_name") {
          SB_ASSIGN_OR_RETURN(std::string v,
                              app::NormalizeName(in.display_name(), "user.display_name", false));
          next.set_display_name(v.empty() ? next.first_name() + " " + next.last_name() : v);
        } else if (path == "login_name") {
          std::string v;
          if (!in.login_name().empty()) {
            SB_ASSIGN_OR_RETURN(v, app::NormalizeLoginName(in.login_name(), "user.login_name"));
          }
          next.set_login_name(v);
        } else if (path == "email") {
          std::string v;
          if (!in.email().empty()) {
            SB_ASSIGN_OR_RETURN(v, app::NormalizeEmail(in.email(), "user.email"));
          }
          next.set_email(v);
        } else if (path == "email_verified") {
          next.set_email_verified(in.email_verified());
        } else if (path == "time_zone") {
          SB_RETURN_IF_ERROR(app::ValidateTimeZone(in.time_zone(), "user.time_zone"));
          next.set_time_zone(in.time_zone());
        } else if (path == "language") {
          SB_RETURN_IF_ERROR(app::ValidateLanguage(in.language(), "user.language"));
          next.set_language(in.language());
        } else if (path == "must_change_password") {
          next.set_must_change_password(in.must_change_password());
        } else if (path == "role_ids") {
          if (self) {
            return app::WithReason(absl::PermissionDeniedError("you cannot change your own roles"),
                                   "SELF_ROLE_CHANGE");
          }
          next.clear_role_ids();
          for (const std::string& r : Dedup(in.role_ids())) next.add_role_ids(r);
        }
      }
      if (next.login_name().empty() && next.email().empty()) {
        return app::FieldError("user.login_name", "REQUIRED", "login_name or email is required");
      }
      if (next.email() != cur.email() &&
          std::find(request->update_mask().paths().begin(), request->update_mask().paths().end(),
                    "email_verified") == request->update_mask().paths().end()) {
        next.set_email_verified(false);
      }
      if (next.email().empty()) next.set_email_verified(false);
      SB_RETURN_IF_ERROR(CheckUnique(
          tx, tenant_id, next.login_name() == cur.login_name() ? "" : next.login_name(),
          absl::AsciiStrToLower(next.email()) == absl::AsciiStrToLower(cur.email()) ? ""
                                                                                    : next.email(),
          cur.id(), "user."));
      const std::vector<std::string> old_roles(cur.role_ids().begin(), cur.role_ids().end());
      const std::vector<std::string> new_roles(next.role_ids().begin(), next.role_ids().end());
      if (old_roles != new_roles) {
        SB_ASSIGN_OR_RETURN(auth::PermissionSet perms,
                            RolePermissions(tx, tenant_id, new_roles, "user.role_ids"));
        SB_RETURN_IF_ERROR(RequireCovers(caller, perms));
        const bool loses_admin =
            std::find(old_roles.begin(), old_roles.end(), kAdminRole) != old_roles.end() &&
            std::find(new_roles.begin(), new_roles.end(), kAdminRole) == new_roles.end();
        if (loses_admin && IsLastAdmin(tx, tenant_id, cur.id())) {
          return absl::FailedPreconditionError("this is the tenant's last admin");
        }
        tx.exec_params("DELETE FROM identity.user_roles WHERE user_id = $1", cur.id());
        for (const std::string& r : new_roles) {
          tx.exec_params(
              "INSERT INTO identity.user_roles (tenant_id, user_id, role_id) VALUES ($1, $2, $3)",
              tenant_id, cur.id(), r);
        }
        // Tokens carry permissions: the user's live tokens end, their refresh gets new ones.
        RevocationPublisher::Record(tx, auth::Revocation::Kind::kUser, cur.id(), deps_.clock.Now());
        roles_changed = true;
        AddChange(changes, "role_ids", old_roles, new_roles);
      }
      AddChange(changes, "first_name", cur.first_name(), next.first_name());
      AddChange(changes, "last_name", cur.last_name(), next.last_name());
      AddChange(changes, "display_name", cur.display_name(), next.display_name());
      AddChange(changes, "login_name", cur.login_name(), next.login_name());
      AddChange(changes, "email", cur.email(), next.email());
      AddChange(changes, "email_verified", cur.email_verified(), next.email_verified());
      AddChange(changes, "time_zone", cur.time_zone(), next.time_zone());
      AddChange(changes, "language", cur.language(), next.language());
      AddChange(changes, "must_change_password", cur.must_change_password(),
                next.must_change_password());
      tx.exec_params(
          "UPDATE identity.users SET first_name = $2, last_name = $3, display_name = $4, "
          "login_name = $5, email = $6, email_verified = $7, time_zone = $8, language = $9, "
          "must_change_password = $10, updated_at = to_timestamp($11) WHERE id = $1",
          cur.id(), next.first_name(), next.last_name(), next.display_name(),
          pg::NullIfEmpty(next.login_name()), pg::NullIfEmpty(next.email()), next.email_verified(),
          next.time_zone(), next.language(), next.must_change_password(),
          pg::ToEpoch(deps_.clock.Now()));
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = roles_changed ? "user.update_roles" : "user.update",
                  .target_type = "user",
                  .target_id = cur.id(),
                  .target_display_name = next.display_name(),
                  .changes = changes});
      SB_ASSIGN_OR_RETURN(UserRecord out, LoadUser(tx, tenant_id, cur.id()));
      *response = out.user;
      return absl::OkStatus();
    }));
    if (roles_changed) PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::DeleteUser(grpc::ServerContext* context,
                                         const v1::DeleteUserRequest* request,
                                         google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    std::string tenant_id;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUserFor(tx, caller, request->user_id(), true));
      tenant_id = rec.user.tenant_id();
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, rec.user.id()));
      if (rec.user.state() == v1::USER_STATE_DELETED) return absl::NotFoundError("user not found");
      if (rec.user.id() == caller.user_id) {
        return absl::FailedPreconditionError("you cannot delete yourself");
      }
      if (IsLastAdmin(tx, tenant_id, rec.user.id())) {
        return absl::FailedPreconditionError("this is the tenant's last admin");
      }
      tx.exec_params(
          "UPDATE identity.users SET state = 3, deleted_at = now(), updated_at = now(), "
          "totp_secret = NULL, totp_pending_secret = NULL WHERE id = $1",
          rec.user.id());
      tx.exec_params("DELETE FROM identity.sip_credentials WHERE user_id = $1", rec.user.id());
      tx.exec_params("DELETE FROM identity.pins WHERE user_id = $1", rec.user.id());
      RevokeApiKeysInCaches(tx, rec.user.id());
      tx.exec_params(
          "UPDATE identity.api_keys SET revoked_at = now() WHERE created_by_user_id = "
          "$1 AND revoked_at IS NULL",
          rec.user.id());
      RevokeUserSessions(tx, rec.user.id(), "user deleted");
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = "user.delete",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name()});
      return absl::OkStatus();
    }));
    PublishRevocations();
    // Org keeps no placement for a deleted user; if org is away now its ReleaseUser (idempotent)
    // is the operator's to repeat — the deletion itself stands.
    if (absl::Status s = deps_.org.Release({tenant_id, ""}, request->user_id()); !s.ok()) {
      spdlog::warn("identity: org did not release deleted user {}: {}", request->user_id(),
                   s.ToString());
    }
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::DisableUser(grpc::ServerContext* context,
                                          const v1::DisableUserRequest* request,
                                          v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(app::ValidateText(request->reason(), "reason", 500));
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUserFor(tx, caller, request->user_id(), true));
      const std::string& tenant_id = rec.user.tenant_id();
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, rec.user.id()));
      if (rec.user.state() != v1::USER_STATE_ACTIVE) {
        return absl::FailedPreconditionError("the user is not active");
      }
      if (rec.user.id() == caller.user_id) {
        return absl::FailedPreconditionError("you cannot disable yourself");
      }
      if (IsLastAdmin(tx, tenant_id, rec.user.id())) {
        return absl::FailedPreconditionError("this is the tenant's last admin");
      }
      tx.exec_params("UPDATE identity.users SET state = 2, updated_at = now() WHERE id = $1",
                     rec.user.id());
      RevokeUserSessions(tx, rec.user.id(), "user disabled");
      RevokeApiKeysInCaches(tx, rec.user.id());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = "user.disable",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name(),
                  .changes = {{"reason", request->reason()}}});
      SB_ASSIGN_OR_RETURN(UserRecord out, LoadUser(tx, tenant_id, rec.user.id()));
      *response = out.user;
      return absl::OkStatus();
    }));
    PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::EnableUser(grpc::ServerContext* context,
                                         const v1::EnableUserRequest* request, v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUserFor(tx, caller, request->user_id(), true));
      const std::string& tenant_id = rec.user.tenant_id();
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, rec.user.id()));
      if (rec.user.state() != v1::USER_STATE_DISABLED) {
        return absl::FailedPreconditionError("the user is not disabled");
      }
      // Login names freed by the user's absence may have been taken meanwhile.
      SB_RETURN_IF_ERROR(CheckUnique(tx, tenant_id, rec.user.login_name(), rec.user.email(),
                                     rec.user.id(), "user."));
      tx.exec_params("UPDATE identity.users SET state = 1, updated_at = now() WHERE id = $1",
                     rec.user.id());
      ClearLoginLocks(tx, tenant_id, rec.user);
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = "user.enable",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name()});
      SB_ASSIGN_OR_RETURN(UserRecord out, LoadUser(tx, tenant_id, rec.user.id()));
      *response = out.user;
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::CloneUser(grpc::ServerContext* context,
                                        const v1::CloneUserRequest* request, v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_ASSIGN_OR_RETURN(v1::TenantSecurity security,
                        deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<v1::TenantSecurity> {
                          return SecurityOf(tx, caller.tenant_id);
                        }));
    v1::User wanted;
    wanted.set_first_name(request->first_name());
    wanted.set_last_name(request->last_name());
    wanted.set_display_name(request->display_name());
    wanted.set_login_name(request->login_name());
    wanted.set_email(request->email());
    const std::string bearer = app::CallContext::From(*context).bearer_token;
    std::string id;
    std::string target_tenant;
    std::string source_id;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord source,
                          LoadUser(tx, caller.tenant_id, request->source_user_id()));
      const std::string& tenant_id = source.user.tenant_id();
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, source.user.id()));
      if (source.user.state() == v1::USER_STATE_DELETED) {
        return absl::FailedPreconditionError("the source user is deleted");
      }
      SB_ASSIGN_OR_RETURN(v1::Tenant tenant, LoadTenant(tx, tenant_id));
      wanted.set_time_zone(source.user.time_zone());
      wanted.set_language(source.user.language());
      SB_ASSIGN_OR_RETURN(NewUser n, NormalizeNewUser(wanted, tenant, ""));
      n.must_change_password = request->must_change_password();
      if (request->password().empty())
        return app::FieldError("password", "REQUIRED", "is required");
      SB_RETURN_IF_ERROR(CheckPassword(request->password(), security.password_min_length(),
                                       {n.login_name, n.email, n.first_name, n.last_name}));
      SB_RETURN_IF_ERROR(
          CheckPasswordConfirmation(request->password(), request->password_confirmation()));
      SB_RETURN_IF_ERROR(CheckUnique(tx, tenant_id, n.login_name, n.email, "", ""));
      const UserAccess access = LoadAccess(tx, tenant_id, source.user.id());
      SB_RETURN_IF_ERROR(RequireCovers(caller, access.effective));
      SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(request->password()));
      id = InsertUser(tx, tenant_id, n, hash, access.role_ids, pg::ToEpoch(deps_.clock.Now()));
      target_tenant = tenant_id;
      source_id = source.user.id();
      tx.exec_params(
          "INSERT INTO identity.permission_overrides (tenant_id, user_id, permission, effect, "
          "scope, set_by_user_id) SELECT tenant_id, $2, permission, effect, scope, $3 FROM "
          "identity.permission_overrides WHERE user_id = $1",
          source.user.id(), id, pg::NullIfEmpty(caller.user_id));
      WriteAudit(
          tx, AuditActor::Of(caller), ClientOf(*context),
          {.tenant_id = tenant_id,
           .action = "user.clone",
           .target_type = "user",
           .target_id = id,
           .target_display_name = n.display_name,
           .changes = {{"source_user_id", source.user.id()}, {"role_ids", access.role_ids}}});
      return absl::OkStatus();
    }));
    // Units, teams, reporting manager and agent-profile settings live in org; asked after the
    // commit (so that a retried transaction never leaves org holding a user that does not exist),
    // and undone here when org refuses.
    if (absl::Status cloned = deps_.org.Clone({target_tenant, bearer}, source_id, id);
        !cloned.ok()) {
      return UndoNewUser(target_tenant, id, cloned);
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord out, LoadUser(tx, target_tenant, id));
      *response = out.user;
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::ResetUserPassword(grpc::ServerContext* context,
                                                const v1::ResetUserPasswordRequest* request,
                                                v1::ResetUserPasswordResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUserFor(tx, caller, request->user_id(), true));
      const std::string& tenant_id = rec.user.tenant_id();
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, rec.user.id()));
      if (rec.user.state() == v1::USER_STATE_DELETED) {
        return absl::FailedPreconditionError("the user is deleted");
      }
      if (rec.user.id() == caller.user_id) {
        // Without the current password a stolen token could take the account over.
        return absl::FailedPreconditionError(
            "use ChangePassword (with the current password) for your own password");
      }
      std::string password = request->new_password();
      if (password.empty()) {
        password = GeneratePassword();
        response->set_generated_password(password);
      } else {
        const v1::TenantSecurity security = SecurityOf(tx, tenant_id);
        SB_RETURN_IF_ERROR(CheckPassword(
            password, security.password_min_length(),
            {rec.user.login_name(), rec.user.email(), rec.user.first_name(), rec.user.last_name()},
            "new_password"));
        SB_RETURN_IF_ERROR(CheckPasswordConfirmation(password, request->password_confirmation()));
      }
      SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(password));
      tx.exec_params(
          "UPDATE identity.users SET password_hash = $2, password_changed_at = now(), "
          "must_change_password = true, updated_at = now() WHERE id = $1",
          rec.user.id(), hash);
      RevokeUserSessions(tx, rec.user.id(), "password reset");
      ClearLoginLocks(tx, tenant_id, rec.user);
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = tenant_id,
                  .action = "user.reset_password",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name(),
                  .changes = {{"generated", request->new_password().empty()}}});
      return absl::OkStatus();
    }));
    PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::UploadUserAvatar(grpc::ServerContext* context,
                                               const v1::UploadUserAvatarRequest* request,
                                               v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    const std::string& type = request->content_type();
    if (type != "image/png" && type != "image/jpeg" && type != "image/webp") {
      return app::FieldError("content_type", "UNSUPPORTED_TYPE",
                             "must be image/png, image/jpeg or image/webp");
    }
    if (request->data().empty()) return app::FieldError("data", "REQUIRED", "is empty");
    if (request->data().size() > kMaxAvatarBytes) {
      return app::FieldError(
          "data", "TOO_LARGE",
          absl::StrCat("is ", request->data().size(), " bytes; avatars may be at most 1 MiB"));
    }
    if (!IsImage(type, request->data())) {
      return app::FieldError("data", "NOT_AN_IMAGE",
                             absl::StrCat("is not a ", type.substr(6), " image"));
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, request->user_id(), true));
      if (rec.user.id() != caller.user_id) {
        SB_RETURN_IF_ERROR(
            CheckManage(tx, caller, auth::perm::kUsersManage, rec.user.tenant_id(), rec.user.id()));
      }
      if (rec.user.state() == v1::USER_STATE_DELETED) {
        return absl::FailedPreconditionError("the user is deleted");
      }
      const std::string etag = Sha256Hex(request->data()).substr(0, 16);
      tx.exec_params(
          "UPDATE identity.users SET avatar_type = $2, avatar = $3, avatar_etag = $4, "
          "updated_at = now() WHERE id = $1",
          rec.user.id(), type, pqxx::binarystring(request->data()), etag);
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = rec.user.tenant_id(),
                  .action = "user.avatar_upload",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name(),
                  .changes = {{"bytes", request->data().size()}, {"content_type", type}}});
      SB_ASSIGN_OR_RETURN(UserRecord out, LoadUser(tx, rec.user.tenant_id(), rec.user.id()));
      *response = out.user;
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetUserAvatar(grpc::ServerContext* context,
                                            const v1::GetUserAvatarRequest* request,
                                            v1::GetUserAvatarResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, request->user_id()));
      absl::Status access = authorizer_.Check(caller, auth::perm::kUsersRead,
                                              UserResource(rec.user.tenant_id(), rec.user.id()));
      if (absl::IsPermissionDenied(access)) return absl::NotFoundError("user not found");
      SB_RETURN_IF_ERROR(access);
      pqxx::result r = tx.exec_params(
          "SELECT avatar_type, avatar, avatar_etag FROM identity.users WHERE id = $1 AND "
          "avatar IS NOT NULL",
          rec.user.id());
      if (r.empty()) return absl::NotFoundError("the user has no avatar");
      response->set_content_type(r[0][0].as<std::string>());
      response->set_data(pqxx::binarystring(r[0][1]).str());
      response->set_etag(r[0][2].as<std::string>());
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::DeleteUserAvatar(grpc::ServerContext* context,
                                               const v1::DeleteUserAvatarRequest* request,
                                               v1::User* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, request->user_id(), true));
      if (rec.user.id() != caller.user_id) {
        SB_RETURN_IF_ERROR(
            CheckManage(tx, caller, auth::perm::kUsersManage, rec.user.tenant_id(), rec.user.id()));
      }
      if (rec.user.avatar_url().empty()) return absl::NotFoundError("the user has no avatar");
      tx.exec_params(
          "UPDATE identity.users SET avatar_type = NULL, avatar = NULL, avatar_etag = NULL, "
          "updated_at = now() WHERE id = $1",
          rec.user.id());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = rec.user.tenant_id(),
                  .action = "user.avatar_delete",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name()});
      SB_ASSIGN_OR_RETURN(UserRecord out, LoadUser(tx, rec.user.tenant_id(), rec.user.id()));
      *response = out.user;
      return absl::OkStatus();
    });
  }());
}

}  // namespace sb::identity
