// API keys, outbound-call PINs, SIP digest credentials and the audit log.

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/identity/crypto/secrets.h"
#include "services/identity/identity_service.h"
#include "services/identity/throttle.h"

namespace sb::identity {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr size_t kApiKeyPrefixLength = 8;
constexpr int kGeneratedPinDigits = 6;

// PINs come from a small space (10^4 at worst), so they get one failure fewer than a login
// before the first lock: five tries, and the sixth waits. Delays and the hard lock are login's.
ThrottlePolicy PinThrottle() {
  ThrottlePolicy policy = AccountThrottle();
  policy.free_failures = 4;
  return policy;
}

std::string PinThrottleKey(const std::string& tenant_id, const std::string& user_id) {
  return absl::StrCat("pin:", tenant_id, ":", user_id);
}

// Platform admins address objects of every tenant; everybody else only their own ("" is the
// "any tenant" of LoadUser's and this file's queries).
std::string LookupTenant(const auth::Principal& caller) {
  return caller.is_platform_admin() ? "" : caller.tenant_id;
}

std::string Text(const pqxx::field& f) { return f.is_null() ? "" : f.as<std::string>(); }

// --- API keys ---

constexpr char kApiKeyColumns[] =
    "id, tenant_id, name, description, key_prefix, permissions, created_by_user_id, "
    "extract(epoch FROM created_at)::float8, extract(epoch FROM last_used_at)::float8, "
    "extract(epoch FROM expires_at)::float8, extract(epoch FROM revoked_at)::float8";

v1::ApiKey ApiKeyFromRow(const pqxx::row& row, absl::Time now) {
  v1::ApiKey key;
  key.set_id(row[0].as<std::string>());
  key.set_tenant_id(row[1].as<std::string>());
  key.set_name(row[2].as<std::string>());
  key.set_description(row[3].as<std::string>());
  key.set_key_prefix(row[4].as<std::string>());
  for (const auth::Grant& g : auth::PermissionSet::FromTexts(pg::TextArray(row[5])).Grants()) {
    v1::PermissionGrant* p = key.add_permissions();
    p->set_permission(g.permission);
    p->set_scope(static_cast<cv1::Scope>(g.scope));
  }
  key.set_created_by_user_id(row[6].as<std::string>());
  pg::SetTimestamp(key.mutable_created_at(), row[7]);
  pg::SetTimestamp(key.mutable_last_used_at(), row[8]);
  pg::SetTimestamp(key.mutable_expires_at(), row[9]);
  pg::SetTimestamp(key.mutable_revoked_at(), row[10]);
  if (!row[10].is_null()) {
    key.set_state(v1::ApiKey::STATE_REVOKED);
  } else if (!row[9].is_null() && pg::TimeFromEpoch(row[9]) <= now) {
    key.set_state(v1::ApiKey::STATE_EXPIRED);
  } else {
    key.set_state(v1::ApiKey::STATE_ACTIVE);
  }
  return key;
}

absl::Status RequireApiKeyAdmin(const auth::Principal& caller) {
  if (auth::Authorizer::HoldsTenantWide(caller, auth::perm::kApiKeysManage)) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("permission ", auth::perm::kApiKeysManage, " is required tenant-wide"));
}

// --- PINs ---

constexpr char kPinColumns[] =
    "id, tenant_id, user_id, label, created_by_user_id, extract(epoch FROM created_at)::float8, "
    "extract(epoch FROM last_used_at)::float8, extract(epoch FROM expires_at)::float8";

v1::Pin PinFromRow(const pqxx::row& row) {
  v1::Pin pin;
  pin.set_id(row[0].as<std::string>());
  pin.set_tenant_id(row[1].as<std::string>());
  pin.set_user_id(row[2].as<std::string>());
  pin.set_label(row[3].as<std::string>());
  pin.set_created_by_user_id(Text(row[4]));
  pg::SetTimestamp(pin.mutable_created_at(), row[5]);
  pg::SetTimestamp(pin.mutable_last_used_at(), row[6]);
  pg::SetTimestamp(pin.mutable_expires_at(), row[7]);
  return pin;
}

// 4..12 ASCII digits.
absl::Status ValidatePinFormat(std::string_view pin) {
  for (char c : pin) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return app::FieldError("pin", "NOT_DIGITS", "must contain only the digits 0-9");
    }
  }
  if (pin.size() < 4 || pin.size() > 12) {
    return app::FieldError("pin", "BAD_LENGTH", "must be 4 to 12 digits");
  }
  return absl::OkStatus();
}

// One digit repeated ("0000") or a run up or down, wrapping past 9 ("1234", "7890", "9876").
bool IsWeakPin(std::string_view pin) {
  bool same = true;
  bool up = true;
  bool down = true;
  for (size_t i = 1; i < pin.size(); ++i) {
    const int prev = pin[i - 1] - '0';
    const int d = pin[i] - '0';
    same = same && d == prev;
    up = up && d == (prev + 1) % 10;
    down = down && d == (prev + 9) % 10;
  }
  return same || up || down;
}

absl::Status ValidatePin(std::string_view pin) {
  SB_RETURN_IF_ERROR(ValidatePinFormat(pin));
  if (IsWeakPin(pin)) {
    return app::FieldError("pin", "WEAK_PIN",
                           "is too easy to guess (one digit repeated or a run like 1234)");
  }
  return absl::OkStatus();
}

// Own PINs need pins.manage with any scope (agents do not have it: admins hand PINs out).
absl::Status RequireOwnPinRights(const auth::Principal& caller) {
  if (caller.permissions.HasAny(auth::perm::kPinsManage)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("permission ", auth::perm::kPinsManage, " is required"));
}

// --- SIP credentials ---

absl::Status ValidateSipUsername(std::string_view username) {
  if (username.empty()) return app::FieldError("username", "REQUIRED", "is required");
  if (username.size() > 64) {
    return app::FieldError("username", "TOO_LONG", "must be at most 64 characters");
  }
  for (char c : username) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return app::FieldError("username", "INVALID_CHARACTERS",
                             "may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

constexpr char kSipColumns[] =
    "c.user_id, c.tenant_id, c.username, t.sip_domain, extract(epoch FROM c.created_at)::float8, "
    "extract(epoch FROM c.rotated_at)::float8";

v1::SipCredential SipCredentialFromRow(const pqxx::row& row) {
  v1::SipCredential c;
  c.set_user_id(row[0].as<std::string>());
  c.set_tenant_id(row[1].as<std::string>());
  c.set_username(row[2].as<std::string>());
  c.set_realm(row[3].as<std::string>());
  pg::SetTimestamp(c.mutable_created_at(), row[4]);
  pg::SetTimestamp(c.mutable_rotated_at(), row[5]);
  return c;
}

// --- Audit ---

constexpr char kAuditColumns[] =
    "id, tenant_id, extract(epoch FROM occurred_at)::float8, actor_user_id, actor_api_key_id, "
    "actor_display_name, action, target_type, target_id, target_display_name, result, "
    "client_ip, user_agent, changes::text";

v1::AuditEntry AuditEntryFromRow(const pqxx::row& row) {
  v1::AuditEntry e;
  e.set_id(row[0].as<std::string>());
  e.set_tenant_id(row[1].as<std::string>());
  pg::SetTimestamp(e.mutable_occurred_at(), row[2]);
  e.set_actor_user_id(Text(row[3]));
  e.set_actor_api_key_id(Text(row[4]));
  e.set_actor_display_name(row[5].as<std::string>());
  e.set_action(row[6].as<std::string>());
  e.set_target_type(row[7].as<std::string>());
  e.set_target_id(row[8].as<std::string>());
  e.set_target_display_name(row[9].as<std::string>());
  e.set_result(static_cast<v1::AuditResult>(row[10].as<int>()));
  e.mutable_client()->set_ip_address(row[11].as<std::string>());
  e.mutable_client()->set_user_agent(row[12].as<std::string>());
  pg::ParseJsonInto(row[13].as<std::string>(), e.mutable_changes());
  return e;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// API keys

grpc::Status IdentityService::CreateApiKey(grpc::ServerContext* context,
                                           const v1::CreateApiKeyRequest* request,
                                           v1::CreateApiKeyResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(RequireApiKeyAdmin(caller));
    if (caller.user_id.empty() || caller.kind != auth::Principal::Kind::kUser) {
      // A key that could mint keys would outlive its own revocation or expiry.
      return absl::PermissionDeniedError("API keys are created by users, not by API keys");
    }
    const v1::ApiKey& in = request->api_key();
    SB_ASSIGN_OR_RETURN(std::string name, app::NormalizeName(in.name(), "api_key.name", true));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "api_key.description", 500));
    if (in.permissions().empty()) {
      return app::FieldError("api_key.permissions", "REQUIRED",
                             "must name at least one permission");
    }
    auth::PermissionSet permissions;
    for (int i = 0; i < in.permissions_size(); ++i) {
      const auth::Grant grant{in.permissions(i).permission(),
                              static_cast<auth::Scope>(in.permissions(i).scope())};
      SB_RETURN_IF_ERROR(auth::ValidateGrant(grant, absl::StrCat("api_key.permissions[", i, "]")));
      permissions.Add(grant);
    }
    SB_RETURN_IF_ERROR(RequireCovers(caller, permissions));
    const absl::Time now = deps_.clock.Now();
    std::optional<double> expires_at;
    if (in.has_expires_at()) {
      const absl::Time t = pg::FromProto(in.expires_at());
      if (t <= now)
        return app::FieldError("api_key.expires_at", "IN_PAST", "must be in the future");
      expires_at = pg::ToEpoch(t);
    }
    const std::string secret = absl::StrCat(auth::kApiKeyPrefix, RandomUrlToken(32));
    const std::string prefix = secret.substr(0, kApiKeyPrefixLength);
    const std::vector<std::string> texts = permissions.Texts();
    const ClientAddress client = ClientOf(*context);
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      const std::string id = NewUuid();
      pqxx::result r = tx.exec_params(
          absl::StrCat("INSERT INTO identity.api_keys (tenant_id, id, name, description, "
                       "key_prefix, key_hash, permissions, created_by_user_id, created_at, "
                       "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, "
                       "to_timestamp($9), to_timestamp($10)) RETURNING ",
                       kApiKeyColumns),
          caller.tenant_id, id, name, in.description(), prefix, Sha256Hex(secret),
          pg::PgArray(texts), caller.user_id, pg::ToEpoch(now), expires_at);
      AuditRecord audit{.tenant_id = caller.tenant_id,
                        .action = "api_key.create",
                        .target_type = "api_key",
                        .target_id = id,
                        .target_display_name = name};
      audit.changes["name"] = name;
      audit.changes["permissions"] = texts;
      if (expires_at)
        audit.changes["expires_at"] = absl::FormatTime(pg::FromProto(in.expires_at()));
      WriteAudit(tx, AuditActor::Of(caller), client, audit);
      *response->mutable_api_key() = ApiKeyFromRow(r[0], now);
      response->set_secret(secret);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::ListApiKeys(grpc::ServerContext* context,
                                          const v1::ListApiKeysRequest* request,
                                          v1::ListApiKeysResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(RequireApiKeyAdmin(caller));
    const std::string fingerprint =
        absl::StrCat("api_keys|", caller.tenant_id, "|", request->include_inactive());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    const absl::Time now = deps_.clock.Now();
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      constexpr char kWhere[] =
          " FROM identity.api_keys WHERE tenant_id = $1 AND ($2 OR (revoked_at IS NULL AND "
          "(expires_at IS NULL OR expires_at > to_timestamp($3))))";
      const int64_t total =
          tx.exec_params1(absl::StrCat("SELECT count(*)", kWhere), caller.tenant_id,
                          request->include_inactive(), pg::ToEpoch(now))[0]
              .as<int64_t>();
      response->clear_api_keys();
      for (const auto& row :
           tx.exec_params(absl::StrCat("SELECT ", kApiKeyColumns, kWhere,
                                       " ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"),
                          caller.tenant_id, request->include_inactive(), pg::ToEpoch(now),
                          page.limit, page.offset)) {
        *response->add_api_keys() = ApiKeyFromRow(row, now);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetApiKey(grpc::ServerContext* context,
                                        const v1::GetApiKeyRequest* request, v1::ApiKey* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(RequireApiKeyAdmin(caller));
    if (!IsUuid(request->api_key_id())) return absl::NotFoundError("API key not found");
    const absl::Time now = deps_.clock.Now();
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result r =
          tx.exec_params(absl::StrCat("SELECT ", kApiKeyColumns,
                                      " FROM identity.api_keys WHERE tenant_id = $1 AND id = $2"),
                         caller.tenant_id, request->api_key_id());
      if (r.empty()) return absl::NotFoundError("API key not found");
      *response = ApiKeyFromRow(r[0], now);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::RevokeApiKey(grpc::ServerContext* context,
                                           const v1::RevokeApiKeyRequest* request,
                                           v1::ApiKey* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(RequireApiKeyAdmin(caller));
    if (!IsUuid(request->api_key_id())) return absl::NotFoundError("API key not found");
    const absl::Time now = deps_.clock.Now();
    const ClientAddress client = ClientOf(*context);
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result r = tx.exec_params(
          absl::StrCat("SELECT ", kApiKeyColumns,
                       " FROM identity.api_keys WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
          caller.tenant_id, request->api_key_id());
      if (r.empty()) return absl::NotFoundError("API key not found");
      const v1::ApiKey key = ApiKeyFromRow(r[0], now);
      if (key.state() != v1::ApiKey::STATE_ACTIVE) {
        return absl::FailedPreconditionError(
            absl::StrCat("the API key is already ",
                         key.state() == v1::ApiKey::STATE_REVOKED ? "revoked" : "expired"));
      }
      r = tx.exec_params(absl::StrCat("UPDATE identity.api_keys SET revoked_at = to_timestamp($3) "
                                      "WHERE tenant_id = $1 AND id = $2 RETURNING ",
                                      kApiKeyColumns),
                         caller.tenant_id, key.id(), pg::ToEpoch(now));
      RevocationPublisher::Record(tx, auth::Revocation::Kind::kApiKey, key.id());
      WriteAudit(tx, AuditActor::Of(caller), client,
                 AuditRecord{.tenant_id = caller.tenant_id,
                             .action = "api_key.revoke",
                             .target_type = "api_key",
                             .target_id = key.id(),
                             .target_display_name = key.name()});
      *response = ApiKeyFromRow(r[0], now);
      return absl::OkStatus();
    }));
    PublishRevocations();
    return absl::OkStatus();
  }());
}

// ---------------------------------------------------------------------------------------------
// PINs

grpc::Status IdentityService::CreatePin(grpc::ServerContext* context,
                                        const v1::CreatePinRequest* request,
                                        v1::CreatePinResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (request->user_id().empty()) return app::FieldError("user_id", "REQUIRED", "is required");
    if (!request->pin().empty()) SB_RETURN_IF_ERROR(ValidatePin(request->pin()));
    SB_RETURN_IF_ERROR(app::ValidateText(request->label(), "label", 100));
    const absl::Time now = deps_.clock.Now();
    std::optional<double> expires_at;
    if (request->has_expires_at()) {
      const absl::Time t = pg::FromProto(request->expires_at());
      if (t <= now) return app::FieldError("expires_at", "IN_PAST", "must be in the future");
      expires_at = pg::ToEpoch(t);
    }
    const ClientAddress client = ClientOf(*context);
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      // The row lock serialises PIN changes of one user, so two equal PINs cannot race in.
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, LookupTenant(caller), request->user_id(),
                                                    /*for_update=*/true));
      const std::string& tenant_id = user.user.tenant_id();
      const std::string& user_id = user.user.id();
      SB_RETURN_IF_ERROR(
          user_id == caller.user_id
              ? RequireOwnPinRights(caller)
              : CheckManage(tx, caller, auth::perm::kPinsManage, tenant_id, user_id));
      if (user.user.state() == v1::USER_STATE_DELETED) {
        return absl::FailedPreconditionError("the user is deleted");
      }
      std::vector<std::string> hashes;
      for (const auto& row : tx.exec_params(
               "SELECT pin_hash FROM identity.pins WHERE tenant_id = $1 AND user_id = $2 AND "
               "(expires_at IS NULL OR expires_at > to_timestamp($3))",
               tenant_id, user_id, pg::ToEpoch(now))) {
        hashes.push_back(row[0].as<std::string>());
      }
      auto held = [&](const std::string& pin) {
        for (const std::string& h : hashes) {
          if (hasher_.Verify(pin, h)) return true;
        }
        return false;
      };
      std::string pin = request->pin();
      std::string generated;
      if (pin.empty()) {
        for (int attempt = 0; attempt < 20 && generated.empty(); ++attempt) {
          std::string candidate = RandomDigits(kGeneratedPinDigits);
          if (!IsWeakPin(candidate) && !held(candidate)) generated = std::move(candidate);
        }
        if (generated.empty()) {
          return absl::ResourceExhaustedError("could not generate a PIN the user does not have");
        }
        pin = generated;
      } else if (held(pin)) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "pin", "DUPLICATE_PIN",
                               "the user already has this PIN");
      }
      SB_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(pin));
      const std::string id = NewUuid();
      pqxx::result r = tx.exec_params(
          absl::StrCat("INSERT INTO identity.pins (tenant_id, id, user_id, pin_hash, label, "
                       "created_by_user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, "
                       "$6, to_timestamp($7), to_timestamp($8)) RETURNING ",
                       kPinColumns),
          tenant_id, id, user_id, hash, request->label(), pg::NullIfEmpty(caller.user_id),
          pg::ToEpoch(now), expires_at);
      AuditRecord audit{.tenant_id = tenant_id,
                        .action = "pin.create",
                        .target_type = "pin",
                        .target_id = id,
                        .target_display_name = user.user.display_name()};
      audit.changes["user_id"] = user_id;
      audit.changes["generated"] = !generated.empty();
      if (!request->label().empty()) audit.changes["label"] = request->label();
      WriteAudit(tx, AuditActor::Of(caller), client, audit);
      *response->mutable_pin() = PinFromRow(r[0]);
      response->set_generated_pin(generated);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::ListPins(grpc::ServerContext* context,
                                       const v1::ListPinsRequest* request,
                                       v1::ListPinsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    const std::string requested = request->user_id().empty() ? caller.user_id : request->user_id();
    if (requested.empty()) return app::FieldError("user_id", "REQUIRED", "is required");
    const std::string fingerprint = absl::StrCat("pins|", absl::AsciiStrToLower(requested));
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, LookupTenant(caller), requested));
      const std::string& tenant_id = user.user.tenant_id();
      const std::string& user_id = user.user.id();
      // Everybody may see their own PINs (without the PINs themselves, which nobody sees).
      if (user_id != caller.user_id) {
        SB_RETURN_IF_ERROR(CheckOnUser(caller, auth::perm::kPinsManage, tenant_id, user_id));
      }
      const int64_t total =
          tx.exec_params1(
                "SELECT count(*) FROM identity.pins WHERE tenant_id = $1 AND user_id = $2",
                tenant_id, user_id)[0]
              .as<int64_t>();
      response->clear_pins();
      for (const auto& row :
           tx.exec_params(absl::StrCat("SELECT ", kPinColumns,
                                       " FROM identity.pins WHERE tenant_id = $1 AND user_id = $2 "
                                       "ORDER BY created_at, id LIMIT $3 OFFSET $4"),
                          tenant_id, user_id, page.limit, page.offset)) {
        *response->add_pins() = PinFromRow(row);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::DeletePin(grpc::ServerContext* context,
                                        const v1::DeletePinRequest* request,
                                        google::protobuf::Empty* response) {
  (void)response;
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (!IsUuid(request->pin_id())) return absl::NotFoundError("PIN not found");
    const ClientAddress client = ClientOf(*context);
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result r = tx.exec_params(
          "SELECT p.tenant_id, p.user_id, p.id, p.label, u.display_name FROM identity.pins p "
          "JOIN identity.users u ON u.id = p.user_id AND u.tenant_id = p.tenant_id "
          "WHERE p.id = $1 AND ($2 = '' OR p.tenant_id::text = $2) FOR UPDATE OF p",
          request->pin_id(), LookupTenant(caller));
      if (r.empty()) return absl::NotFoundError("PIN not found");
      const std::string tenant_id = r[0][0].as<std::string>();
      const std::string user_id = r[0][1].as<std::string>();
      const std::string pin_id = r[0][2].as<std::string>();
      // Deleting is managing: the same rights as creating.
      absl::Status rights =
          user_id == caller.user_id
              ? RequireOwnPinRights(caller)
              : CheckManage(tx, caller, auth::perm::kPinsManage, tenant_id, user_id);
      if (absl::IsNotFound(rights)) return absl::NotFoundError("PIN not found");
      SB_RETURN_IF_ERROR(rights);
      tx.exec_params("DELETE FROM identity.pins WHERE tenant_id = $1 AND id = $2", tenant_id,
                     pin_id);
      AuditRecord audit{.tenant_id = tenant_id,
                        .action = "pin.delete",
                        .target_type = "pin",
                        .target_id = pin_id,
                        .target_display_name = r[0][4].as<std::string>()};
      audit.changes["user_id"] = user_id;
      WriteAudit(tx, AuditActor::Of(caller), client, audit);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::VerifyPin(grpc::ServerContext* context,
                                        const v1::VerifyPinRequest* request,
                                        v1::VerifyPinResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(authenticator_->RequireService(*context));
    SB_ASSIGN_OR_RETURN(TenantId tenant, TenantId::Parse(request->tenant_id(), "tenant_id"));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    SB_RETURN_IF_ERROR(app::ValidateText(request->call_id(), "call_id", 128));
    const std::string& pin = request->pin();
    // A malformed PIN is a wrong PIN (it counts as a failure), not a bad request.
    const bool well_formed = ValidatePinFormat(pin).ok();
    const std::string key = PinThrottleKey(tenant.value(), user.value());
    const absl::Time now = deps_.clock.Now();
    const ClientAddress client = ClientOf(*context);

    struct Outcome {
      bool valid = false;
      std::string pin_id;
      std::optional<absl::Duration> locked_for;
    };
    // Failed checks must commit their audit entry and throttle count, so fn returns OK with the
    // outcome and the status is decided after the commit.
    SB_ASSIGN_OR_RETURN(
        Outcome outcome, deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<Outcome> {
          Outcome out;
          pqxx::result u = tx.exec_params(
              "SELECT state, display_name FROM identity.users WHERE tenant_id = $1 AND id = $2",
              tenant.value(), user.value());
          if (u.empty()) {
            hasher_.VerifyDummy(pin);
            return out;
          }
          AuditRecord audit{.tenant_id = tenant.value(),
                            .action = "pin.verify",
                            .target_type = "pin",
                            .target_display_name = u[0][1].as<std::string>(),
                            .result = v1::AUDIT_RESULT_FAILED};
          audit.changes["user_id"] = user.value();
          audit.changes["call_id"] = request->call_id();
          const AuditActor actor{.user_id = user.value()};
          if ((out.locked_for = Throttle::LockedFor(tx, key, now))) {
            audit.result = v1::AUDIT_RESULT_DENIED;
            audit.changes["result"] = "throttled";
            WriteAudit(tx, actor, client, audit);
            return out;
          }
          if (u[0][0].as<int>() != v1::USER_STATE_ACTIVE) {
            audit.changes["result"] = "user_not_active";
            WriteAudit(tx, actor, client, audit);
            return out;
          }
          pqxx::result pins = tx.exec_params(
              "SELECT id, pin_hash FROM identity.pins WHERE tenant_id = $1 AND user_id = $2 AND "
              "(expires_at IS NULL OR expires_at > to_timestamp($3)) ORDER BY created_at, id",
              tenant.value(), user.value(), pg::ToEpoch(now));
          if (well_formed) {
            for (const auto& row : pins) {
              if (hasher_.Verify(pin, row[1].as<std::string>())) {
                out.valid = true;
                out.pin_id = row[0].as<std::string>();
                break;
              }
            }
          }
          // Every failure takes about as long as a wrong PIN, whatever the user has.
          if (!out.valid && (pins.empty() || !well_formed)) hasher_.VerifyDummy(pin);
          if (out.valid) {
            tx.exec_params(
                "UPDATE identity.pins SET last_used_at = to_timestamp($3) "
                "WHERE tenant_id = $1 AND id = $2",
                tenant.value(), out.pin_id, pg::ToEpoch(now));
            Throttle::Clear(tx, key);
            audit.result = v1::AUDIT_RESULT_SUCCESS;
            audit.target_id = out.pin_id;
            audit.changes["result"] = "valid";
          } else {
            Throttle::RecordFailure(tx, key, PinThrottle(), now);
            audit.changes["result"] = "invalid";
          }
          WriteAudit(tx, actor, client, audit);
          return out;
        }));
    if (outcome.locked_for) {
      return app::WithRetryDelay(
          absl::ResourceExhaustedError("too many wrong PINs for this user: try again later"),
          *outcome.locked_for);
    }
    response->set_valid(outcome.valid);
    response->set_pin_id(outcome.pin_id);
    return absl::OkStatus();
  }());
}

// ---------------------------------------------------------------------------------------------
// SIP credentials

grpc::Status IdentityService::ResetSipCredential(grpc::ServerContext* context,
                                                 const v1::ResetSipCredentialRequest* request,
                                                 v1::ResetSipCredentialResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (request->user_id().empty()) return app::FieldError("user_id", "REQUIRED", "is required");
    if (!request->username().empty()) SB_RETURN_IF_ERROR(ValidateSipUsername(request->username()));
    const absl::Time now = deps_.clock.Now();
    const ClientAddress client = ClientOf(*context);
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, LookupTenant(caller), request->user_id(),
                                                    /*for_update=*/true));
      const std::string& tenant_id = user.user.tenant_id();
      const std::string& user_id = user.user.id();
      SB_RETURN_IF_ERROR(CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, user_id));
      if (user.user.state() == v1::USER_STATE_DELETED) {
        return absl::FailedPreconditionError("the user is deleted");
      }
      pqxx::result current = tx.exec_params(
          "SELECT username FROM identity.sip_credentials WHERE tenant_id = $1 AND user_id = $2",
          tenant_id, user_id);
      const std::string old_username = current.empty() ? "" : current[0][0].as<std::string>();
      const std::string username = request->username().empty() ? old_username : request->username();
      if (username.empty()) {
        return app::FieldError("username", "REQUIRED",
                               "is required: the user has no SIP credential yet");
      }
      if (!tx.exec_params("SELECT 1 FROM identity.sip_credentials WHERE tenant_id = $1 AND "
                          "username = $2 AND user_id <> $3",
                          tenant_id, username, user_id)
               .empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "username", "TAKEN",
                               "is used by another user of the tenant");
      }
      const std::string realm =
          tx.exec_params1("SELECT sip_domain FROM identity.tenants WHERE id = $1", tenant_id)[0]
              .as<std::string>();
      const std::string password = RandomUrlToken(18);
      tx.exec_params(
          "INSERT INTO identity.sip_credentials (tenant_id, user_id, username, ha1_md5, "
          "ha1_sha256, created_at, rotated_at) VALUES ($1, $2, $3, $4, $5, to_timestamp($6), "
          "to_timestamp($6)) ON CONFLICT (user_id) DO UPDATE SET username = EXCLUDED.username, "
          "ha1_md5 = EXCLUDED.ha1_md5, ha1_sha256 = EXCLUDED.ha1_sha256, "
          "rotated_at = EXCLUDED.rotated_at",
          tenant_id, user_id, username, DigestHa1Md5(username, realm, password),
          DigestHa1Sha256(username, realm, password), pg::ToEpoch(now));
      AuditRecord audit{.tenant_id = tenant_id,
                        .action = "sip_credential.reset",
                        .target_type = "sip_credential",
                        .target_id = user_id,
                        .target_display_name = user.user.display_name()};
      AddChange(audit.changes, "username", old_username, username);
      WriteAudit(tx, AuditActor::Of(caller), client, audit);
      pqxx::result r = tx.exec_params(
          absl::StrCat("SELECT ", kSipColumns,
                       " FROM identity.sip_credentials c JOIN identity.tenants t ON t.id = "
                       "c.tenant_id WHERE c.tenant_id = $1 AND c.user_id = $2"),
          tenant_id, user_id);
      *response->mutable_credential() = SipCredentialFromRow(r[0]);
      response->set_password(password);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetSipCredential(grpc::ServerContext* context,
                                               const v1::GetSipCredentialRequest* request,
                                               v1::SipCredential* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, LookupTenant(caller), request->user_id()));
      const std::string& tenant_id = user.user.tenant_id();
      SB_RETURN_IF_ERROR(CheckOnUser(caller, auth::perm::kUsersRead, tenant_id, user.user.id()));
      pqxx::result r = tx.exec_params(
          absl::StrCat("SELECT ", kSipColumns,
                       " FROM identity.sip_credentials c JOIN identity.tenants t ON t.id = "
                       "c.tenant_id WHERE c.tenant_id = $1 AND c.user_id = $2"),
          tenant_id, user.user.id());
      if (r.empty()) return absl::NotFoundError("the user has no SIP credential");
      *response = SipCredentialFromRow(r[0]);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::DeleteSipCredential(grpc::ServerContext* context,
                                                  const v1::DeleteSipCredentialRequest* request,
                                                  google::protobuf::Empty* response) {
  (void)response;
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    const ClientAddress client = ClientOf(*context);
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, LookupTenant(caller), request->user_id()));
      const std::string& tenant_id = user.user.tenant_id();
      const std::string& user_id = user.user.id();
      SB_RETURN_IF_ERROR(CheckManage(tx, caller, auth::perm::kUsersManage, tenant_id, user_id));
      pqxx::result r = tx.exec_params(
          "DELETE FROM identity.sip_credentials WHERE tenant_id = $1 AND user_id = $2 "
          "RETURNING username",
          tenant_id, user_id);
      if (r.empty()) return absl::NotFoundError("the user has no SIP credential");
      AuditRecord audit{.tenant_id = tenant_id,
                        .action = "sip_credential.delete",
                        .target_type = "sip_credential",
                        .target_id = user_id,
                        .target_display_name = user.user.display_name()};
      AddChange(audit.changes, "username", r[0][0].as<std::string>(), nullptr);
      WriteAudit(tx, AuditActor::Of(caller), client, audit);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetSipDigest(grpc::ServerContext* context,
                                           const v1::GetSipDigestRequest* request,
                                           v1::GetSipDigestResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(authenticator_->RequireService(*context));
    if (request->realm().empty() || request->username().empty()) {
      return absl::NotFoundError("no SIP credential for this realm and username");
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      // Tenant (by its SIP domain), credential and user are all matched on tenant_id.
      pqxx::result r = tx.exec_params(
          "SELECT t.id, c.user_id, c.ha1_md5, c.ha1_sha256 FROM identity.tenants t "
          "JOIN identity.sip_credentials c ON c.tenant_id = t.id "
          "JOIN identity.users u ON u.id = c.user_id AND u.tenant_id = t.id "
          "WHERE lower(t.sip_domain) = lower($1) AND c.username = $2 AND t.state = $3 AND "
          "u.state = $4",
          request->realm(), request->username(), static_cast<int>(v1::TENANT_STATE_ACTIVE),
          static_cast<int>(v1::USER_STATE_ACTIVE));
      if (r.empty()) return absl::NotFoundError("no SIP credential for this realm and username");
      response->set_tenant_id(r[0][0].as<std::string>());
      response->set_user_id(r[0][1].as<std::string>());
      response->set_ha1_md5(r[0][2].as<std::string>());
      response->set_ha1_sha256(r[0][3].as<std::string>());
      return absl::OkStatus();
    });
  }());
}

// ---------------------------------------------------------------------------------------------
// Audit

grpc::Status IdentityService::ListAuditEntries(grpc::ServerContext* context,
                                               const v1::ListAuditEntriesRequest* request,
                                               v1::ListAuditEntriesResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer_.ReachFor(caller, auth::perm::kAuditRead));
    SB_ASSIGN_OR_RETURN(std::string tenant_id, TenantFor(caller, request->tenant_id()));
    // Another tenant's log is only for those whose reach is platform-wide (TenantFor already
    // refused everybody else).
    if (tenant_id != caller.tenant_id && !reach.all) return absl::NotFoundError("tenant not found");

    // The WHERE clause and its parameters, built from the filters that are set.
    std::vector<std::string> params;
    auto param = [&](std::string value) {
      params.push_back(std::move(value));
      return absl::StrCat("$", params.size());
    };
    std::string where = absl::StrCat("tenant_id = ", param(tenant_id), "::uuid");
    std::string actor;
    if (!request->actor_user_id().empty()) {
      SB_ASSIGN_OR_RETURN(UserId id, UserId::Parse(request->actor_user_id(), "actor_user_id"));
      actor = id.value();
      absl::StrAppend(&where, " AND actor_user_id = ", param(actor), "::uuid");
    }
    if (!request->target_type().empty()) {
      absl::StrAppend(&where, " AND target_type = ", param(request->target_type()));
    }
    if (!request->target_id().empty()) {
      absl::StrAppend(&where, " AND target_id = ", param(request->target_id()));
    }
    const std::string& action = request->action();
    if (!action.empty()) {
      if (absl::EndsWith(action, ".")) {
        // left() rather than LIKE: action names contain '_', a LIKE wildcard.
        const std::string p = param(action);
        absl::StrAppend(&where, " AND left(action, length(", p, ")) = ", p);
      } else {
        absl::StrAppend(&where, " AND action = ", param(action));
      }
    }
    std::string start;
    std::string end;
    if (request->has_time_range()) {
      const cv1::TimeRange& range = request->time_range();
      if (range.has_start_time() && range.has_end_time() &&
          pg::FromProto(range.end_time()) <= pg::FromProto(range.start_time())) {
        return app::FieldError("time_range", "INVALID_RANGE", "must end after it starts");
      }
      if (range.has_start_time()) {
        start = absl::StrFormat("%.6f", pg::ToEpoch(pg::FromProto(range.start_time())));
        absl::StrAppend(&where, " AND occurred_at >= to_timestamp(", param(start), "::float8)");
      }
      if (range.has_end_time()) {
        end = absl::StrFormat("%.6f", pg::ToEpoch(pg::FromProto(range.end_time())));
        absl::StrAppend(&where, " AND occurred_at < to_timestamp(", param(end), "::float8)");
      }
    }
    if (request->result() != v1::AUDIT_RESULT_UNSPECIFIED) {
      absl::StrAppend(&where,
                      " AND result = ", param(absl::StrCat(static_cast<int>(request->result()))),
                      "::int");
    }
    if (!reach.all) {
      // Within a unit subtree: entries whose actor or target user is reached. PIN entries
      // name their user in changes.user_id; SIP credential entries have the user as target.
      const std::string ids = param(
          pg::PgArray(std::vector<std::string>(reach.user_ids.begin(), reach.user_ids.end())));
      absl::StrAppend(&where, " AND (actor_user_id::text = ANY(", ids,
                      "::text[]) OR (target_type IN ('user', 'sip_credential') AND target_id = "
                      "ANY(",
                      ids, "::text[])) OR (target_type = 'pin' AND changes->>'user_id' = ANY(", ids,
                      "::text[])))");
    }
    const std::string fingerprint = absl::StrCat(
        "audit|", tenant_id, "|", actor, "|", request->target_type(), "|", request->target_id(),
        "|", action, "|", start, "|", end, "|", static_cast<int>(request->result()));
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));

    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      const int64_t total =
          tx.exec_params1(absl::StrCat("SELECT count(*) FROM identity.audit_log WHERE ", where),
                          pqxx::prepare::make_dynamic_params(params))[0]
              .as<int64_t>();
      std::vector<std::string> list_params = params;
      list_params.push_back(absl::StrCat(page.limit));
      list_params.push_back(absl::StrCat(page.offset));
      response->clear_entries();
      for (const auto& row : tx.exec_params(
               absl::StrCat("SELECT ", kAuditColumns, " FROM identity.audit_log WHERE ", where,
                            " ORDER BY occurred_at DESC, id DESC LIMIT $", params.size() + 1,
                            "::int OFFSET $", params.size() + 2, "::bigint"),
               pqxx::prepare::make_dynamic_params(list_params))) {
        *response->add_entries() = AuditEntryFromRow(row);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

}  // namespace sb::identity
