// Login (password, then TOTP or a recovery code), password change, refresh-token rotation,
// logout, signing keys, introspection and TOTP enrolment.
//
// Failed attempts must leave a trace (throttle counters, audit entries) even though the RPC
// fails, and Pool::Run rolls back whenever its function returns an error. So the transactions
// here return OK with the RPC's outcome kept aside, and the handler returns that outcome after
// the commit. Argon2 runs outside every transaction: it takes tens of milliseconds and must not
// hold a connection or a row lock while it does.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/identity/crypto/password_policy.h"
#include "services/identity/crypto/qr_code.h"
#include "services/identity/crypto/secrets.h"
#include "services/identity/crypto/totp.h"
#include "services/identity/identity_service.h"
#include "services/identity/throttle.h"
#include "spdlog/spdlog.h"

namespace sb::identity {
namespace {

// One text for unknown users, unknown tenants, ambiguous logins and wrong passwords.
constexpr char kInvalidLogin[] = "invalid login or password";
constexpr char kInvalidChallenge[] = "login challenge invalid or expired: log in again";
constexpr int kMaxChallengeAttempts = 5;
constexpr int kRecoveryCodeCount = 10;
constexpr char kTotpIssuer[] = "Switchboard";
constexpr absl::Duration kSigningKeysCacheTtl = absl::Seconds(300);
constexpr absl::Duration kIntrospectionCacheTtl = absl::Seconds(30);

absl::Status Throttled(absl::Duration delay) {
  const int64_t seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(delay, absl::Seconds(1))));
  return app::WithRetryDelay(absl::ResourceExhaustedError(absl::StrCat(
                                 "too many failed attempts; retry in ", seconds, " s")),
                             delay);
}

// The longest lock among `keys`, if any is locked.
std::optional<absl::Duration> LockedFor(pqxx::work& tx, const std::vector<std::string>& keys,
                                        absl::Time now) {
  std::optional<absl::Duration> longest;
  for (const std::string& key : keys) {
    std::optional<absl::Duration> d = Throttle::LockedFor(tx, key, now);
    if (d && (!longest || *d > *longest)) longest = d;
  }
  return longest;
}

std::string LoginKey(const std::string& tenant_slug, const std::string& login) {
  return absl::StrCat("login:", tenant_slug.empty() ? "*" : tenant_slug, ":", login);
}

std::string AddressKey(const ClientAddress& client) { return absl::StrCat("login-ip:", client.ip); }

// Failures of one account, however its login was typed (name or email, with or without the
// tenant): the account's 100-failure limit holds across all of them.
std::string UserKey(const std::string& user_id) { return absl::StrCat("login-user:", user_id); }

// Second-factor failures of a user. Unlike the account key a correct password does not clear
// it, so knowing the password does not buy unlimited guesses at the code.
std::string TotpKey(const std::string& user_id) { return absl::StrCat("totp:", user_id); }

// The account key of a known user, as Login builds it for "<slug> + <login name>".
std::string AccountKeyOf(pqxx::work& tx, const v1::User& user) {
  pqxx::result r =
      tx.exec_params("SELECT slug FROM identity.tenants WHERE id = $1", user.tenant_id());
  const std::string slug = r.empty() ? "" : r[0][0].as<std::string>();
  return LoginKey(
      slug, !user.login_name().empty() ? user.login_name() : absl::AsciiStrToLower(user.email()));
}

int TenantState(pqxx::work& tx, const std::string& tenant_id) {
  pqxx::result r = tx.exec_params("SELECT state FROM identity.tenants WHERE id = $1", tenant_id);
  return r.empty() ? v1::TENANT_STATE_UNSPECIFIED : r[0][0].as<int>();
}

// FailedPrecondition when the user or their tenant may not log in.
absl::Status LoginAllowed(pqxx::work& tx, const v1::User& user) {
  if (user.state() != v1::USER_STATE_ACTIVE) {
    return app::WithReason(absl::FailedPreconditionError("account disabled"), "ACCOUNT_DISABLED");
  }
  if (TenantState(tx, user.tenant_id()) != v1::TENANT_STATE_ACTIVE) {
    return app::WithReason(absl::FailedPreconditionError("tenant suspended"), "TENANT_SUSPENDED");
  }
  return absl::OkStatus();
}

AuditRecord UserAudit(const v1::User& user, std::string action, int result,
                      nlohmann::json changes = nlohmann::json::object()) {
  return AuditRecord{.tenant_id = user.tenant_id(),
                     .action = std::move(action),
                     .target_type = "user",
                     .target_id = user.id(),
                     .target_display_name = user.display_name(),
                     .result = result,
                     .changes = std::move(changes)};
}

AuditActor SelfActor(const v1::User& user) { return AuditActor{user.id(), "", ""}; }

// Tokens, API keys and service credentials are all principals; only users have passwords,
// sessions and authenticator apps.
absl::Status RequireUserPrincipal(const auth::Principal& p) {
  if (p.kind != auth::Principal::Kind::kUser || p.user_id.empty()) {
    return absl::PermissionDeniedError(
        "this needs a user's access token, not an API key or a service credential");
  }
  return absl::OkStatus();
}

// A user's TOTP columns. Secrets travel as hex so that no bytea conversion is involved.
struct TotpRow {
  std::string secret;  // raw; empty when TOTP is not enabled
  int64_t last_step = 0;
  std::string pending;  // raw; empty when no enrolment is pending
  absl::Time pending_expires_at = absl::InfinitePast();
};

// Secrets that do not open (sealed with another key) read as none: no code will match them.
std::string OpenSecret(const Sealer& sealer, const std::string& stored,
                       const std::string& user_id) {
  absl::StatusOr<std::string> opened = sealer.Open(stored);
  if (!opened.ok()) {
    spdlog::error("identity: the TOTP secret of user {} does not open: {}", user_id,
                  opened.status().ToString());
    return "";
  }
  return *std::move(opened);
}

std::optional<TotpRow> LoadTotp(pqxx::work& tx, const Sealer& sealer, const std::string& user_id,
                                bool for_update) {
  pqxx::result r =
      tx.exec_params(absl::StrCat("SELECT encode(totp_secret, 'hex'), totp_last_step, "
                                  "encode(totp_pending_secret, 'hex'), "
                                  "extract(epoch FROM totp_pending_expires_at)::float8 "
                                  "FROM identity.users WHERE id = $1",
                                  for_update ? " FOR UPDATE" : ""),
                     user_id);
  if (r.empty()) return std::nullopt;
  TotpRow row;
  if (!r[0][0].is_null()) {
    row.secret = OpenSecret(sealer, absl::HexStringToBytes(r[0][0].as<std::string>()), user_id);
  }
  row.last_step = r[0][1].as<int64_t>();
  if (!r[0][2].is_null()) {
    row.pending = OpenSecret(sealer, absl::HexStringToBytes(r[0][2].as<std::string>()), user_id);
  }
  row.pending_expires_at = pg::TimeFromEpoch(r[0][3]);
  return row;
}

enum class CodeCheck { kOk, kWrong, kReplayed };

// Checks a TOTP code (one step of drift either way) and, when it is good, records its step so
// that the same code (or an older one) never works again.
CodeCheck CheckTotpCode(pqxx::work& tx, const std::string& user_id, const std::string& secret,
                        std::string_view code, absl::Time now) {
  if (secret.empty()) return CodeCheck::kWrong;
  std::optional<int64_t> step = VerifyTotp(secret, code, now, 1);
  if (!step) return CodeCheck::kWrong;
  // Conditional, so that two requests racing with one code cannot both pass.
  pqxx::result r = tx.exec_params(
      "UPDATE identity.users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2 "
      "RETURNING 1",
      user_id, *step);
  return r.empty() ? CodeCheck::kReplayed : CodeCheck::kOk;
}

std::string RecoveryCodeHash(const std::string& user_id, std::string_view code) {
  return Sha256Hex(absl::StrCat(user_id, ":", NormalizeRecoveryCode(code)));
}

std::vector<std::string> ReplaceRecoveryCodes(pqxx::work& tx, const std::string& tenant_id,
                                              const std::string& user_id) {
  tx.exec_params("DELETE FROM identity.recovery_codes WHERE user_id = $1", user_id);
  std::vector<std::string> codes = GenerateRecoveryCodes(kRecoveryCodeCount);
  for (const std::string& code : codes) {
    tx.exec_params(
        "INSERT INTO identity.recovery_codes (tenant_id, user_id, code_hash) VALUES ($1, $2, $3)",
        tenant_id, user_id, RecoveryCodeHash(user_id, code));
  }
  return codes;
}

absl::Status CodeError(CodeCheck check) {
  return app::FieldError(
      "code", check == CodeCheck::kReplayed ? "CODE_REUSED" : "INVALID_CODE",
      check == CodeCheck::kReplayed ? "this code was already used" : "is not a valid current code");
}

void SetDuration(google::protobuf::Duration* d, absl::Duration v) {
  const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(v));
  d->set_seconds(ms / 1000);
  d->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

// Revokes one live session and records the revocation. False when it was not live.
bool RevokeSession(pqxx::work& tx, const std::string& session_id, const std::string& reason) {
  pqxx::result r = tx.exec_params(
      "UPDATE identity.sessions SET revoked_at = now(), revoke_reason = $2 "
      "WHERE id = $1 AND revoked_at IS NULL RETURNING id",
      session_id, reason);
  if (r.empty()) return false;
  RevocationPublisher::Record(tx, auth::Revocation::Kind::kSession, session_id);
  return true;
}

}  // namespace

bool IdentityService::TotpRequired(pqxx::work& tx, const v1::User& user) const {
  const v1::TenantSecurity security = SecurityOf(tx, user.tenant_id());
  if (security.require_totp()) return true;
  for (const std::string& role : user.role_ids()) {
    if (std::find(security.require_totp_role_ids().begin(), security.require_totp_role_ids().end(),
                  role) != security.require_totp_role_ids().end()) {
      return true;
    }
  }
  return false;
}

absl::Status IdentityService::FinishLogin(pqxx::work& tx, UserRecord& user, bool remember_me,
                                          bool second_factor_done, const ClientAddress& client,
                                          v1::LoginResponse* response) {
  response->Clear();
  const absl::Time now = deps_.clock.Now();
  const v1::User& u = user.user;
  if (user.totp_enabled && !second_factor_done) {
    const std::string challenge = absl::StrCat("sbc_", RandomUrlToken(32));
    tx.exec_params(
        "INSERT INTO identity.login_challenges (token_hash, tenant_id, user_id, remember_me, "
        "expires_at) VALUES ($1, $2, $3, $4, to_timestamp($5))",
        Sha256Hex(challenge), u.tenant_id(), u.id(), remember_me,
        pg::ToEpoch(now + options_.challenge_ttl));
    response->set_status(v1::LoginResponse::STATUS_TOTP_REQUIRED);
    response->set_challenge_token(challenge);
    WriteAudit(tx, SelfActor(u), client,
               UserAudit(u, "login.challenge", 1, {{"second_factor", "totp"}}));
    return absl::OkStatus();
  }
  bool restricted = false;
  v1::LoginResponse::Status status = v1::LoginResponse::STATUS_OK;
  if (u.must_change_password()) {
    restricted = true;
    status = v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED;
  } else if (!user.totp_enabled && TotpRequired(tx, u)) {
    restricted = true;
    status = v1::LoginResponse::STATUS_TOTP_ENROLLMENT_REQUIRED;
  }
  const std::string amr = second_factor_done ? "pwd+otp" : "pwd";
  SB_ASSIGN_OR_RETURN(IssuedSession session,
                      StartSession(tx, user, remember_me, restricted, amr, client));
  tx.exec_params("UPDATE identity.users SET last_login_at = to_timestamp($2) WHERE id = $1", u.id(),
                 pg::ToEpoch(now));
  pg::SetTimestamp(user.user.mutable_last_login_at(), now);
  response->set_status(status);
  *response->mutable_tokens() = session.tokens;
  *response->mutable_user() = user.user;
  WriteAudit(tx, SelfActor(u), client,
             UserAudit(u, "login.succeeded", 1,
                       {{"session_id", session.session_id},
                        {"amr", amr},
                        {"restricted", restricted},
                        {"remember_me", remember_me}}));
  return absl::OkStatus();
}

grpc::Status IdentityService::Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                                    v1::LoginResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    const std::string login = absl::AsciiStrToLower(absl::StripAsciiWhitespace(request->login()));
    const std::string& password = request->password();
    if (login.empty()) return app::FieldError("login", "REQUIRED", "is required");
    if (password.empty()) return app::FieldError("password", "REQUIRED", "is required");
    const std::string slug =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(request->tenant_slug()));
    const ClientAddress client = ClientOf(*context, &request->client());
    const std::string account_key = LoginKey(slug, login);
    const std::string address_key = AddressKey(client);
    const absl::Time now = deps_.clock.Now();

    // 1. Throttling, then the user: the one non-deleted user the login names (in the tenant of
    // the slug, or across tenants when there is none). Unknown tenant, no match and several
    // matches all look like an unknown user.
    struct Candidate {
      std::optional<absl::Duration> locked;
      std::optional<UserRecord> user;
      // Where a failure for an unknown login is audited: the slug's tenant, else the platform's.
      std::string audit_tenant_id;
    };
    absl::StatusOr<Candidate> candidate_or =
        deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<Candidate> {
          Candidate c;
          c.locked = LockedFor(tx, {account_key, address_key}, now);
          if (c.locked) return c;
          pqxx::result r = tx.exec_params(
              absl::StrCat("SELECT ", kUserColumns,
                           " FROM identity.users u JOIN identity.tenants t ON t.id = u.tenant_id "
                           "WHERE u.state <> 3 AND (u.login_name = $1 OR lower(u.email) = $1) "
                           "AND ($2 = '' OR t.slug = $2) LIMIT 2"),
              login, slug);
          if (r.size() == 1) c.user = UserFromRow(r[0], options_.avatar_url_prefix);
          // Looked up for unknown logins too (a key nobody has), so both paths do the same work.
          const std::optional<absl::Duration> user_lock =
              Throttle::LockedFor(tx, UserKey(c.user ? c.user->user.id() : "-"), now);
          if (c.user && user_lock) {
            c.locked = user_lock;
            return c;
          }
          // Run for known and unknown logins alike: both paths issue the same statements.
          pqxx::result t = tx.exec_params(
              "SELECT id FROM identity.tenants WHERE slug = $1 OR slug = $2 "
              "ORDER BY slug = $1 DESC LIMIT 1",
              slug, kPlatformTenantSlug);
          if (!t.empty()) c.audit_tenant_id = t[0][0].as<std::string>();
          return c;
        });
    if (!candidate_or.ok()) return candidate_or.status();
    Candidate candidate = *std::move(candidate_or);
    if (candidate.locked) return Throttled(*candidate.locked);

    // 2. Exactly one argon2 verification whatever happened above, so that the time taken does
    // not say whether the login exists.
    bool password_ok = false;
    std::string verified_hash;
    if (candidate.user && !candidate.user->password_hash.empty()) {
      verified_hash = candidate.user->password_hash;
      password_ok = hasher_.Verify(password, verified_hash);
    } else {
      hasher_.VerifyDummy(password);
    }
    std::optional<std::string> rehashed;
    if (password_ok && hasher_.NeedsRehash(verified_hash)) {
      absl::StatusOr<std::string> h = hasher_.Hash(password);
      if (h.ok()) rehashed = *std::move(h);  // a failed rehash only postpones it
    }

    // 3. The outcome, committed whatever it is.
    absl::Status outcome;
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      outcome = absl::OkStatus();
      response->Clear();
      if (!password_ok) {
        Throttle::RecordFailure(tx, account_key, AccountThrottle(), now);
        Throttle::RecordFailure(tx, address_key, AddressThrottle(), now);
        if (candidate.user) {
          Throttle::RecordFailure(tx, UserKey(candidate.user->user.id()), AccountThrottle(), now);
        }
        // Unknown logins are audited too (attempts on accounts that do not exist are worth
        // seeing), which also keeps the two failures' work, and so their timing, alike.
        if (candidate.user) {
          WriteAudit(
              tx, AuditActor{}, client,
              UserAudit(candidate.user->user, "login.failed", 3, {{"reason", "wrong password"}}));
        } else if (!candidate.audit_tenant_id.empty()) {
          WriteAudit(tx, AuditActor{}, client,
                     AuditRecord{.tenant_id = candidate.audit_tenant_id,
                                 .action = "login.failed",
                                 .target_type = "user",
                                 .result = 3,
                                 .changes = {{"reason", "unknown login"}}});
        }
        outcome = absl::UnauthenticatedError(kInvalidLogin);
        return absl::OkStatus();
      }
      absl::StatusOr<UserRecord> loaded =
          LoadUser(tx, candidate.user->user.tenant_id(), candidate.user->user.id(), true);
      if (!loaded.ok() || loaded->password_hash != verified_hash) {
        // Changed (or deleted) while the password was being checked: this password may no
        // longer be the one.
        outcome = absl::UnauthenticatedError(kInvalidLogin);
        return absl::OkStatus();
      }
      UserRecord& user = *loaded;
      Throttle::Clear(tx, account_key);
      Throttle::Clear(tx, UserKey(user.user.id()));
      if (absl::Status allowed = LoginAllowed(tx, user.user); !allowed.ok()) {
        WriteAudit(
            tx, SelfActor(user.user), client,
            UserAudit(user.user, "login.failed", 3, {{"reason", std::string(allowed.message())}}));
        outcome = allowed;
        return absl::OkStatus();
      }
      if (rehashed) {
        tx.exec_params("UPDATE identity.users SET password_hash = $2 WHERE id = $1", user.user.id(),
                       *rehashed);
      }
      if (!request->language().empty() && request->language() != user.user.language() &&
          app::ValidateLanguage(request->language(), "language").ok()) {
        tx.exec_params("UPDATE identity.users SET language = $2 WHERE id = $1", user.user.id(),
                       request->language());
        user.user.set_language(request->language());
      }
      return FinishLogin(tx, user, request->remember_me(), /*second_factor_done=*/false, client,
                         response);
    });
    if (!committed.ok()) return committed;
    return outcome;
  }());
}

grpc::Status IdentityService::CompleteLogin(grpc::ServerContext* context,
                                            const v1::CompleteLoginRequest* request,
                                            v1::LoginResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    if (request->challenge_token().empty()) {
      return app::FieldError("challenge_token", "REQUIRED", "is required");
    }
    const bool by_totp = request->code_case() == v1::CompleteLoginRequest::kTotpCode;
    const bool by_recovery = request->code_case() == v1::CompleteLoginRequest::kRecoveryCode;
    const std::string& code = by_totp ? request->totp_code() : request->recovery_code();
    if ((!by_totp && !by_recovery) || code.empty()) {
      return app::FieldError("totp_code", "REQUIRED", "send a totp_code or a recovery_code");
    }
    const ClientAddress client = ClientOf(*context, &request->client());
    const std::string challenge_hash = Sha256Hex(request->challenge_token());
    const absl::Time now = deps_.clock.Now();

    absl::Status outcome;
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      outcome = absl::OkStatus();
      response->Clear();
      pqxx::result c = tx.exec_params(
          "SELECT user_id, tenant_id, remember_me, extract(epoch FROM expires_at)::float8, "
          "attempts, used_at IS NOT NULL FROM identity.login_challenges WHERE token_hash = $1 "
          "FOR UPDATE",
          challenge_hash);
      if (c.empty() || c[0][5].as<bool>() || pg::TimeFromEpoch(c[0][3]) <= now ||
          c[0][4].as<int>() >= kMaxChallengeAttempts) {
        outcome = absl::UnauthenticatedError(kInvalidChallenge);
        return absl::OkStatus();
      }
      const std::string user_id = c[0][0].as<std::string>();
      const bool remember_me = c[0][2].as<bool>();
      absl::StatusOr<UserRecord> loaded = LoadUser(tx, c[0][1].as<std::string>(), user_id, true);
      if (!loaded.ok() || !loaded->totp_enabled) {
        outcome = absl::UnauthenticatedError(kInvalidChallenge);
        return absl::OkStatus();
      }
      UserRecord& user = *loaded;
      const std::string account_key = AccountKeyOf(tx, user.user);
      const std::string totp_key = TotpKey(user_id);
      if (std::optional<absl::Duration> locked = LockedFor(tx, {account_key, totp_key}, now)) {
        outcome = Throttled(*locked);
        return absl::OkStatus();
      }
      if (absl::Status allowed = LoginAllowed(tx, user.user); !allowed.ok()) {
        outcome = allowed;
        return absl::OkStatus();
      }
      std::string failure;
      if (by_totp) {
        std::optional<TotpRow> totp = LoadTotp(tx, sealer_, user_id, false);
        const CodeCheck check = CheckTotpCode(tx, user_id, totp ? totp->secret : "", code, now);
        if (check == CodeCheck::kWrong) failure = "invalid code";
        if (check == CodeCheck::kReplayed) failure = "code already used";
      } else {
        pqxx::result used = tx.exec_params(
            "UPDATE identity.recovery_codes SET used_at = to_timestamp($3) "
            "WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING 1",
            user_id, RecoveryCodeHash(user_id, code), pg::ToEpoch(now));
        if (used.empty()) failure = "invalid code";
      }
      if (!failure.empty()) {
        tx.exec_params(
            "UPDATE identity.login_challenges SET attempts = attempts + 1 WHERE token_hash = "
            "$1",
            challenge_hash);
        Throttle::RecordFailure(tx, account_key, AccountThrottle(), now);
        Throttle::RecordFailure(tx, totp_key, AccountThrottle(), now);
        WriteAudit(tx, AuditActor{}, client,
                   UserAudit(user.user, "login.failed", 3,
                             {{"reason", failure},
                              {"second_factor", by_totp ? "totp" : "recovery_code"}}));
        outcome = absl::UnauthenticatedError(failure);
        return absl::OkStatus();
      }
      tx.exec_params(
          "UPDATE identity.login_challenges SET used_at = to_timestamp($2) WHERE token_hash = "
          "$1",
          challenge_hash, pg::ToEpoch(now));
      Throttle::Clear(tx, totp_key);
      if (by_recovery) {
        const int left = tx.exec_params1(
                               "SELECT count(*) FROM identity.recovery_codes "
                               "WHERE user_id = $1 AND used_at IS NULL",
                               user_id)[0]
                             .as<int>();
        WriteAudit(
            tx, SelfActor(user.user), client,
            UserAudit(user.user, "totp.recovery_code_used", 1, {{"recovery_codes_left", left}}));
      }
      return FinishLogin(tx, user, remember_me, /*second_factor_done=*/true, client, response);
    });
    if (!committed.ok()) return committed;
    return outcome;
  }());
}

grpc::Status IdentityService::ChangePassword(grpc::ServerContext* context,
                                             const v1::ChangePasswordRequest* request,
                                             v1::ChangePasswordResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Restricted tokens are welcome: this is what they are for.
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireUserPrincipal(caller));
    if (request->current_password().empty()) {
      return app::FieldError("current_password", "REQUIRED", "is required");
    }
    const ClientAddress client = ClientOf(*context);
    const absl::Time now = deps_.clock.Now();

    struct Current {
      UserRecord user;
      std::string account_key;
      int min_length = 8;
    };
    absl::StatusOr<Current> current_or =
        deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<Current> {
          Current c;
          SB_ASSIGN_OR_RETURN(c.user, LoadUser(tx, caller.tenant_id, caller.user_id));
          SB_RETURN_IF_ERROR(LoginAllowed(tx, c.user.user));
          c.account_key = AccountKeyOf(tx, c.user.user);
          if (std::optional<absl::Duration> locked = LockedFor(tx, {c.account_key}, now)) {
            return Throttled(*locked);
          }
          c.min_length = SecurityOf(tx, caller.tenant_id).password_min_length();
          return c;
        });
    if (!current_or.ok()) return current_or.status();
    Current current = *std::move(current_or);
    const v1::User& u = current.user.user;
    SB_RETURN_IF_ERROR(CheckPassword(request->new_password(), current.min_length,
                                     {u.login_name(), u.email(), u.first_name(), u.last_name()},
                                     "new_password"));
    SB_RETURN_IF_ERROR(
        CheckPasswordConfirmation(request->new_password(), request->password_confirmation()));

    const std::string verified_hash = current.user.password_hash;
    bool ok = false;
    if (verified_hash.empty()) {
      hasher_.VerifyDummy(request->current_password());
    } else {
      ok = hasher_.Verify(request->current_password(), verified_hash);
    }
    if (!ok) {
      const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
        Throttle::RecordFailure(tx, current.account_key, AccountThrottle(), now);
        WriteAudit(tx, AuditActor::Of(caller), client,
                   UserAudit(u, "password.change", 3, {{"reason", "wrong current password"}}));
        return absl::OkStatus();
      });
      if (!committed.ok()) return committed;
      return absl::UnauthenticatedError("current password is wrong");
    }
    if (request->new_password() == request->current_password()) {
      return app::FieldError("new_password", "SAME_AS_OLD",
                             "must differ from the current password");
    }
    SB_ASSIGN_OR_RETURN(std::string new_hash, hasher_.Hash(request->new_password()));

    absl::StatusOr<IssuedSession> session_or =
        deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<IssuedSession> {
          SB_ASSIGN_OR_RETURN(UserRecord user,
                              LoadUser(tx, caller.tenant_id, caller.user_id, true));
          if (user.password_hash != verified_hash) {
            return absl::AbortedError("the password was changed meanwhile; try again");
          }
          // The new session keeps how the caller logged in.
          std::string amr = "pwd";
          bool remember_me = false;
          pqxx::result s = tx.exec_params(
              "SELECT amr, remember_me FROM identity.sessions WHERE id::text = $1 AND user_id = $2",
              caller.session_id, caller.user_id);
          if (!s.empty()) {
            amr = s[0][0].as<std::string>();
            remember_me = s[0][1].as<bool>();
          }
          tx.exec_params(
              "UPDATE identity.users SET password_hash = $2, must_change_password = false, "
              "password_changed_at = to_timestamp($3), updated_at = to_timestamp($3) "
              "WHERE id = $1",
              caller.user_id, new_hash, pg::ToEpoch(now));
          Throttle::Clear(tx, current.account_key);
          RevokeUserSessions(tx, caller.user_id, "password change");
          user.password_hash = new_hash;
          user.user.set_must_change_password(false);
          const bool restricted = !user.totp_enabled && TotpRequired(tx, user.user);
          SB_ASSIGN_OR_RETURN(IssuedSession issued,
                              StartSession(tx, user, remember_me, restricted, amr, client));
          WriteAudit(tx, AuditActor::Of(caller), client,
                     UserAudit(user.user, "password.change", 1,
                               {{"session_id", issued.session_id}, {"restricted", restricted}}));
          return issued;
        });
    if (!session_or.ok()) return session_or.status();
    IssuedSession session = *std::move(session_or);
    PublishRevocations();
    *response->mutable_tokens() = session.tokens;
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::RefreshToken(grpc::ServerContext* context,
                                           const v1::RefreshTokenRequest* request,
                                           v1::RefreshTokenResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    if (request->refresh_token().empty()) {
      return app::FieldError("refresh_token", "REQUIRED", "is required");
    }
    const ClientAddress client = ClientOf(*context, &request->client());
    const std::string token_hash = Sha256Hex(request->refresh_token());
    const absl::Time now = deps_.clock.Now();

    absl::Status outcome;
    bool revoked = false;
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      outcome = absl::OkStatus();
      revoked = false;
      response->Clear();
      pqxx::result r = tx.exec_params(
          "SELECT rt.session_id, rt.tenant_id, extract(epoch FROM rt.expires_at)::float8, "
          "rt.used_at IS NOT NULL, s.user_id, s.revoked_at IS NOT NULL, "
          "extract(epoch FROM s.expires_at)::float8, s.restricted, s.amr "
          "FROM identity.refresh_tokens rt JOIN identity.sessions s ON s.id = rt.session_id "
          "WHERE rt.token_hash = $1 FOR UPDATE",
          token_hash);
      if (r.empty()) {
        outcome = absl::UnauthenticatedError("invalid refresh token");
        return absl::OkStatus();
      }
      const std::string session_id = r[0][0].as<std::string>();
      const std::string tenant_id = r[0][1].as<std::string>();
      const std::string user_id = r[0][4].as<std::string>();
      const bool session_revoked = r[0][5].as<bool>();
      if (r[0][3].as<bool>()) {
        // A rotated-away token came back: it leaked (or a client raced itself). Either way the
        // family can no longer be trusted.
        if (!session_revoked) {
          revoked = RevokeSession(tx, session_id, "refresh token reuse");
          WriteAudit(tx, AuditActor{user_id, "", ""}, client,
                     AuditRecord{.tenant_id = tenant_id,
                                 .action = "session.reuse_detected",
                                 .target_type = "session",
                                 .target_id = session_id,
                                 .result = 3});
        }
        outcome = absl::UnauthenticatedError(
            "refresh token already used: the session has been revoked, log in again");
        return absl::OkStatus();
      }
      const absl::Time session_expires = pg::TimeFromEpoch(r[0][6]);
      if (session_revoked || pg::TimeFromEpoch(r[0][2]) <= now || session_expires <= now) {
        outcome = absl::UnauthenticatedError("refresh token expired or revoked");
        return absl::OkStatus();
      }
      absl::StatusOr<UserRecord> user = LoadUser(tx, tenant_id, user_id);
      if (!user.ok() || user->user.state() != v1::USER_STATE_ACTIVE ||
          TenantState(tx, tenant_id) != v1::TENANT_STATE_ACTIVE) {
        outcome = absl::UnauthenticatedError("the session's account is no longer active");
        return absl::OkStatus();
      }
      const bool restricted = r[0][7].as<bool>();
      const double now_s = pg::ToEpoch(now);
      tx.exec_params(
          "UPDATE identity.refresh_tokens SET used_at = to_timestamp($2) WHERE token_hash = $1",
          token_hash, now_s);
      const std::string refresh = absl::StrCat("sbr_", RandomUrlToken(32));
      tx.exec_params(
          "INSERT INTO identity.refresh_tokens (token_hash, tenant_id, session_id, issued_at, "
          "expires_at) VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($5))",
          Sha256Hex(refresh), tenant_id, session_id, now_s, pg::ToEpoch(session_expires));
      tx.exec_params("UPDATE identity.sessions SET last_used_at = to_timestamp($2) WHERE id = $1",
                     session_id, now_s);
      SB_ASSIGN_OR_RETURN(auto access, IssueAccessToken(tx, *user, session_id, restricted,
                                                        r[0][8].as<std::string>()));
      v1::TokenPair& t = *response->mutable_tokens();
      t.set_access_token(access.first);
      pg::SetTimestamp(t.mutable_access_token_expires_at(), access.second);
      t.set_refresh_token(refresh);
      pg::SetTimestamp(t.mutable_refresh_token_expires_at(), session_expires);
      t.set_token_type("Bearer");
      t.set_restricted(restricted);
      return absl::OkStatus();
    });
    if (!committed.ok()) return committed;
    if (revoked) PublishRevocations();
    return outcome;
  }());
}

grpc::Status IdentityService::Logout(grpc::ServerContext* context, const v1::LogoutRequest* request,
                                     google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));  // restricted is fine
    SB_RETURN_IF_ERROR(RequireUserPrincipal(caller));
    const ClientAddress client = ClientOf(*context);
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      nlohmann::json changes = nlohmann::json::object();
      std::string target = caller.session_id;
      if (request->all_sessions()) {
        RevokeUserSessions(tx, caller.user_id, "logout");
        changes["all_sessions"] = true;
        target.clear();
      } else {
        if (!request->refresh_token().empty()) {
          pqxx::result r = tx.exec_params(
              "SELECT s.id FROM identity.refresh_tokens rt JOIN identity.sessions s "
              "ON s.id = rt.session_id WHERE rt.token_hash = $1 AND s.user_id = $2 "
              "AND s.tenant_id = $3",
              Sha256Hex(request->refresh_token()), caller.user_id, caller.tenant_id);
          if (r.empty()) return absl::NotFoundError("session not found");
          target = r[0][0].as<std::string>();
        }
        if (target.empty()) return absl::NotFoundError("session not found");
        RevokeSession(tx, target, "logout");
      }
      WriteAudit(tx, AuditActor::Of(caller), client,
                 AuditRecord{.tenant_id = caller.tenant_id,
                             .action = "logout",
                             .target_type = target.empty() ? "user" : "session",
                             .target_id = target.empty() ? caller.user_id : target,
                             .result = 1,
                             .changes = std::move(changes)});
      return absl::OkStatus();
    });
    if (!committed.ok()) return committed;
    PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::GetSigningKeys(grpc::ServerContext* context,
                                             const v1::GetSigningKeysRequest* request,
                                             v1::GetSigningKeysResponse* response) {
  response->set_issuer(options_.issuer);
  response->set_audience(options_.audience);
  for (const PublicSigningKey& k : keys_->PublicKeys()) {
    v1::SigningKey* key = response->add_keys();
    key->set_key_id(k.key_id);
    key->set_algorithm(k.algorithm);
    key->set_public_key_pem(k.public_pem);
    key->set_state(static_cast<v1::SigningKey::State>(k.state));
    pg::SetTimestamp(key->mutable_created_at(), k.created_at);
    if (k.not_after != absl::InfiniteFuture()) {
      pg::SetTimestamp(key->mutable_not_after(), k.not_after);
    }
  }
  SetDuration(response->mutable_cache_ttl(), kSigningKeysCacheTtl);
  return grpc::Status::OK;
}

grpc::Status IdentityService::IntrospectToken(grpc::ServerContext* context,
                                              const v1::IntrospectTokenRequest* request,
                                              v1::IntrospectTokenResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(authenticator_->RequireService(*context));
    SB_ASSIGN_OR_RETURN(auth::Principal p, authenticator_->Authenticate(request->token()));
    v1::Principal& out = *response->mutable_principal();
    out.set_tenant_id(p.tenant_id);
    out.set_user_id(p.user_id);
    out.set_api_key_id(p.api_key_id);
    out.set_session_id(p.session_id);
    for (const std::string& role : p.role_ids) out.add_role_ids(role);
    for (const auth::Grant& g : p.permissions.Grants()) {
      v1::PermissionGrant* grant = out.add_permissions();
      grant->set_permission(g.permission);
      grant->set_scope(static_cast<switchboard::common::v1::Scope>(g.scope));
    }
    out.set_restricted(p.restricted);
    if (p.expires_at != absl::InfiniteFuture())
      pg::SetTimestamp(out.mutable_expires_at(), p.expires_at);
    if (IsUuid(p.user_id) && IsUuid(p.tenant_id)) {
      absl::StatusOr<std::string> name_or =
          deps_.pg.Run([&](pqxx::work& tx) -> absl::StatusOr<std::string> {
            pqxx::result r = tx.exec_params(
                "SELECT display_name FROM identity.users "
                "WHERE id = $1 AND tenant_id = $2",
                p.user_id, p.tenant_id);
            return r.empty() ? std::string() : r[0][0].as<std::string>();
          });
      if (!name_or.ok()) return name_or.status();
      std::string name = *std::move(name_or);
      out.set_display_name(name);
    }
    SetDuration(response->mutable_cache_ttl(),
                std::min(kIntrospectionCacheTtl, p.expires_at - deps_.clock.Now()));
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::EnrollTotp(grpc::ServerContext* context,
                                         const v1::EnrollTotpRequest* request,
                                         v1::TotpEnrollment* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Restricted tokens may enrol: that is how a tenant's 2FA requirement is met.
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireUserPrincipal(caller));
    const ClientAddress client = ClientOf(*context);
    const absl::Time now = deps_.clock.Now();
    const absl::Time expires = now + options_.totp_enrollment_ttl;
    const std::string secret = GenerateTotpSecret();
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, caller.tenant_id, caller.user_id, true));
      if (user.totp_enabled) {
        return app::WithReason(
            absl::FailedPreconditionError("TOTP is already enabled: reset it first"),
            "TOTP_ALREADY_ENABLED");
      }
      const std::string account =
          !user.user.login_name().empty() ? user.user.login_name() : user.user.email();
      const std::string uri = OtpauthUri(kTotpIssuer, account, secret);
      SB_ASSIGN_OR_RETURN(std::string png, QrPng(uri));
      SB_ASSIGN_OR_RETURN(std::string svg, QrSvg(uri));
      tx.exec_params(
          "UPDATE identity.users SET totp_pending_secret = decode($2, 'hex'), "
          "totp_pending_expires_at = to_timestamp($3) WHERE id = $1",
          caller.user_id, absl::BytesToHexString(sealer_.Seal(secret)), pg::ToEpoch(expires));
      WriteAudit(tx, AuditActor::Of(caller), client, UserAudit(user.user, "totp.enroll", 1));
      response->set_secret(Base32Encode(secret));
      response->set_otpauth_uri(uri);
      response->set_qr_png(std::move(png));
      response->set_qr_svg(std::move(svg));
      pg::SetTimestamp(response->mutable_expires_at(), expires);
      return absl::OkStatus();
    });
    if (!committed.ok()) return committed;
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::ActivateTotp(grpc::ServerContext* context,
                                           const v1::ActivateTotpRequest* request,
                                           v1::ActivateTotpResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));  // restricted is fine
    SB_RETURN_IF_ERROR(RequireUserPrincipal(caller));
    if (request->code().empty()) return app::FieldError("code", "REQUIRED", "is required");
    const ClientAddress client = ClientOf(*context);
    const absl::Time now = deps_.clock.Now();
    const std::string totp_key = TotpKey(caller.user_id);

    absl::Status outcome;
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      outcome = absl::OkStatus();
      response->Clear();
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, caller.tenant_id, caller.user_id, true));
      std::optional<TotpRow> totp = LoadTotp(tx, sealer_, caller.user_id, false);
      if (user.totp_enabled) {
        return absl::FailedPreconditionError("TOTP is already enabled");
      }
      if (!totp || totp->pending.empty() || totp->pending_expires_at <= now) {
        return app::WithReason(
            absl::FailedPreconditionError("no pending TOTP enrolment: call EnrollTotp first"),
            "NO_PENDING_ENROLMENT");
      }
      if (std::optional<absl::Duration> locked = LockedFor(tx, {totp_key}, now)) {
        return Throttled(*locked);
      }
      std::optional<int64_t> step = VerifyTotp(totp->pending, request->code(), now, 1);
      if (!step) {
        Throttle::RecordFailure(tx, totp_key, AccountThrottle(), now);
        outcome = CodeError(CodeCheck::kWrong);
        return absl::OkStatus();
      }
      tx.exec_params(
          "UPDATE identity.users SET totp_secret = totp_pending_secret, "
          "totp_pending_secret = NULL, totp_pending_expires_at = NULL, "
          "totp_last_step = GREATEST(totp_last_step, $2), updated_at = to_timestamp($3) "
          "WHERE id = $1",
          caller.user_id, *step, pg::ToEpoch(now));
      Throttle::Clear(tx, totp_key);
      for (const std::string& code : ReplaceRecoveryCodes(tx, caller.tenant_id, caller.user_id)) {
        response->add_recovery_codes(code);
      }
      WriteAudit(tx, AuditActor::Of(caller), client, UserAudit(user.user, "totp.enable", 1));
      return absl::OkStatus();
    });
    if (!committed.ok()) return committed;
    return outcome;
  }());
}

grpc::Status IdentityService::ResetTotp(grpc::ServerContext* context,
                                        const v1::ResetTotpRequest* request,
                                        google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    const ClientAddress client = ClientOf(*context);
    const absl::Time now = deps_.clock.Now();
    const bool self = request->user_id().empty() || request->user_id() == caller.user_id;
    const std::string user_id = self ? caller.user_id : request->user_id();
    if (self) {
      SB_RETURN_IF_ERROR(RequireUserPrincipal(caller));
      if (request->code().empty()) {
        return app::FieldError("code", "REQUIRED",
                               "a current code is required to reset your own TOTP");
      }
    } else {
      // Platform admins reach users of every tenant; everybody else only their own tenant's.
      SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
        SB_ASSIGN_OR_RETURN(UserRecord user, LoadUserFor(tx, caller, user_id));
        return CheckManage(tx, caller, auth::perm::kUsersManage, user.user.tenant_id(), user_id);
      }));
    }

    absl::Status outcome;
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      outcome = absl::OkStatus();
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUserFor(tx, caller, user_id, true));
      if (!user.totp_enabled) {
        return absl::FailedPreconditionError("TOTP is not enabled for this user");
      }
      if (self) {
        const std::string totp_key = TotpKey(user_id);
        if (std::optional<absl::Duration> locked = LockedFor(tx, {totp_key}, now)) {
          return Throttled(*locked);
        }
        std::optional<TotpRow> totp = LoadTotp(tx, sealer_, user_id, false);
        const CodeCheck check =
            CheckTotpCode(tx, user_id, totp ? totp->secret : "", request->code(), now);
        if (check != CodeCheck::kOk) {
          Throttle::RecordFailure(tx, totp_key, AccountThrottle(), now);
          outcome = CodeError(check);
          return absl::OkStatus();
        }
        Throttle::Clear(tx, totp_key);
      }
      tx.exec_params(
          "UPDATE identity.users SET totp_secret = NULL, totp_pending_secret = NULL, "
          "totp_pending_expires_at = NULL, updated_at = to_timestamp($2) WHERE id = $1",
          user_id, pg::ToEpoch(now));
      tx.exec_params("DELETE FROM identity.recovery_codes WHERE user_id = $1", user_id);
      WriteAudit(tx, AuditActor::Of(caller), client,
                 UserAudit(user.user, "totp.reset", 1, {{"by_self", self}}));
      return absl::OkStatus();
    });
    if (!committed.ok()) return committed;
    return outcome;
  }());
}

grpc::Status IdentityService::RegenerateRecoveryCodes(
    grpc::ServerContext* context, const v1::RegenerateRecoveryCodesRequest* request,
    v1::RegenerateRecoveryCodesResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    SB_RETURN_IF_ERROR(RequireUserPrincipal(caller));
    if (request->code().empty()) return app::FieldError("code", "REQUIRED", "is required");
    const ClientAddress client = ClientOf(*context);
    const absl::Time now = deps_.clock.Now();
    const std::string totp_key = TotpKey(caller.user_id);

    absl::Status outcome;
    const absl::Status committed = deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      outcome = absl::OkStatus();
      response->Clear();
      SB_ASSIGN_OR_RETURN(UserRecord user, LoadUser(tx, caller.tenant_id, caller.user_id, true));
      if (!user.totp_enabled) return absl::FailedPreconditionError("TOTP is not enabled");
      if (std::optional<absl::Duration> locked = LockedFor(tx, {totp_key}, now)) {
        return Throttled(*locked);
      }
      std::optional<TotpRow> totp = LoadTotp(tx, sealer_, caller.user_id, false);
      const CodeCheck check =
          CheckTotpCode(tx, caller.user_id, totp ? totp->secret : "", request->code(), now);
      if (check != CodeCheck::kOk) {
        Throttle::RecordFailure(tx, totp_key, AccountThrottle(), now);
        outcome = CodeError(check);
        return absl::OkStatus();
      }
      Throttle::Clear(tx, totp_key);
      for (const std::string& code : ReplaceRecoveryCodes(tx, caller.tenant_id, caller.user_id)) {
        response->add_recovery_codes(code);
      }
      WriteAudit(tx, AuditActor::Of(caller), client,
                 UserAudit(user.user, "totp.recovery_codes", 1));
      return absl::OkStatus();
    });
    if (!committed.ok()) return committed;
    return outcome;
  }());
}

}  // namespace sb::identity
