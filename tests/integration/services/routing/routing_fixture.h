#pragma once

// RoutingFixture: the real routing, org and identity services on one loopback gRPC server, as
// `switchboard --target=identity,org,routing` runs them, against a fresh PostgreSQL database and
// the shared test Redis (the OrgFixture with routing registered on its server). Routing reaches
// org and identity only through their gRPC APIs, with the service credential, as in production.
//
//   RoutingFixture f;
//   auto acme = f.org().CreateTenant("acme");
//   v1::RouteCallRequest req = ...;
//   v1::RouteCallResponse resp;
//   SB_REQUIRE_GRPC_OK(f.stub().RouteCall(f.InternalCtx().get(), req, &resp));

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "libs/auth/identity_clients.h"
#include "services/routing/grpc_directory.h"
#include "services/routing/routing_service.h"
#include "tests/integration/services/org/org_fixture.h"

namespace sb::routing::test {

namespace orgv1 = ::switchboard::org::v1;
namespace iv1 = ::switchboard::identity::v1;
using identity::test::Code;
using identity::test::TenantInfo;
using identity::test::ViolationField;

class RoutingFixture {
 public:
  explicit RoutingFixture(RouterOptions options = {});
  ~RoutingFixture();

  v1::RoutingService::Stub& stub() { return *stub_; }
  org::test::OrgFixture& org() { return *org_; }
  orgv1::OrgService::Stub& org_stub() { return org_->stub(); }
  iv1::IdentityService::Stub& identity_stub() { return org_->identity_stub(); }

  // A client context with a deadline and, when given, "authorization: Bearer <token>".
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") const {
    return org_->Ctx(token);
  }
  // With the service credential (what sip sends).
  std::unique_ptr<grpc::ClientContext> InternalCtx() const { return org_->InternalCtx(); }

  // Set-up shortcuts through identity's and org's APIs, as an admin would; each REQUIREs success.
  // A tenant whose admin reads national numbers with `country`.
  TenantInfo CreateTenant(const std::string& slug, const std::string& country = "HU");
  // An outbound-capable trunk by default (inbound from 192.0.2.0/24, outbound to
  // sip.carrier.test); `edit` changes the request before it is sent.
  std::string CreateTrunk(const std::string& token, const std::string& name,
                          const std::function<void(orgv1::Trunk&)>& edit = {});
  std::string CreateProject(const std::string& token, const std::string& name);
  std::string CreateNumber(const std::string& token, const std::string& e164,
                           const std::string& project_id, const std::string& trunk_id,
                           const std::string& schedule_id = "");
  struct Agent {
    std::string user_id;
    std::string extension;
    std::string token;  // the agent's own session (project selection lives with it)
  };
  // A user with the agent role and `profile` (user_id filled in), logged in.
  Agent CreateAgent(const TenantInfo& tenant, const std::string& login,
                    orgv1::AgentProfile profile = {});
  // The agent's project selection, made with their own token.
  void Select(const Agent& agent, const std::string& primary,
              const std::vector<std::string>& secondary = {});
  void TopUp(const std::string& token, int64_t units, const std::string& key = "top-up-1");
  void CreatePin(const std::string& token, const std::string& user_id, const std::string& pin);

 private:
  SystemClock clock_;
  RouterOptions options_;
  std::unique_ptr<auth::ServiceAuth> auth_;
  std::unique_ptr<GrpcDirectory> directory_;
  std::unique_ptr<RoutingService> service_;
  // Declared after the service: the server (inside) stops before the service goes.
  std::unique_ptr<org::test::OrgFixture> org_;
  std::unique_ptr<v1::RoutingService::Stub> stub_;
};

}  // namespace sb::routing::test
