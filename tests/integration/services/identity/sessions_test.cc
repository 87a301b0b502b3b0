// Login, second factor, password change, refresh rotation, logout, signing keys and
// introspection through IdentityService's gRPC API, against real PostgreSQL and Redis.
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/app/rpc_errors.h"
#include "libs/auth/jwt.h"
#include "libs/auth/signing_key.h"
#include "libs/common/ids.h"
#include "libs/testing/eventually.h"
#include "services/identity/crypto/sealer.h"
#include "services/identity/crypto/totp.h"
#include "switchboard/common/v1/errors.pb.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

// What GetCurrentUser (any RPC that needs a credential) says about a token.
grpc::StatusCode AuthCode(IdentityFixture& f, const std::string& token) {
  v1::GetCurrentUserResponse resp;
  return f.stub().GetCurrentUser(f.Ctx(token).get(), {}, &resp).error_code();
}

bool Revoked(IdentityFixture& f, const std::string& token) {
  return AuthCode(f, token) == grpc::UNAUTHENTICATED;
}

grpc::Status LoginRaw(IdentityFixture& f, const v1::LoginRequest& req, v1::LoginResponse* resp,
                      grpc::ClientContext* ctx = nullptr) {
  std::unique_ptr<grpc::ClientContext> own;
  if (ctx == nullptr) {
    own = f.Ctx();
    ctx = own.get();
  }
  return f.stub().Login(ctx, req, resp);
}

v1::LoginRequest LoginReq(const std::string& slug, const std::string& login,
                          const std::string& password = kPassword) {
  v1::LoginRequest req;
  req.set_tenant_slug(slug);
  req.set_login(login);
  req.set_password(password);
  return req;
}

std::string CreateUserWithEmail(IdentityFixture& f, const std::string& token,
                                const std::string& login, const std::string& email,
                                const std::vector<std::string>& roles = {"agent"}) {
  v1::CreateUserRequest req;
  req.mutable_user()->set_first_name("Eve");
  req.mutable_user()->set_last_name("Example");
  req.mutable_user()->set_login_name(login);
  req.mutable_user()->set_email(email);
  for (const auto& r : roles) req.mutable_user()->add_role_ids(r);
  req.set_password(kPassword);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().CreateUser(f.Ctx(token).get(), req, &user));
  return user.id();
}

void Sql(IdentityFixture& f, const std::string& sql, const std::string& param = "") {
  absl::Status s = f.pg().Run([&](pqxx::work& tx) {
    if (param.empty()) {
      tx.exec(sql);
    } else {
      tx.exec_params(sql, param);
    }
    return absl::OkStatus();
  });
  INFO(s.ToString());
  REQUIRE(s.ok());
}

std::string SqlText(IdentityFixture& f, const std::string& sql) {
  absl::StatusOr<std::string> out = f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::string> {
    pqxx::result r = tx.exec(sql);
    return r.empty() || r[0][0].is_null() ? std::string() : r[0][0].as<std::string>();
  });
  REQUIRE(out.ok());
  return *out;
}

std::optional<cv1::ErrorDetails> DetailsOf(const grpc::ClientContext& ctx) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find(app::kErrorDetailsTrailer);
  if (it == md.end()) return std::nullopt;
  cv1::ErrorDetails details;
  if (!details.ParseFromString(std::string(it->second.data(), it->second.size()))) {
    return std::nullopt;
  }
  return details;
}

std::optional<absl::Duration> RetryDelayOf(const grpc::ClientContext& ctx) {
  std::optional<cv1::ErrorDetails> details = DetailsOf(ctx);
  if (!details) return std::nullopt;
  for (const auto& d : details->details()) {
    if (d.has_retry_info()) {
      return absl::Seconds(d.retry_info().retry_delay().seconds()) +
             absl::Nanoseconds(d.retry_info().retry_delay().nanos());
    }
  }
  return std::nullopt;
}

absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

grpc::Status Refresh(IdentityFixture& f, const std::string& refresh_token, v1::TokenPair* out) {
  v1::RefreshTokenRequest req;
  req.set_refresh_token(refresh_token);
  v1::RefreshTokenResponse resp;
  grpc::Status s = f.stub().RefreshToken(f.Ctx().get(), req, &resp);
  if (out != nullptr) *out = resp.tokens();
  return s;
}

// TOTP codes are computed from the real clock on both sides; a step boundary passing between
// the test's computation and the server's check would shift every code by one step. The checks
// below take well under a second, so starting them 8+ seconds before a boundary is enough.
void AwayFromStepEdge() {
  const int64_t into = absl::ToUnixSeconds(absl::Now()) % kTotpPeriodSeconds;
  if (into >= kTotpPeriodSeconds - 8) {
    std::this_thread::sleep_for(std::chrono::seconds(kTotpPeriodSeconds - into + 1));
  }
}

struct Totp {
  std::string secret;  // raw
  std::vector<std::string> recovery_codes;
};

v1::TotpEnrollment Enroll(IdentityFixture& f, const std::string& token) {
  v1::TotpEnrollment enrollment;
  SB_REQUIRE_GRPC_OK(f.stub().EnrollTotp(f.Ctx(token).get(), {}, &enrollment));
  return enrollment;
}

Totp EnrollAndActivate(IdentityFixture& f, const std::string& token) {
  v1::TotpEnrollment enrollment = Enroll(f, token);
  absl::StatusOr<std::string> secret = Base32Decode(enrollment.secret());
  REQUIRE(secret.ok());
  AwayFromStepEdge();
  v1::ActivateTotpRequest req;
  req.set_code(TotpCode(*secret, absl::Now()));
  v1::ActivateTotpResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().ActivateTotp(f.Ctx(token).get(), req, &resp));
  return Totp{*secret, {resp.recovery_codes().begin(), resp.recovery_codes().end()}};
}

grpc::Status Complete(IdentityFixture& f, const std::string& challenge, const std::string& code,
                      bool recovery, v1::LoginResponse* resp) {
  v1::CompleteLoginRequest req;
  req.set_challenge_token(challenge);
  if (recovery) {
    req.set_recovery_code(code);
  } else {
    req.set_totp_code(code);
  }
  return f.stub().CompleteLogin(f.Ctx().get(), req, resp);
}

// A new login up to its TOTP challenge.
std::string Challenge(IdentityFixture& f, const std::string& slug, const std::string& login) {
  v1::LoginResponse resp = f.Login(slug, login);
  REQUIRE(resp.status() == v1::LoginResponse::STATUS_TOTP_REQUIRED);
  REQUIRE_FALSE(resp.challenge_token().empty());
  CHECK(resp.tokens().access_token().empty());
  return resp.challenge_token();
}

std::string B64(std::string_view s) {
  return absl::WebSafeBase64Escape(absl::string_view(s.data(), s.size()));
}

}  // namespace

TEST_CASE("Login by username, by email in another case, and without tenant slug", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo globex = f.CreateTenant("globex");
  const std::string anna =
      CreateUserWithEmail(f, acme.admin_token, "anna", "Anna.Smith@Example.com");
  f.CreateUser(acme.admin_token, "sam", {"agent"});
  f.CreateUser(globex.admin_token, "sam", {"agent"});

  SECTION("by username, saving the chosen language") {
    v1::LoginRequest req = LoginReq("acme", "anna");
    req.set_language("de");
    v1::LoginResponse resp;
    SB_REQUIRE_GRPC_OK(LoginRaw(f, req, &resp));
    CHECK(resp.status() == v1::LoginResponse::STATUS_OK);
    CHECK(resp.user().id() == anna);
    CHECK(resp.user().language() == "de");
    CHECK(resp.user().has_last_login_at());
    CHECK(resp.tokens().token_type() == "Bearer");
    CHECK_FALSE(resp.tokens().restricted());
    CHECK(AuthCode(f, resp.tokens().access_token()) == grpc::OK);
  }
  SECTION("by email, case-insensitively") {
    v1::LoginResponse resp = f.Login("acme", "ANNA.smith@example.COM");
    CHECK(resp.status() == v1::LoginResponse::STATUS_OK);
    CHECK(resp.user().id() == anna);
  }
  SECTION("without tenant slug when the login is unique") {
    v1::LoginResponse resp = f.Login("", "anna");
    CHECK(resp.status() == v1::LoginResponse::STATUS_OK);
    CHECK(resp.user().tenant_id() == acme.id);
  }
  SECTION("without tenant slug when two tenants have the login: like an unknown user") {
    v1::LoginResponse resp;
    grpc::Status s = LoginRaw(f, LoginReq("", "sam"), &resp);
    CHECK(s.error_code() == grpc::UNAUTHENTICATED);
    CHECK(s.error_message() == "invalid login or password");
    CHECK(resp.tokens().access_token().empty());
    // With the slug each one logs in.
    CHECK(f.Login("globex", "sam").user().tenant_id() == globex.id);
  }
  SECTION("empty fields are InvalidArgument") {
    v1::LoginResponse resp;
    grpc::Status s = LoginRaw(f, LoginReq("acme", "", kPassword), &resp);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK(absl::StartsWith(s.error_message(), "login"));
    s = LoginRaw(f, LoginReq("acme", "anna", ""), &resp);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK(absl::StartsWith(s.error_message(), "password"));
  }
}

TEST_CASE("Unknown user, unknown tenant and wrong password look the same", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string anna = f.CreateUser(acme.admin_token, "anna", {"agent"});

  v1::LoginResponse r1, r2, r3;
  grpc::Status wrong = LoginRaw(f, LoginReq("acme", "anna", "Not-The-Password-1"), &r1);
  grpc::Status unknown = LoginRaw(f, LoginReq("acme", "nobody"), &r2);
  grpc::Status no_tenant = LoginRaw(f, LoginReq("no-such-tenant", "anna"), &r3);
  CHECK(wrong.error_code() == grpc::UNAUTHENTICATED);
  CHECK(unknown.error_code() == wrong.error_code());
  CHECK(no_tenant.error_code() == wrong.error_code());
  CHECK(unknown.error_message() == wrong.error_message());
  CHECK(no_tenant.error_message() == wrong.error_message());

  // The known user's failure is in the audit log; the password is not.
  const std::string audit =
      SqlText(f,
              "SELECT string_agg(a::text, E'\\n') FROM identity.audit_log a WHERE action = "
              "'login.failed'");
  CHECK(absl::StrContains(audit, anna));
  CHECK_FALSE(absl::StrContains(audit, "Not-The-Password-1"));
  // Unknown logins are audited too: in the slug's tenant, or the platform's for an unknown slug.
  CHECK(SqlText(f, absl::StrCat("SELECT count(*) FROM identity.audit_log WHERE action = "
                                "'login.failed' AND tenant_id = '",
                                acme.id, "'")) == "2");
  CHECK(SqlText(f,
                "SELECT count(*) FROM identity.audit_log a JOIN identity.tenants t ON "
                "t.id = a.tenant_id WHERE action = 'login.failed' AND t.slug = 'platform'") == "1");

  SECTION("a disabled user gets FailedPrecondition only with the right password") {
    Sql(f, "UPDATE identity.users SET state = 2 WHERE id = $1", anna);
    v1::LoginResponse resp;
    CHECK(LoginRaw(f, LoginReq("acme", "anna", "Not-The-Password-1"), &resp).error_code() ==
          grpc::UNAUTHENTICATED);
    grpc::Status s = LoginRaw(f, LoginReq("acme", "anna"), &resp);
    CHECK(s.error_code() == grpc::FAILED_PRECONDITION);
    CHECK(s.error_message() == "account disabled");
  }
  SECTION("a suspended tenant gets FailedPrecondition only with the right password") {
    Sql(f, "UPDATE identity.tenants SET state = 2 WHERE slug = 'acme'");
    v1::LoginResponse resp;
    CHECK(LoginRaw(f, LoginReq("acme", "anna", "Not-The-Password-1"), &resp).error_code() ==
          grpc::UNAUTHENTICATED);
    grpc::Status s = LoginRaw(f, LoginReq("acme", "anna"), &resp);
    CHECK(s.error_code() == grpc::FAILED_PRECONDITION);
    CHECK(s.error_message() == "tenant suspended");
  }
}

TEST_CASE("remember_me gives a longer refresh lifetime", "[sessions]") {
  IdentityFixture f;
  f.CreateTenant("acme");
  v1::LoginResponse normal = f.Login("acme", "admin");
  v1::LoginRequest req = LoginReq("acme", "admin");
  req.set_remember_me(true);
  v1::LoginResponse remembered;
  SB_REQUIRE_GRPC_OK(LoginRaw(f, req, &remembered));
  const absl::Time now = absl::Now();
  const absl::Duration normal_ttl = FromTs(normal.tokens().refresh_token_expires_at()) - now;
  const absl::Duration long_ttl = FromTs(remembered.tokens().refresh_token_expires_at()) - now;
  // The tenant's (default) session and remember-me lifetimes.
  CHECK(normal_ttl > absl::Hours(1));
  CHECK(normal_ttl <= f.options().max_session_ttl);
  CHECK(long_ttl > normal_ttl + absl::Hours(24));
  CHECK(long_ttl <= f.options().max_session_ttl);
  // Access tokens stay short either way.
  CHECK(FromTs(remembered.tokens().access_token_expires_at()) - now <=
        f.options().access_token_ttl);
}

TEST_CASE("must_change_password gives a restricted token until the password is changed",
          "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  Sql(f, "UPDATE identity.users SET must_change_password = true WHERE id = $1", acme.admin_id);

  v1::LoginResponse login = f.Login("acme", "admin");
  REQUIRE(login.status() == v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED);
  REQUIRE(login.tokens().restricted());
  const std::string restricted = login.tokens().access_token();

  v1::GetCurrentUserResponse me;
  SB_REQUIRE_GRPC_OK(f.stub().GetCurrentUser(f.Ctx(restricted).get(), {}, &me));
  CHECK(me.restricted());
  CHECK(me.permissions().empty());
  v1::ListUsersResponse users;
  CHECK(f.stub().ListUsers(f.Ctx(restricted).get(), {}, &users).error_code() ==
        grpc::PERMISSION_DENIED);
  // A refresh of a restricted session stays restricted.
  v1::TokenPair refreshed;
  SB_REQUIRE_GRPC_OK(Refresh(f, login.tokens().refresh_token(), &refreshed));
  CHECK(refreshed.restricted());
  CHECK(f.stub().ListUsers(f.Ctx(refreshed.access_token()).get(), {}, &users).error_code() ==
        grpc::PERMISSION_DENIED);

  const std::string new_password = "Brand-New-Secret-815";
  auto change = [&](const std::string& current, const std::string& next,
                    const std::string& confirmation, v1::ChangePasswordResponse* resp) {
    v1::ChangePasswordRequest req;
    req.set_current_password(current);
    req.set_new_password(next);
    req.set_password_confirmation(confirmation);
    return f.stub().ChangePassword(f.Ctx(restricted).get(), req, resp);
  };
  v1::ChangePasswordResponse resp;
  grpc::Status s = change("Wrong-Current-Pass-1", new_password, "", &resp);
  CHECK(s.error_code() == grpc::UNAUTHENTICATED);
  s = change(kPassword, "short", "", &resp);
  CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "new_password"));
  s = change(kPassword, new_password, "Something-Else-815", &resp);
  CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "password_confirmation"));
  s = change(kPassword, kPassword, "", &resp);
  CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "new_password"));

  SB_REQUIRE_GRPC_OK(change(kPassword, new_password, new_password, &resp));
  CHECK_FALSE(resp.tokens().restricted());
  CHECK_FALSE(resp.tokens().refresh_token().empty());
  SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(resp.tokens().access_token()).get(), {}, &users));
  CHECK(users.users_size() >= 1);
  // The restricted session is over; the old password is gone; the new one gives full tokens.
  CHECK(testing::Eventually([&] { return Revoked(f, restricted); }, absl::Seconds(1)));
  CHECK(Refresh(f, refreshed.refresh_token(), nullptr).error_code() == grpc::UNAUTHENTICATED);
  CHECK(AuthCode(f, resp.tokens().access_token()) == grpc::OK);
  v1::LoginResponse old;
  CHECK(LoginRaw(f, LoginReq("acme", "admin"), &old).error_code() == grpc::UNAUTHENTICATED);
  CHECK(f.Login("acme", "admin", new_password).status() == v1::LoginResponse::STATUS_OK);
  // Neither password is in the responses or in the audit log.
  const std::string audit =
      SqlText(f, "SELECT string_agg(a::text, E'\\n') FROM identity.audit_log a");
  CHECK(absl::StrContains(audit, "password.change"));
  for (const std::string& secret : {std::string(kPassword), new_password}) {
    CHECK_FALSE(absl::StrContains(login.DebugString(), secret));
    CHECK_FALSE(absl::StrContains(resp.DebugString(), secret));
    CHECK_FALSE(absl::StrContains(audit, secret));
  }
}

TEST_CASE("Failed logins are throttled with a retry delay", "[sessions]") {
  IdentityFixture f;
  f.CreateTenant("acme");
  v1::LoginResponse resp;
  // Five free failures, and the sixth (which sets the first lock) is still answered.
  for (int i = 0; i < 6; ++i) {
    INFO("attempt " << i + 1);
    REQUIRE(LoginRaw(f, LoginReq("acme", "admin", "Wrong-Password-123"), &resp).error_code() ==
            grpc::UNAUTHENTICATED);
  }
  auto ctx = f.Ctx();
  grpc::Status s = LoginRaw(f, LoginReq("acme", "admin", "Wrong-Password-123"), &resp, ctx.get());
  CHECK(s.error_code() == grpc::RESOURCE_EXHAUSTED);
  CHECK(absl::StrContains(s.error_message(), "retry in"));
  std::optional<absl::Duration> delay = RetryDelayOf(*ctx);
  REQUIRE(delay.has_value());
  CHECK(*delay > absl::ZeroDuration());
  CHECK(*delay <= absl::Seconds(1));

  // While locked even the right password is refused, without being checked.
  s = LoginRaw(f, LoginReq("acme", "admin"), &resp);
  CHECK(s.error_code() == grpc::RESOURCE_EXHAUSTED);
  CHECK(resp.tokens().access_token().empty());

  // After the delay the right password works again and clears the count.
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(*delay + absl::Milliseconds(100)));
  CHECK(f.Login("acme", "admin").status() == v1::LoginResponse::STATUS_OK);
  CHECK(LoginRaw(f, LoginReq("acme", "admin", "Wrong-Password-123"), &resp).error_code() ==
        grpc::UNAUTHENTICATED);
}

TEST_CASE("The account lock counts failures however the login was typed", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  CreateUserWithEmail(f, acme.admin_token, "anna", "anna@acme.example");
  v1::LoginResponse resp;
  // Three wrong passwords by login name, three by email (one without the tenant): no single
  // spelling reaches the limit, the account does.
  for (const auto& [slug, login] :
       std::vector<std::pair<std::string, std::string>>{{"acme", "anna"},
                                                        {"acme", "anna"},
                                                        {"acme", "anna"},
                                                        {"acme", "anna@acme.example"},
                                                        {"acme", "ANNA@acme.example"},
                                                        {"", "anna@acme.example"}}) {
    REQUIRE(LoginRaw(f, LoginReq(slug, login, "Wrong-Password-123"), &resp).error_code() ==
            grpc::UNAUTHENTICATED);
  }
  grpc::Status s = LoginRaw(f, LoginReq("acme", "anna"), &resp);
  CHECK(s.error_code() == grpc::RESOURCE_EXHAUSTED);
  CHECK(resp.tokens().access_token().empty());
  // An admin's password reset clears the lock with the password.
  v1::ListUsersRequest list;
  list.set_query("anna");
  v1::ListUsersResponse users;
  SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), list, &users));
  REQUIRE(users.users_size() == 1);
  v1::ResetUserPasswordRequest reset;
  reset.set_user_id(users.users(0).id());
  reset.set_new_password("Fresh-Start-Password-9");
  v1::ResetUserPasswordResponse done;
  SB_REQUIRE_GRPC_OK(f.stub().ResetUserPassword(f.Ctx(acme.admin_token).get(), reset, &done));
  CHECK(f.Login("acme", "anna", "Fresh-Start-Password-9").status() ==
        v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED);
}

TEST_CASE("Refresh tokens rotate; reusing an old one revokes the whole session", "[sessions]") {
  IdentityFixture f;
  f.CreateTenant("acme");
  v1::LoginResponse login = f.Login("acme", "admin");
  const v1::TokenPair first = login.tokens();

  v1::TokenPair second;
  SB_REQUIRE_GRPC_OK(Refresh(f, first.refresh_token(), &second));
  CHECK(second.refresh_token() != first.refresh_token());
  CHECK(second.access_token() != first.access_token());
  CHECK(AuthCode(f, second.access_token()) == grpc::OK);
  // The session's end does not move with rotation.
  CHECK(second.refresh_token_expires_at().seconds() == first.refresh_token_expires_at().seconds());

  // The rotated-away token comes back: refused, and the family is revoked.
  CHECK(Refresh(f, first.refresh_token(), nullptr).error_code() == grpc::UNAUTHENTICATED);
  CHECK(Refresh(f, second.refresh_token(), nullptr).error_code() == grpc::UNAUTHENTICATED);
  CHECK(testing::Eventually([&] { return Revoked(f, second.access_token()); }, absl::Seconds(1)));
  CHECK(Revoked(f, first.access_token()));
  CHECK(SqlText(f,
                "SELECT count(*) FROM identity.audit_log WHERE action = "
                "'session.reuse_detected'") == "1");

  // Other sessions of the user are untouched.
  CHECK(AuthCode(f, f.Login("acme", "admin").tokens().access_token()) == grpc::OK);
  CHECK(Refresh(f, "sbr_not-a-token", nullptr).error_code() == grpc::UNAUTHENTICATED);
}

TEST_CASE("Logout revokes the access token within a second", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.CreateUser(acme.admin_token, "anna", {"agent"});

  SECTION("the calling session") {
    v1::LoginResponse login = f.Login("acme", "anna");
    const std::string token = login.tokens().access_token();
    REQUIRE(AuthCode(f, token) == grpc::OK);
    google::protobuf::Empty empty;
    SB_REQUIRE_GRPC_OK(f.stub().Logout(f.Ctx(token).get(), {}, &empty));
    CHECK(testing::Eventually([&] { return Revoked(f, token); }, absl::Seconds(1)));
    CHECK(Refresh(f, login.tokens().refresh_token(), nullptr).error_code() ==
          grpc::UNAUTHENTICATED);
  }
  SECTION("the session of a refresh token, which must be the caller's") {
    v1::LoginResponse a = f.Login("acme", "anna");
    v1::LoginResponse b = f.Login("acme", "anna");
    v1::LogoutRequest req;
    req.set_refresh_token(f.Login("acme", "admin").tokens().refresh_token());
    google::protobuf::Empty empty;
    CHECK(f.stub().Logout(f.Ctx(a.tokens().access_token()).get(), req, &empty).error_code() ==
          grpc::NOT_FOUND);
    req.set_refresh_token(b.tokens().refresh_token());
    SB_REQUIRE_GRPC_OK(f.stub().Logout(f.Ctx(a.tokens().access_token()).get(), req, &empty));
    CHECK(testing::Eventually([&] { return Revoked(f, b.tokens().access_token()); },
                              absl::Seconds(1)));
    CHECK(AuthCode(f, a.tokens().access_token()) == grpc::OK);
  }
  SECTION("all sessions") {
    v1::LoginResponse a = f.Login("acme", "anna");
    v1::LoginResponse b = f.Login("acme", "anna");
    v1::LogoutRequest req;
    req.set_all_sessions(true);
    google::protobuf::Empty empty;
    SB_REQUIRE_GRPC_OK(f.stub().Logout(f.Ctx(a.tokens().access_token()).get(), req, &empty));
    CHECK(testing::Eventually(
        [&] {
          return Revoked(f, a.tokens().access_token()) && Revoked(f, b.tokens().access_token());
        },
        absl::Seconds(1)));
    CHECK(Refresh(f, b.tokens().refresh_token(), nullptr).error_code() == grpc::UNAUTHENTICATED);
    // A new login works.
    CHECK(AuthCode(f, f.Login("acme", "anna").tokens().access_token()) == grpc::OK);
  }
}

TEST_CASE("TOTP enrolment, second step of login, drift, replay and recovery codes", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string anna = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string token = f.Token("acme", "anna");

  v1::TotpEnrollment enrollment = Enroll(f, token);
  absl::StatusOr<std::string> secret = Base32Decode(enrollment.secret());
  REQUIRE(secret.ok());
  CHECK(secret->size() == 20);
  CHECK(absl::StartsWith(enrollment.otpauth_uri(), "otpauth://totp/Switchboard:anna?"));
  CHECK(absl::StrContains(enrollment.otpauth_uri(), "secret=" + enrollment.secret()));
  CHECK(absl::StartsWith(enrollment.qr_png(), "\x89PNG\r\n\x1a\n"));
  CHECK(absl::StrContains(enrollment.qr_svg(), "<svg"));
  CHECK(FromTs(enrollment.expires_at()) > absl::Now());

  // Enrolling is not enabling: login still needs only the password.
  CHECK(f.Login("acme", "anna").status() == v1::LoginResponse::STATUS_OK);

  AwayFromStepEdge();
  v1::ActivateTotpRequest activate;
  activate.set_code(TotpCode(*secret, absl::Now() + absl::Seconds(90)));
  v1::ActivateTotpResponse activated;
  grpc::Status s = f.stub().ActivateTotp(f.Ctx(token).get(), activate, &activated);
  CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "code"));
  activate.set_code(TotpCode(*secret, absl::Now()));
  SB_REQUIRE_GRPC_OK(f.stub().ActivateTotp(f.Ctx(token).get(), activate, &activated));
  REQUIRE(activated.recovery_codes_size() == 10);
  // A second enrolment needs a reset first.
  v1::TotpEnrollment again;
  CHECK(f.stub().EnrollTotp(f.Ctx(token).get(), {}, &again).error_code() ==
        grpc::FAILED_PRECONDITION);

  SECTION("codes: one step of drift, each code once, two steps away refused") {
    // As if the activation was long ago, so that the previous step's code is not a replay.
    Sql(f, "UPDATE identity.users SET totp_last_step = 0 WHERE id = $1", anna);
    AwayFromStepEdge();
    const absl::Time now = absl::Now();
    v1::LoginResponse resp;
    const std::string previous = TotpCode(*secret, now - absl::Seconds(30));
    SB_REQUIRE_GRPC_OK(Complete(f, Challenge(f, "acme", "anna"), previous, false, &resp));
    CHECK(resp.status() == v1::LoginResponse::STATUS_OK);
    CHECK(resp.user().totp_enabled());
    CHECK(AuthCode(f, resp.tokens().access_token()) == grpc::OK);

    s = Complete(f, Challenge(f, "acme", "anna"), previous, false, &resp);
    CHECK(s.error_code() == grpc::UNAUTHENTICATED);
    CHECK(s.error_message() == "code already used");

    const std::string challenge = Challenge(f, "acme", "anna");
    s = Complete(f, challenge, TotpCode(*secret, now + absl::Seconds(60)), false, &resp);
    CHECK(s.error_code() == grpc::UNAUTHENTICATED);
    CHECK(s.error_message() == "invalid code");
    s = Complete(f, challenge, TotpCode(*secret, now - absl::Seconds(60)), false, &resp);
    CHECK(s.error_code() == grpc::UNAUTHENTICATED);
    // The same challenge still takes the current code.
    SB_REQUIRE_GRPC_OK(Complete(f, challenge, TotpCode(*secret, now), false, &resp));
    CHECK(resp.status() == v1::LoginResponse::STATUS_OK);
    // A used challenge does not work twice.
    s = Complete(f, challenge, TotpCode(*secret, now + absl::Seconds(30)), false, &resp);
    CHECK(s.error_code() == grpc::UNAUTHENTICATED);
  }
  SECTION("a recovery code works once") {
    const std::string code = activated.recovery_codes(0);
    v1::LoginResponse resp;
    SB_REQUIRE_GRPC_OK(Complete(f, Challenge(f, "acme", "anna"), code, true, &resp));
    CHECK(resp.status() == v1::LoginResponse::STATUS_OK);
    CHECK(Complete(f, Challenge(f, "acme", "anna"), code, true, &resp).error_code() ==
          grpc::UNAUTHENTICATED);
    // Typed in capitals with spaces, another one still works.
    std::string typed = absl::AsciiStrToUpper(activated.recovery_codes(1));
    typed.insert(4, " ");
    SB_REQUIRE_GRPC_OK(Complete(f, Challenge(f, "acme", "anna"), typed, true, &resp));
  }
  SECTION("a challenge dies after five wrong codes") {
    const std::string challenge = Challenge(f, "acme", "anna");
    v1::LoginResponse resp;
    for (int i = 0; i < 5; ++i) {
      CHECK(Complete(f, challenge, "000000", false, &resp).error_code() == grpc::UNAUTHENTICATED);
    }
    s = Complete(f, challenge, activated.recovery_codes(2), true, &resp);
    CHECK(s.error_code() == grpc::UNAUTHENTICATED);
    CHECK(resp.tokens().access_token().empty());
  }
  SECTION("regenerated recovery codes replace the old ones; an admin can reset TOTP") {
    AwayFromStepEdge();
    v1::RegenerateRecoveryCodesRequest req;
    req.set_code("123456");
    v1::RegenerateRecoveryCodesResponse codes;
    CHECK(f.stub().RegenerateRecoveryCodes(f.Ctx(token).get(), req, &codes).error_code() ==
          grpc::INVALID_ARGUMENT);
    req.set_code(TotpCode(*secret, absl::Now() + absl::Seconds(30)));
    SB_REQUIRE_GRPC_OK(f.stub().RegenerateRecoveryCodes(f.Ctx(token).get(), req, &codes));
    REQUIRE(codes.recovery_codes_size() == 10);
    v1::LoginResponse resp;
    CHECK(Complete(f, Challenge(f, "acme", "anna"), activated.recovery_codes(3), true, &resp)
              .error_code() == grpc::UNAUTHENTICATED);
    SB_REQUIRE_GRPC_OK(
        Complete(f, Challenge(f, "acme", "anna"), codes.recovery_codes(0), true, &resp));

    // An agent cannot reset the admin's TOTP; the admin can reset the agent's.
    v1::ResetTotpRequest reset;
    reset.set_user_id(acme.admin_id);
    google::protobuf::Empty empty;
    CHECK(f.stub().ResetTotp(f.Ctx(token).get(), reset, &empty).error_code() != grpc::OK);
    reset.set_user_id(anna);
    SB_REQUIRE_GRPC_OK(f.stub().ResetTotp(f.Ctx(acme.admin_token).get(), reset, &empty));
    CHECK(f.Login("acme", "anna").status() == v1::LoginResponse::STATUS_OK);
  }

  // Neither the secret nor any recovery code is in the audit log.
  const std::string audit =
      SqlText(f, "SELECT string_agg(a::text, E'\\n') FROM identity.audit_log a");
  CHECK(absl::StrContains(audit, "totp.enable"));
  CHECK_FALSE(absl::StrContains(audit, enrollment.secret()));
  for (const std::string& code : activated.recovery_codes()) {
    CHECK_FALSE(absl::StrContains(audit, code));
  }
}

TEST_CASE("A tenant or role that requires TOTP restricts logins until enrolment", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.CreateUser(acme.admin_token, "anna", {"agent"});

  SECTION("the whole tenant") {
    Sql(f,
        "UPDATE identity.tenants SET settings = jsonb_set(settings, '{security}', "
        "'{\"requireTotp\": true}') WHERE slug = 'acme'");
    v1::LoginResponse login = f.Login("acme", "anna");
    REQUIRE(login.status() == v1::LoginResponse::STATUS_TOTP_ENROLLMENT_REQUIRED);
    REQUIRE(login.tokens().restricted());
    const std::string restricted = login.tokens().access_token();
    v1::ListUsersResponse users;
    CHECK(f.stub().ListUsers(f.Ctx(restricted).get(), {}, &users).error_code() ==
          grpc::PERMISSION_DENIED);

    // The restricted token can enrol; the next login asks for the code and ends in full tokens.
    Totp totp = EnrollAndActivate(f, restricted);
    const std::string challenge = Challenge(f, "acme", "anna");
    v1::LoginResponse done;
    AwayFromStepEdge();
    SB_REQUIRE_GRPC_OK(Complete(
        f, challenge, TotpCode(totp.secret, absl::Now() + absl::Seconds(30)), false, &done));
    CHECK(done.status() == v1::LoginResponse::STATUS_OK);
    CHECK_FALSE(done.tokens().restricted());
    SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(done.tokens().access_token()).get(), {}, &users));
  }
  SECTION("one role") {
    Sql(f,
        "UPDATE identity.tenants SET settings = jsonb_set(settings, '{security}', "
        "'{\"requireTotpRoleIds\": [\"agent\"]}') WHERE slug = 'acme'");
    CHECK(f.Login("acme", "anna").status() == v1::LoginResponse::STATUS_TOTP_ENROLLMENT_REQUIRED);
    CHECK(f.Login("acme", "admin").status() == v1::LoginResponse::STATUS_OK);
  }
}

TEST_CASE("IntrospectToken is internal and returns the principal", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string anna = f.CreateUser(acme.admin_token, "anna", {"agent"});
  v1::LoginResponse login = f.Login("acme", "anna");

  v1::IntrospectTokenRequest req;
  req.set_token(login.tokens().access_token());
  v1::IntrospectTokenResponse resp;
  // Not even the token's own holder may introspect.
  CHECK(f.stub()
            .IntrospectToken(f.Ctx(login.tokens().access_token()).get(), req, &resp)
            .error_code() == grpc::UNAUTHENTICATED);
  SB_REQUIRE_GRPC_OK(f.stub().IntrospectToken(f.InternalCtx().get(), req, &resp));
  CHECK(resp.principal().user_id() == anna);
  CHECK(resp.principal().tenant_id() == acme.id);
  CHECK_FALSE(resp.principal().session_id().empty());
  CHECK(resp.principal().role_ids_size() == 1);
  CHECK(resp.principal().permissions_size() > 0);
  CHECK(resp.principal().display_name() == "First anna Last");
  CHECK_FALSE(resp.principal().restricted());
  CHECK(resp.cache_ttl().seconds() > 0);
  CHECK(resp.cache_ttl().seconds() <= 30);

  req.set_token("not-a-token");
  CHECK(f.stub().IntrospectToken(f.InternalCtx().get(), req, &resp).error_code() ==
        grpc::UNAUTHENTICATED);
  // After logout the token introspects as revoked.
  google::protobuf::Empty empty;
  SB_REQUIRE_GRPC_OK(f.stub().Logout(f.Ctx(login.tokens().access_token()).get(), {}, &empty));
  req.set_token(login.tokens().access_token());
  CHECK(testing::Eventually(
      [&] {
        v1::IntrospectTokenResponse r;
        return f.stub().IntrospectToken(f.InternalCtx().get(), req, &r).error_code() ==
               grpc::UNAUTHENTICATED;
      },
      absl::Seconds(1)));
}

TEST_CASE("GetSigningKeys lists the key that signs tokens; forged tokens are refused",
          "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");

  v1::GetSigningKeysResponse keys;
  SB_REQUIRE_GRPC_OK(f.stub().GetSigningKeys(f.Ctx().get(), {}, &keys));  // no credential
  CHECK(keys.issuer() == f.options().issuer);
  CHECK(keys.audience() == f.options().audience);
  CHECK(keys.cache_ttl().seconds() == 300);
  const v1::SigningKey* active = nullptr;
  for (const auto& k : keys.keys()) {
    if (k.state() == v1::SigningKey::STATE_ACTIVE) active = &k;
  }
  REQUIRE(active != nullptr);
  CHECK(active->algorithm() == "EdDSA");
  CHECK(absl::StartsWith(active->public_key_pem(), "-----BEGIN PUBLIC KEY-----"));
  // Tokens carry that key's id.
  const std::string token = acme.admin_token;
  std::string header;
  REQUIRE(absl::WebSafeBase64Unescape(token.substr(0, token.find('.')), &header));
  CHECK(absl::StrContains(header, absl::StrCat("\"kid\":\"", active->key_id(), "\"")));
  // And the published public key verifies them.
  absl::StatusOr<auth::Ed25519Key> published =
      auth::Ed25519Key::FromPublicPem(active->public_key_pem());
  REQUIRE(published.ok());
  const size_t last_dot = token.rfind('.');
  std::string signature;
  REQUIRE(absl::WebSafeBase64Unescape(token.substr(last_dot + 1), &signature));
  CHECK(published->Verify(token.substr(0, last_dot), signature));

  // Forgeries, with claims that are otherwise those of a real, logged-in user.
  const std::string real_pem =
      SqlText(f, "SELECT private_pem FROM identity.signing_keys WHERE state = 2 LIMIT 1");
  // The private key is sealed at rest with the service's secrets key.
  absl::StatusOr<std::string> opened =
      Sealer::FromBase64Key(f.options().secrets_key)->Open(real_pem);
  REQUIRE(opened.ok());
  absl::StatusOr<auth::Ed25519Key> real_key = auth::Ed25519Key::FromPrivatePem(*opened);
  REQUIRE(real_key.ok());
  absl::StatusOr<auth::Ed25519Key> other_key = auth::Ed25519Key::Generate();
  REQUIRE(other_key.ok());
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  auth::AccessClaims claims;
  claims.iss = f.options().issuer;
  claims.aud = f.options().audience;
  claims.sub = acme.admin_id;
  claims.tid = acme.id;
  claims.sid = NewUuid();
  claims.jti = NewUuid();
  claims.iat = claims.nbf = now;
  claims.exp = now + absl::Minutes(10);
  auto sign = [&](const auth::Ed25519Key& key, const auth::AccessClaims& c) {
    absl::StatusOr<std::string> t = auth::JwtSigner(active->key_id(), key).Sign(c);
    REQUIRE(t.ok());
    return *t;
  };

  // The harness itself is sound: the real key with good claims is accepted.
  CHECK(AuthCode(f, sign(*real_key, claims)) == grpc::OK);

  CHECK(AuthCode(f, sign(*other_key, claims)) == grpc::UNAUTHENTICATED);

  const std::string genuine = sign(*real_key, claims);
  const std::string payload =
      genuine.substr(genuine.find('.') + 1, genuine.rfind('.') - genuine.find('.') - 1);
  const std::string none_header =
      B64(absl::StrCat("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"", active->key_id(), "\"}"));
  CHECK(AuthCode(f, absl::StrCat(none_header, ".", payload, ".")) == grpc::UNAUTHENTICATED);
  // The real signature under a header that claims another algorithm.
  const std::string hs_header = B64(
      absl::StrCat("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"", active->key_id(), "\"}"));
  CHECK(AuthCode(f, absl::StrCat(hs_header, ".", payload, genuine.substr(genuine.rfind('.')))) ==
        grpc::UNAUTHENTICATED);

  auth::AccessClaims expired = claims;
  expired.iat = expired.nbf = now - absl::Hours(2);
  expired.exp = now - absl::Hours(1);
  CHECK(AuthCode(f, sign(*real_key, expired)) == grpc::UNAUTHENTICATED);

  auth::AccessClaims audience = claims;
  audience.aud = "someone-else";
  CHECK(AuthCode(f, sign(*real_key, audience)) == grpc::UNAUTHENTICATED);

  auth::AccessClaims issuer = claims;
  issuer.iss = "https://evil.example";
  CHECK(AuthCode(f, sign(*real_key, issuer)) == grpc::UNAUTHENTICATED);

  // A tampered payload under a genuine signature.
  auth::AccessClaims elevated = claims;
  elevated.sub = NewUuid();
  const std::string tampered_src = sign(*real_key, elevated);
  const std::string tampered_payload = tampered_src.substr(
      tampered_src.find('.') + 1, tampered_src.rfind('.') - tampered_src.find('.') - 1);
  CHECK(AuthCode(f, absl::StrCat(genuine.substr(0, genuine.find('.')), ".", tampered_payload,
                                 genuine.substr(genuine.rfind('.')))) == grpc::UNAUTHENTICATED);
}

TEST_CASE("Passwords never appear in login responses", "[sessions]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.CreateUser(acme.admin_token, "anna", {"agent"});
  v1::LoginResponse ok = f.Login("acme", "anna");
  v1::LoginResponse failed;
  grpc::Status s = LoginRaw(f, LoginReq("acme", "anna", "Typo-In-Password-99"), &failed);
  v1::TokenPair refreshed;
  SB_REQUIRE_GRPC_OK(Refresh(f, ok.tokens().refresh_token(), &refreshed));
  for (const std::string& text :
       {ok.DebugString(), failed.DebugString(), s.error_message(), refreshed.DebugString()}) {
    CHECK_FALSE(absl::StrContains(text, kPassword));
    CHECK_FALSE(absl::StrContains(text, "Typo-In-Password-99"));
  }
  const std::string audit =
      SqlText(f, "SELECT string_agg(a::text, E'\\n') FROM identity.audit_log a");
  CHECK(absl::StrContains(audit, "login.succeeded"));
  CHECK(absl::StrContains(audit, "login.failed"));
  CHECK_FALSE(absl::StrContains(audit, kPassword));
  CHECK_FALSE(absl::StrContains(audit, "Typo-In-Password-99"));
  // Refresh tokens are stored hashed.
  CHECK(SqlText(f, absl::StrCat("SELECT count(*) FROM identity.refresh_tokens WHERE token_hash = '",
                                refreshed.refresh_token(), "'")) == "0");
}

}  // namespace sb::identity::test
