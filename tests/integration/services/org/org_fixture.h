#pragma once

// OrgFixture: the real org service and the real identity service on one loopback gRPC server, as
// `switchboard --target=identity,org` runs them, against a fresh PostgreSQL database (both
// schemas) and the shared test Redis (own key prefixes). Org authenticates callers the way it does
// in production — identity's signing keys fetched over gRPC, revocations from Redis — and identity
// asks org for scope facts and placement over gRPC. Tests talk to both only through their stubs.
//
//   OrgFixture f;
//   auto acme = f.CreateTenant("acme");
//   std::string unit = f.CreateOrgUnit(acme.admin_token, "Sales");
//   std::string anna = f.CreateUser(acme.admin_token, "anna", {"agent"}, {unit});
//   v1::GetUserPlacementRequest req; req.set_user_id(anna);
//   v1::UserPlacement p;
//   SB_REQUIRE_GRPC_OK(f.stub().GetUserPlacement(f.Ctx(acme.admin_token).get(), req, &p));

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "libs/auth/identity_clients.h"
#include "libs/auth/org_scope_facts.h"
#include "services/identity/grpc_org_placement.h"
#include "services/org/grpc_directory.h"
#include "services/org/org_service.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::org::test {

namespace iv1 = ::switchboard::identity::v1;
using identity::test::Code;
using identity::test::kPassword;
using identity::test::RetryDelay;
using identity::test::TenantInfo;
using identity::test::ViolationField;

class OrgFixture {
 public:
  // Registers more services on the same server before it starts (routing's fixture adds routing
  // this way); identity's fixture is ready for pg(), redis() and internal_token() by then, and
  // for channel() once the constructor has returned.
  using AddServices = std::function<void(identity::test::IdentityFixture&, grpc::ServerBuilder&)>;

  explicit OrgFixture(OrgOptions options = {}, AddServices add_services = {});
  ~OrgFixture();

  v1::OrgService::Stub& stub() { return *stub_; }
  iv1::IdentityService::Stub& identity_stub() { return identity_->stub(); }
  identity::test::IdentityFixture& identity() { return *identity_; }
  pg::Pool& pg() { return identity_->pg(); }
  redis::Client& redis() { return identity_->redis(); }
  const OrgOptions& options() const { return options_; }

  // A client context with a deadline and, when given, "authorization: Bearer <token>".
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") const {
    return identity_->Ctx(token);
  }
  // With the service credential and, when given, x-sb-tenant-id.
  std::unique_ptr<grpc::ClientContext> InternalCtx(const std::string& tenant_id = "") const;

  const std::string& platform_token() const { return identity_->platform_token(); }
  TenantInfo CreateTenant(const std::string& slug) { return identity_->CreateTenant(slug); }
  // A user created through identity's CreateUser (placed in units and teams through org).
  std::string CreateUser(const std::string& token, const std::string& login,
                         const std::vector<std::string>& role_ids,
                         const std::vector<std::string>& org_unit_ids = {},
                         const std::vector<std::string>& team_ids = {}) {
    return identity_->CreateUser(token, login, role_ids, org_unit_ids, team_ids);
  }
  std::string Token(const std::string& slug, const std::string& login) {
    return identity_->Token(slug, login);
  }
  // Gives a user an extra permission ("org.manage:team") through identity, as an admin would.
  void Grant(const std::string& admin_token, const std::string& user_id,
             const std::string& permission, ::switchboard::common::v1::Scope scope);

  // Shortcuts that REQUIRE success and return the new id.
  std::string CreateOrgUnit(const std::string& token, const std::string& name,
                            const std::string& parent_id = "");
  std::string CreateTeam(const std::string& token, const std::string& name,
                         const std::vector<std::string>& members = {},
                         const std::vector<std::string>& leaders = {});

 private:
  class Forward;
  OrgOptions options_;
  SystemClock clock_;
  // Identity's view of org (over gRPC, uncached so that tests see changes at once).
  std::unique_ptr<auth::OrgScopeFacts> org_facts_;
  std::unique_ptr<identity::GrpcOrgPlacement> org_placement_;
  // Org's side.
  std::unique_ptr<auth::ServiceAuth> auth_;
  std::unique_ptr<GrpcDirectory> directory_;
  std::unique_ptr<OrgService> service_;
  std::unique_ptr<Forward> forward_;
  std::unique_ptr<identity::test::IdentityFixture> identity_;
  std::unique_ptr<v1::OrgService::Stub> stub_;
};

}  // namespace sb::org::test
