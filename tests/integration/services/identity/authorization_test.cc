// The authorization matrix: for each built-in role and scope, the calls it may and may not make,
// cross-tenant attempts with guessed and real ids (always NotFound or PermissionDenied, never
// data), and privilege escalation attempts.

#include <catch2/catch.hpp>

#include "libs/common/ids.h"
#include "libs/testing/eventually.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

// Org units: root > {east > east-1, west}. Team "t-east" led by the group leader.
const std::string kRoot = "aaaaaaaa-0000-4000-8000-000000000001";
const std::string kEast = "aaaaaaaa-0000-4000-8000-000000000002";
const std::string kEast1 = "aaaaaaaa-0000-4000-8000-000000000003";
const std::string kWest = "aaaaaaaa-0000-4000-8000-000000000004";
const std::string kTeam = "bbbbbbbb-0000-4000-8000-000000000001";

struct World {
  IdentityFixture f;
  TenantInfo a, b;
  std::string head, lm, gl, sup, agent;  // ids in tenant A
  std::string in_subtree, outside, member, report, admin_in_subtree;
  std::string b_user;
  std::string t_head, t_lm, t_gl, t_sup, t_agent, t_b_admin;

  World() {
    a = f.CreateTenant("acme");
    b = f.CreateTenant("bravo");
    FakeOrg& org = f.org();
    org.AddUnit(kRoot);
    org.AddUnit(kEast, kRoot);
    org.AddUnit(kEast1, kEast);
    org.AddUnit(kWest, kRoot);
    head = f.CreateUser(a.admin_token, "head", {"head"});
    lm = f.CreateUser(a.admin_token, "local.mgr", {"local_manager"}, {kEast});
    gl = f.CreateUser(a.admin_token, "group.lead", {"group_leader"});
    sup = f.CreateUser(a.admin_token, "sup", {"supervisor"});
    agent = f.CreateUser(a.admin_token, "agent", {"agent"});
    in_subtree = f.CreateUser(a.admin_token, "east1.agent", {"agent"}, {kEast1});
    outside = f.CreateUser(a.admin_token, "west.agent", {"agent"}, {kWest});
    admin_in_subtree = f.CreateUser(a.admin_token, "east.admin", {"admin"}, {kEast1});
    member = f.CreateUser(a.admin_token, "member", {"agent"});
    report = f.CreateUser(a.admin_token, "report", {"agent"});
    org.AddToTeam(gl, kTeam, /*leader=*/true);
    org.AddToTeam(member, kTeam);
    org.SetManager(report, sup);
    b_user = f.CreateUser(b.admin_token, "bravo.agent", {"agent"});
    t_head = f.Token("acme", "head");
    t_lm = f.Token("acme", "local.mgr");
    t_gl = f.Token("acme", "group.lead");
    t_sup = f.Token("acme", "sup");
    t_agent = f.Token("acme", "agent");
    t_b_admin = b.admin_token;
  }

  grpc::StatusCode GetUser(const std::string& token, const std::string& id,
                           v1::User* out = nullptr) {
    v1::GetUserRequest req;
    req.set_user_id(id);
    v1::User user;
    grpc::Status s = f.stub().GetUser(f.Ctx(token).get(), req, &user);
    if (out) *out = user;
    if (!s.ok()) CHECK(user.ByteSizeLong() == 0);  // never data with an error
    return s.error_code();
  }
  grpc::StatusCode Disable(const std::string& token, const std::string& id) {
    v1::DisableUserRequest req;
    req.set_user_id(id);
    v1::User user;
    grpc::Status s = f.stub().DisableUser(f.Ctx(token).get(), req, &user);
    if (!s.ok()) CHECK(user.ByteSizeLong() == 0);
    return s.error_code();
  }
  grpc::StatusCode Rename(const std::string& token, const std::string& id) {
    v1::UpdateUserRequest req;
    req.mutable_user()->set_id(id);
    req.mutable_user()->set_display_name("Renamed");
    req.mutable_update_mask()->add_paths("display_name");
    v1::User user;
    return f.stub().UpdateUser(f.Ctx(token).get(), req, &user).error_code();
  }
  grpc::StatusCode SetRoles(const std::string& token, const std::string& id,
                            std::vector<std::string> roles) {
    v1::UpdateUserRequest req;
    req.mutable_user()->set_id(id);
    for (const auto& r : roles) req.mutable_user()->add_role_ids(r);
    req.mutable_update_mask()->add_paths("role_ids");
    v1::User user;
    return f.stub().UpdateUser(f.Ctx(token).get(), req, &user).error_code();
  }
  grpc::StatusCode ResetPassword(const std::string& token, const std::string& id) {
    v1::ResetUserPasswordRequest req;
    req.set_user_id(id);
    v1::ResetUserPasswordResponse resp;
    grpc::Status s = f.stub().ResetUserPassword(f.Ctx(token).get(), req, &resp);
    if (!s.ok()) CHECK(resp.generated_password().empty());
    return s.error_code();
  }
  grpc::StatusCode Create(const std::string& token, const std::string& login,
                          std::vector<std::string> roles, std::vector<std::string> units) {
    v1::CreateUserRequest req;
    req.mutable_user()->set_first_name("New");
    req.mutable_user()->set_last_name("Person");
    req.mutable_user()->set_login_name(login);
    for (const auto& r : roles) req.mutable_user()->add_role_ids(r);
    for (const auto& u : units) req.add_org_unit_ids(u);
    req.set_password(kPassword);
    v1::User user;
    return f.stub().CreateUser(f.Ctx(token).get(), req, &user).error_code();
  }
  grpc::StatusCode Grant(const std::string& token, const std::string& id, const std::string& perm,
                         cv1::Scope scope) {
    v1::GrantUserPermissionRequest req;
    req.set_user_id(id);
    req.mutable_grant()->set_permission(perm);
    req.mutable_grant()->set_scope(scope);
    v1::UserPermissions out;
    return f.stub().GrantUserPermission(f.Ctx(token).get(), req, &out).error_code();
  }
  std::set<std::string> Listed(const std::string& token) {
    v1::ListUsersRequest req;
    req.set_page_size(1000);
    v1::ListUsersResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(token).get(), req, &resp));
    std::set<std::string> ids;
    for (const auto& u : resp.users()) ids.insert(u.id());
    return ids;
  }
};

TEST_CASE("Authorization matrix of the built-in roles over users", "[authz]") {
  World w;

  SECTION("agent: own user only") {
    CHECK(w.GetUser(w.t_agent, w.agent) == grpc::OK);
    CHECK(w.GetUser(w.t_agent, w.member) == grpc::NOT_FOUND);
    CHECK(w.Listed(w.t_agent) == std::set<std::string>{w.agent});
    CHECK(w.Rename(w.t_agent, w.agent) == grpc::OK);
    CHECK(w.Rename(w.t_agent, w.member) == grpc::NOT_FOUND);
    CHECK(w.Create(w.t_agent, "by.agent", {"agent"}, {}) == grpc::PERMISSION_DENIED);
    CHECK(w.Disable(w.t_agent, w.member) == grpc::NOT_FOUND);
    CHECK(w.SetRoles(w.t_agent, w.agent, {"admin"}) == grpc::PERMISSION_DENIED);
  }
  SECTION("head: sees every user of the tenant, manages none") {
    CHECK(w.GetUser(w.t_head, w.outside) == grpc::OK);
    CHECK(w.Listed(w.t_head).size() == 11);  // admin + 10 created in A
    CHECK(w.Disable(w.t_head, w.agent) == grpc::PERMISSION_DENIED);
    CHECK(w.Rename(w.t_head, w.agent) == grpc::PERMISSION_DENIED);
    CHECK(w.Create(w.t_head, "by.head", {"agent"}, {}) == grpc::PERMISSION_DENIED);
    CHECK(w.ResetPassword(w.t_head, w.agent) == grpc::PERMISSION_DENIED);
  }
  SECTION("local manager: users of their org-unit subtree, and only as far as their own rights") {
    CHECK(w.GetUser(w.t_lm, w.in_subtree) == grpc::OK);
    CHECK(w.GetUser(w.t_lm, w.outside) == grpc::NOT_FOUND);
    CHECK(w.Listed(w.t_lm) == std::set<std::string>{w.lm, w.in_subtree, w.admin_in_subtree});
    CHECK(w.Rename(w.t_lm, w.in_subtree) == grpc::OK);
    CHECK(w.Disable(w.t_lm, w.outside) == grpc::NOT_FOUND);
    CHECK(w.Create(w.t_lm, "east.new", {"agent"}, {kEast1}) == grpc::OK);
    CHECK(w.Create(w.t_lm, "west.new", {"agent"}, {kWest}) == grpc::PERMISSION_DENIED);
    CHECK(w.Create(w.t_lm, "nowhere.new", {"agent"}, {}) == grpc::PERMISSION_DENIED);
    // Escalation: more than the local manager holds.
    CHECK(w.Create(w.t_lm, "east.admin2", {"admin"}, {kEast1}) == grpc::PERMISSION_DENIED);
    CHECK(w.SetRoles(w.t_lm, w.in_subtree, {"head"}) == grpc::PERMISSION_DENIED);
    CHECK(w.SetRoles(w.t_lm, w.in_subtree, {"local_manager"}) == grpc::OK);
    CHECK(w.SetRoles(w.t_lm, w.lm, {"admin"}) == grpc::PERMISSION_DENIED);
    CHECK(w.Grant(w.t_lm, w.in_subtree, "calls.export", cv1::SCOPE_TENANT) ==
          grpc::PERMISSION_DENIED);
    // Per-user grants are roles.manage's (admins'), not a local manager's.
    CHECK(w.Grant(w.t_lm, w.in_subtree, "calls.export", cv1::SCOPE_ORG_UNIT) ==
          grpc::PERMISSION_DENIED);
    CHECK(w.Grant(w.t_lm, w.lm, "calls.export", cv1::SCOPE_ORG_UNIT) == grpc::PERMISSION_DENIED);
    // An admin inside the subtree outranks the local manager: no takeover by password reset.
    CHECK(w.GetUser(w.t_lm, w.admin_in_subtree) == grpc::OK);
    CHECK(w.ResetPassword(w.t_lm, w.admin_in_subtree) == grpc::PERMISSION_DENIED);
    CHECK(w.Disable(w.t_lm, w.admin_in_subtree) == grpc::PERMISSION_DENIED);
    // Someone placed both inside and outside the subtree is not the local manager's to manage:
    // a new role or password would reach the other unit too.
    w.f.org().PutInUnit(w.in_subtree, kWest);
    CHECK(w.GetUser(w.t_lm, w.in_subtree) == grpc::OK);
    CHECK(w.ResetPassword(w.t_lm, w.in_subtree) == grpc::PERMISSION_DENIED);
    CHECK(w.SetRoles(w.t_lm, w.in_subtree, {"agent"}) == grpc::PERMISSION_DENIED);
    const std::string only_east = w.f.CreateUser(w.a.admin_token, "only.east", {"agent"}, {kEast1});
    CHECK(w.Disable(w.t_lm, only_east) == grpc::OK);
    // Nobody resets their own password without the current one (that is ChangePassword).
    CHECK(w.ResetPassword(w.a.admin_token, w.a.admin_id) == grpc::FAILED_PRECONDITION);
  }
  SECTION("group leader: members of the teams they lead, read-only") {
    CHECK(w.GetUser(w.t_gl, w.member) == grpc::OK);
    CHECK(w.GetUser(w.t_gl, w.outside) == grpc::NOT_FOUND);
    CHECK(w.Listed(w.t_gl) == std::set<std::string>{w.gl, w.member});
    CHECK(w.Disable(w.t_gl, w.member) == grpc::PERMISSION_DENIED);
    CHECK(w.Rename(w.t_gl, w.member) == grpc::PERMISSION_DENIED);
  }
  SECTION("supervisor (reporting manager): the agents who report to them") {
    CHECK(w.GetUser(w.t_sup, w.report) == grpc::OK);
    CHECK(w.GetUser(w.t_sup, w.member) == grpc::NOT_FOUND);
    CHECK(w.Listed(w.t_sup) == std::set<std::string>{w.sup, w.report});
    CHECK(w.Disable(w.t_sup, w.report) == grpc::PERMISSION_DENIED);
  }
  SECTION("admin: everything in the tenant, nothing outside it, never their own rights") {
    CHECK(w.GetUser(w.a.admin_token, w.outside) == grpc::OK);
    CHECK(w.Rename(w.a.admin_token, w.outside) == grpc::OK);
    CHECK(w.Grant(w.a.admin_token, w.a.admin_id, "tenants.manage", cv1::SCOPE_PLATFORM) ==
          grpc::PERMISSION_DENIED);
    CHECK(w.Grant(w.a.admin_token, w.agent, "tenants.manage", cv1::SCOPE_PLATFORM) ==
          grpc::PERMISSION_DENIED);
    CHECK(w.SetRoles(w.a.admin_token, w.agent, {"platform_admin"}) == grpc::PERMISSION_DENIED);
    v1::ListTenantsRequest list;
    v1::ListTenantsResponse tenants;
    CHECK(Code(w.f.stub().ListTenants(w.f.Ctx(w.a.admin_token).get(), list, &tenants)) ==
          grpc::PERMISSION_DENIED);
    CHECK(tenants.tenants_size() == 0);
  }
  SECTION("cross-tenant: real and guessed ids of another tenant are not found, never data") {
    for (const std::string& id : {w.b_user, w.b.admin_id, NewUuid(), std::string("not-a-uuid")}) {
      INFO(id);
      CHECK(w.GetUser(w.a.admin_token, id) == grpc::NOT_FOUND);
      CHECK(w.Disable(w.a.admin_token, id) == grpc::NOT_FOUND);
      CHECK(w.Rename(w.a.admin_token, id) == grpc::NOT_FOUND);
      CHECK(w.ResetPassword(w.a.admin_token, id) == grpc::NOT_FOUND);
      CHECK(w.SetRoles(w.a.admin_token, id, {"agent"}) == grpc::NOT_FOUND);
      CHECK(w.Grant(w.a.admin_token, id, "calls.read", cv1::SCOPE_TENANT) == grpc::NOT_FOUND);
    }
    CHECK(w.GetUser(w.t_b_admin, w.agent) == grpc::NOT_FOUND);
    CHECK(w.Listed(w.t_b_admin).count(w.agent) == 0);
    v1::GetTenantRequest tenant_req;
    tenant_req.set_tenant_id(w.b.id);
    v1::Tenant tenant;
    CHECK(Code(w.f.stub().GetTenant(w.f.Ctx(w.a.admin_token).get(), tenant_req, &tenant)) ==
          grpc::NOT_FOUND);
    CHECK(tenant.ByteSizeLong() == 0);
    v1::BatchGetUsersRequest batch;
    batch.add_user_ids(w.b_user);
    batch.add_user_ids(w.agent);
    v1::BatchGetUsersResponse users;
    SB_REQUIRE_GRPC_OK(w.f.stub().BatchGetUsers(w.f.Ctx(w.a.admin_token).get(), batch, &users));
    REQUIRE(users.users_size() == 1);
    CHECK(users.users(0).id() == w.agent);
  }
  SECTION("platform admin: every tenant") {
    CHECK(w.GetUser(w.f.platform_token(), w.b_user) == grpc::OK);
    v1::GetTenantRequest tenant_req;
    tenant_req.set_tenant_id(w.b.id);
    v1::Tenant tenant;
    SB_REQUIRE_GRPC_OK(
        w.f.stub().GetTenant(w.f.Ctx(w.f.platform_token()).get(), tenant_req, &tenant));
    CHECK(tenant.slug() == "bravo");
    v1::ListTenantsRequest list;
    v1::ListTenantsResponse tenants;
    SB_REQUIRE_GRPC_OK(w.f.stub().ListTenants(w.f.Ctx(w.f.platform_token()).get(), list, &tenants));
    CHECK(tenants.total_size() == 3);  // platform, acme, bravo
  }
  SECTION("when org cannot answer, scoped decisions fail closed with Unavailable") {
    w.f.org().SetDown(true);
    CHECK(w.GetUser(w.t_lm, w.in_subtree) == grpc::UNAVAILABLE);
    CHECK(w.GetUser(w.a.admin_token, w.in_subtree) == grpc::OK);  // tenant-wide needs no facts
    w.f.org().SetDown(false);
  }
}

TEST_CASE("Custom roles: never more than the creator holds; holders' tokens follow changes",
          "[authz]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::CreateRoleRequest req;
  req.mutable_role()->set_name("night_shift_lead");
  req.mutable_role()->set_display_name("Night shift lead");
  auto* p = req.mutable_role()->add_permissions();
  p->set_permission("calls.read");
  p->set_scope(cv1::SCOPE_TENANT);
  v1::Role role;
  SB_REQUIRE_GRPC_OK(f.stub().CreateRole(f.Ctx(acme.admin_token).get(), req, &role));
  CHECK_FALSE(role.builtin());
  CHECK(role.tenant_id() == acme.id);

  SECTION("bad input names the field") {
    v1::CreateRoleRequest bad = req;
    bad.mutable_role()->set_name("night_shift_lead");
    auto ctx = f.Ctx(acme.admin_token);
    CHECK(Code(f.stub().CreateRole(ctx.get(), bad, &role)) == grpc::ALREADY_EXISTS);
    CHECK(ViolationField(*ctx) == "role.name");
    bad.mutable_role()->set_name("other");
    bad.mutable_role()->mutable_permissions(0)->set_permission("calls.fly");
    ctx = f.Ctx(acme.admin_token);
    CHECK(Code(f.stub().CreateRole(ctx.get(), bad, &role)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "role.permissions[0]");
    bad.mutable_role()->mutable_permissions(0)->set_permission("settings.manage");
    bad.mutable_role()->mutable_permissions(0)->set_scope(cv1::SCOPE_OWN);
    ctx = f.Ctx(acme.admin_token);
    CHECK(Code(f.stub().CreateRole(ctx.get(), bad, &role)) == grpc::INVALID_ARGUMENT);
    bad.mutable_role()->mutable_permissions(0)->set_permission("tenants.manage");
    bad.mutable_role()->mutable_permissions(0)->set_scope(cv1::SCOPE_PLATFORM);
    CHECK(Code(f.stub().CreateRole(f.Ctx(acme.admin_token).get(), bad, &role)) ==
          grpc::PERMISSION_DENIED);
  }
  SECTION("a role held by a user changes their tokens and cannot be deleted") {
    const std::string id = f.CreateUser(acme.admin_token, "night", {role.id()});
    const std::string token = f.Token("acme", "night");
    v1::GetCurrentUserResponse me;
    SB_REQUIRE_GRPC_OK(f.stub().GetCurrentUser(f.Ctx(token).get(), {}, &me));
    REQUIRE(me.permissions_size() == 1);
    CHECK(me.permissions(0).permission() == "calls.read");
    v1::UpdateRoleRequest update;
    update.mutable_role()->set_id(role.id());
    auto* q = update.mutable_role()->add_permissions();
    q->set_permission("reports.read");
    q->set_scope(cv1::SCOPE_TENANT);
    update.mutable_update_mask()->add_paths("permissions");
    SB_REQUIRE_GRPC_OK(f.stub().UpdateRole(f.Ctx(acme.admin_token).get(), update, &role));
    // Tokens carry permissions, so the holder's live ones end; the next login has the new ones.
    CHECK(testing::Eventually(
        [&] {
          v1::GetCurrentUserResponse r;
          return Code(f.stub().GetCurrentUser(f.Ctx(token).get(), {}, &r)) == grpc::UNAUTHENTICATED;
        },
        absl::Seconds(2)));
    SB_REQUIRE_GRPC_OK(f.stub().GetCurrentUser(f.Ctx(f.Token("acme", "night")).get(), {}, &me));
    CHECK(me.permissions(me.permissions_size() - 1).permission() == "reports.read");
    v1::DeleteRoleRequest del;
    del.set_role_id(role.id());
    google::protobuf::Empty empty;
    CHECK(Code(f.stub().DeleteRole(f.Ctx(acme.admin_token).get(), del, &empty)) ==
          grpc::FAILED_PRECONDITION);
    v1::DeleteUserRequest del_user;
    del_user.set_user_id(id);
    SB_REQUIRE_GRPC_OK(f.stub().DeleteUser(f.Ctx(acme.admin_token).get(), del_user, &empty));
    SB_REQUIRE_GRPC_OK(f.stub().DeleteRole(f.Ctx(acme.admin_token).get(), del, &empty));
  }
  SECTION("built-in roles cannot be changed or deleted") {
    v1::UpdateRoleRequest update;
    update.mutable_role()->set_id("agent");
    update.mutable_role()->set_display_name("Super agent");
    update.mutable_update_mask()->add_paths("display_name");
    CHECK(Code(f.stub().UpdateRole(f.Ctx(acme.admin_token).get(), update, &role)) ==
          grpc::FAILED_PRECONDITION);
    v1::DeleteRoleRequest del;
    del.set_role_id("admin");
    google::protobuf::Empty empty;
    CHECK(Code(f.stub().DeleteRole(f.Ctx(acme.admin_token).get(), del, &empty)) ==
          grpc::FAILED_PRECONDITION);
  }
  SECTION("ListRoles shows the built-in roles (not platform_admin) and the custom ones") {
    v1::ListRolesRequest list;
    v1::ListRolesResponse roles;
    SB_REQUIRE_GRPC_OK(f.stub().ListRoles(f.Ctx(acme.admin_token).get(), list, &roles));
    std::set<std::string> names;
    for (const auto& r : roles.roles()) names.insert(r.name());
    CHECK(names == std::set<std::string>{"admin", "head", "local_manager", "group_leader",
                                         "supervisor", "agent", "night_shift_lead"});
  }
}

TEST_CASE("Per-user overrides: revoking a role-given permission records a denial", "[authz]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  v1::RevokeUserPermissionRequest revoke;
  revoke.set_user_id(id);
  revoke.set_permission("contacts.access");
  v1::UserPermissions perms;
  SB_REQUIRE_GRPC_OK(f.stub().RevokeUserPermission(f.Ctx(acme.admin_token).get(), revoke, &perms));
  REQUIRE(perms.overrides_size() == 1);
  CHECK(perms.overrides(0).effect() == v1::PermissionOverride::EFFECT_DENY);
  for (const auto& g : perms.effective()) CHECK(g.permission() != "contacts.access");
  v1::GetCurrentUserResponse me;
  SB_REQUIRE_GRPC_OK(f.stub().GetCurrentUser(f.Ctx(f.Token("acme", "anna")).get(), {}, &me));
  for (const auto& g : me.permissions()) CHECK(g.permission() != "contacts.access");

  v1::GrantUserPermissionRequest grant;
  grant.set_user_id(id);
  grant.mutable_grant()->set_permission("contacts.access");
  grant.mutable_grant()->set_scope(cv1::SCOPE_TENANT);
  SB_REQUIRE_GRPC_OK(f.stub().GrantUserPermission(f.Ctx(acme.admin_token).get(), grant, &perms));
  bool tenant_wide = false;
  for (const auto& g : perms.effective()) {
    if (g.permission() == "contacts.access" && g.scope() == cv1::SCOPE_TENANT) tenant_wide = true;
  }
  CHECK(tenant_wide);
}

TEST_CASE("A restricted token (password change pending) can do nothing else", "[authz]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::CreateUserRequest req;
  req.mutable_user()->set_first_name("New");
  req.mutable_user()->set_last_name("Hire");
  req.mutable_user()->set_login_name("newhire");
  req.mutable_user()->set_must_change_password(true);
  req.mutable_user()->add_role_ids("admin");
  req.set_password(kPassword);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().CreateUser(f.Ctx(acme.admin_token).get(), req, &user));
  v1::LoginResponse login = f.Login("acme", "newhire");
  REQUIRE(login.status() == v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED);
  const std::string token = login.tokens().access_token();
  v1::GetUserRequest get;
  get.set_user_id(acme.admin_id);
  v1::User other;
  CHECK(Code(f.stub().GetUser(f.Ctx(token).get(), get, &other)) == grpc::PERMISSION_DENIED);
  v1::ListUsersRequest list;
  v1::ListUsersResponse users;
  CHECK(Code(f.stub().ListUsers(f.Ctx(token).get(), list, &users)) == grpc::PERMISSION_DENIED);
  v1::GetCurrentUserResponse me;
  SB_REQUIRE_GRPC_OK(f.stub().GetCurrentUser(f.Ctx(token).get(), {}, &me));
  CHECK(me.restricted());
}

}  // namespace
}  // namespace sb::identity::test
