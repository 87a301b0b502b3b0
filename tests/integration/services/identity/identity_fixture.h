#pragma once

// IdentityFixture: a real IdentityService on a free loopback port, against a fresh PostgreSQL
// database (migrated) and the shared test Redis (its own revocation key), with a FakeOrg for the
// org service's facts (or, for org's tests, the real org service on the same server). Tests talk to
// it only through the gRPC stub, as other services and the gateway do.
//
//   IdentityFixture f;
//   TenantInfo acme = f.CreateTenant("acme");
//   std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
//   std::string token = f.Login("acme", "anna", kPassword).tokens().access_token();
//   v1::GetUserRequest req; req.set_user_id(agent);
//   v1::User user;
//   grpc::Status s = f.stub().GetUser(f.Ctx(token).get(), req, &user);

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "libs/auth/revocation_list.h"
#include "libs/common/clock.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"
#include "services/identity/identity_service.h"
#include "tests/integration/services/identity/fake_org.h"

// REQUIRE that a grpc::Status is OK, printing it when it is not.
#define SB_REQUIRE_GRPC_OK(expr)                                                   \
  do {                                                                             \
    const ::grpc::Status sb_grpc_status_ = (expr);                                 \
    INFO(sb_grpc_status_.error_code() << ": " << sb_grpc_status_.error_message()); \
    REQUIRE(sb_grpc_status_.ok());                                                 \
  } while (false)

namespace sb::identity::test {

// A password every policy accepts (tests use it for most users).
inline constexpr char kPassword[] = "Correct-Horse-42-Battery";
inline constexpr char kPlatformAdminPassword[] = "Platform-Admin-Pass-9931";

struct TenantInfo {
  std::string id;
  std::string slug;
  std::string admin_id;
  std::string admin_token;  // an access token of the tenant's first admin (login "admin")
};

class IdentityFixture;

struct FixtureOptions {
  // internal_token and revocation_key are filled in by the fixture; secrets are sealed at rest
  // with a test key, as in production.
  IdentityOptions identity = [] {
    IdentityOptions o;
    o.secrets_key = "c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXRzLWtleS0zMmI=";
    return o;
  }();
  // Cheap argon2 parameters keep the suite fast; the production defaults are tested separately.
  bool fast_hashing = true;
  // The real org service's clients instead of the FakeOrg (the org fixture passes them).
  auth::ScopeFacts* scope_facts = nullptr;
  OrgPlacement* org = nullptr;
  // Called before the server starts, to register more services on the same server (as
  // `--target=all` does); the fixture's pg(), redis() and internal_token() are ready by then, and
  // channel() once the constructor has returned.
  std::function<void(IdentityFixture&, grpc::ServerBuilder&)> add_services;
};

class IdentityFixture {
 public:
  explicit IdentityFixture(FixtureOptions options = {});
  ~IdentityFixture();

  v1::IdentityService::Stub& stub() { return *stub_; }
  // A channel to the service, for clients other than the stub (libs/auth's identity clients).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  FakeOrg& org() { return org_; }
  pg::Pool& pg() { return *pool_; }
  redis::Client& redis() { return *redis_; }
  auth::RedisRevocationList& revocations() { return *revocations_; }
  const std::string& internal_token() const { return internal_token_; }
  const std::string& revocation_key() const { return revocation_key_; }
  const IdentityOptions& options() const { return options_.identity; }

  // A client context with a deadline and, when given, "authorization: Bearer <token>".
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") const;
  // A client context carrying the internal service credential (for "Internal:" RPCs).
  std::unique_ptr<grpc::ClientContext> InternalCtx() const;

  // The platform admin's access token (created at start-up).
  const std::string& platform_token() const { return platform_token_; }
  // Creates a tenant through CreateTenant (as platform admin) with an admin "admin"/kPassword,
  // and logs that admin in.
  TenantInfo CreateTenant(const std::string& slug);
  // Creates a user through CreateUser with `token`; REQUIREs success. Returns the user id.
  std::string CreateUser(const std::string& token, const std::string& login,
                         const std::vector<std::string>& role_ids,
                         const std::vector<std::string>& org_unit_ids = {},
                         const std::vector<std::string>& team_ids = {},
                         const std::string& password = kPassword);
  // Logs in through Login; REQUIREs an OK status (not necessarily STATUS_OK: check status()).
  v1::LoginResponse Login(const std::string& tenant_slug, const std::string& login,
                          const std::string& password = kPassword);
  // Login that REQUIREs STATUS_OK and returns the access token.
  std::string Token(const std::string& tenant_slug, const std::string& login,
                    const std::string& password = kPassword);

 private:
  FixtureOptions options_;
  SystemClock clock_;
  FakeOrg org_;
  std::string internal_token_;
  std::string revocation_key_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<redis::Client> redis_;
  std::unique_ptr<auth::RedisRevocationList> revocations_;
  std::unique_ptr<IdentityService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IdentityService::Stub> stub_;
  std::string platform_token_;
};

// The field named by the first FieldViolation in a finished call's `sb-error-details-bin`
// trailer ("" when there is none).
std::string ViolationField(const grpc::ClientContext& context);
// The retry delay of a RetryInfo detail in that trailer (0 when there is none).
absl::Duration RetryDelay(const grpc::ClientContext& context);

// The status code of a call, for CHECKs: CHECK(Code(stub.GetUser(...)) == grpc::NOT_FOUND).
inline grpc::StatusCode Code(const grpc::Status& s) { return s.error_code(); }

}  // namespace sb::identity::test
