// The remaining operations end to end: deleting tenants, the permission catalog and roles by id,
// ListUsers' org-unit and team filters (facts from org), and secrets kept out of the logs.

#include <catch2/catch.hpp>

#include <sstream>

#include "libs/testing/eventually.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

std::set<std::string> ListIds(IdentityFixture& f, const std::string& token,
                              const v1::ListUsersRequest& req) {
  v1::ListUsersResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(token).get(), req, &resp));
  std::set<std::string> ids;
  for (const auto& u : resp.users()) ids.insert(u.id());
  return ids;
}

TEST_CASE("DeleteTenant stops the tenant's logins and tokens at once", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::DeleteTenantRequest req;
  req.set_tenant_id(acme.id);
  google::protobuf::Empty empty;
  CHECK(Code(f.stub().DeleteTenant(f.Ctx(acme.admin_token).get(), req, &empty)) ==
        grpc::PERMISSION_DENIED);
  SB_REQUIRE_GRPC_OK(f.stub().DeleteTenant(f.Ctx(f.platform_token()).get(), req, &empty));
  CHECK(testing::Eventually(
      [&] {
        v1::GetCurrentUserResponse me;
        return Code(f.stub().GetCurrentUser(f.Ctx(acme.admin_token).get(), {}, &me)) ==
               grpc::UNAUTHENTICATED;
      },
      absl::Seconds(1)));
  v1::LoginRequest login;
  login.set_tenant_slug("acme");
  login.set_login("admin");
  login.set_password(kPassword);
  v1::LoginResponse resp;
  CHECK(Code(f.stub().Login(f.Ctx().get(), login, &resp)) == grpc::FAILED_PRECONDITION);
  v1::GetTenantRequest get;
  get.set_tenant_id(acme.id);
  v1::Tenant tenant;
  SB_REQUIRE_GRPC_OK(f.stub().GetTenant(f.Ctx(f.platform_token()).get(), get, &tenant));
  CHECK(tenant.state() == v1::TENANT_STATE_DELETED);
  CHECK(Code(f.stub().DeleteTenant(f.Ctx(f.platform_token()).get(), req, &empty)) ==
        grpc::NOT_FOUND);
}

TEST_CASE("ListPermissions and GetRole describe the catalog and the built-in roles", "[authz]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::ListPermissionsResponse catalog;
  SB_REQUIRE_GRPC_OK(f.stub().ListPermissions(f.Ctx(acme.admin_token).get(), {}, &catalog));
  std::map<std::string, v1::PermissionInfo> by_name;
  for (const auto& p : catalog.permissions()) by_name[p.permission()] = p;
  for (const char* name : {"users.manage", "pins.manage", "recordings.listen", "calls.export",
                           "contacts.access", "objects.delete", "settings.manage"}) {
    INFO(name);
    REQUIRE(by_name.contains(name));
    CHECK_FALSE(by_name[name].description().empty());
  }
  // Tenants never see the platform scope offered.
  for (const auto& p : catalog.permissions()) {
    for (int s : p.allowed_scopes()) CHECK(s != cv1::SCOPE_PLATFORM);
  }
  v1::GetRoleRequest get;
  get.set_role_id("local_manager");
  v1::Role role;
  SB_REQUIRE_GRPC_OK(f.stub().GetRole(f.Ctx(acme.admin_token).get(), get, &role));
  CHECK(role.builtin());
  CHECK(role.display_name() == "Local Manager");
  bool manages_users_in_subtree = false;
  for (const auto& g : role.permissions()) {
    if (g.permission() == "users.manage") {
      manages_users_in_subtree = g.scope() == cv1::SCOPE_ORG_UNIT;
    }
  }
  CHECK(manages_users_in_subtree);
  get.set_role_id("platform_admin");
  CHECK(Code(f.stub().GetRole(f.Ctx(acme.admin_token).get(), get, &role)) == grpc::NOT_FOUND);
  get.set_role_id("00000000-0000-4000-8000-000000000000");
  CHECK(Code(f.stub().GetRole(f.Ctx(acme.admin_token).get(), get, &role)) == grpc::NOT_FOUND);
}

TEST_CASE("ListUsers filters by org unit (with its subtree) and by team", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string root = "cccccccc-0000-4000-8000-000000000001";
  const std::string child = "cccccccc-0000-4000-8000-000000000002";
  const std::string team = "dddddddd-0000-4000-8000-000000000001";
  f.org().AddUnit(root);
  f.org().AddUnit(child, root);
  const std::string at_root = f.CreateUser(acme.admin_token, "at.root", {"agent"}, {root});
  const std::string at_child =
      f.CreateUser(acme.admin_token, "at.child", {"agent"}, {child}, {team});
  f.CreateUser(acme.admin_token, "nowhere", {"agent"});
  v1::ListUsersRequest req;
  req.set_org_unit_id(root);
  CHECK(ListIds(f, acme.admin_token, req) == std::set<std::string>{at_root});
  req.set_include_subtree(true);
  CHECK(ListIds(f, acme.admin_token, req) == std::set<std::string>{at_root, at_child});
  v1::ListUsersRequest by_team;
  by_team.set_team_id(team);
  CHECK(ListIds(f, acme.admin_token, by_team) == std::set<std::string>{at_child});
  f.org().SetDown(true);
  v1::ListUsersResponse resp;
  CHECK(Code(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), by_team, &resp)) ==
        grpc::UNAVAILABLE);
  f.org().SetDown(false);
}

TEST_CASE("Passwords PINs and secrets never reach the logs", "[users][sessions]") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  const auto level = logger->level();
  logger->set_level(spdlog::level::trace);
  {
    IdentityFixture f;
    TenantInfo acme = f.CreateTenant("acme");
    const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
    v1::LoginRequest wrong;
    wrong.set_tenant_slug("acme");
    wrong.set_login("anna");
    wrong.set_password("Wrong-Password-Attempt-77");
    v1::LoginResponse resp;
    CHECK(Code(f.stub().Login(f.Ctx().get(), wrong, &resp)) == grpc::UNAUTHENTICATED);
    v1::CreatePinRequest pin;
    pin.set_user_id(id);
    pin.set_pin("583920");
    v1::CreatePinResponse created;
    SB_REQUIRE_GRPC_OK(f.stub().CreatePin(f.Ctx(acme.admin_token).get(), pin, &created));
    v1::ResetUserPasswordRequest reset;
    reset.set_user_id(id);
    v1::ResetUserPasswordResponse generated;
    SB_REQUIRE_GRPC_OK(
        f.stub().ResetUserPassword(f.Ctx(acme.admin_token).get(), reset, &generated));
    const std::string log = captured.str();
    CHECK(log.find("identity") != std::string::npos);  // the sink did capture the service's lines
    for (const std::string& secret :
         {std::string(kPassword), std::string("Wrong-Password-Attempt-77"), std::string("583920"),
          generated.generated_password(), std::string(kPlatformAdminPassword)}) {
      INFO(secret);
      CHECK(log.find(secret) == std::string::npos);
    }
  }
  logger->set_level(level);
  auto& sinks = logger->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
}

}  // namespace
}  // namespace sb::identity::test
