// Tenants and users through the gRPC API: create, get, list, update, disable, enable, delete,
// clone, password reset, avatars, and the bad input each of them refuses.

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "libs/testing/eventually.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

v1::CreateUserRequest UserRequest(const std::string& login) {
  v1::CreateUserRequest req;
  req.mutable_user()->set_first_name("Erika");
  req.mutable_user()->set_last_name("Mustermann");
  req.mutable_user()->set_login_name(login);
  req.set_password(kPassword);
  return req;
}

struct Refusal {
  grpc::StatusCode code;
  std::string field;
  std::string message;
};

Refusal TryCreate(IdentityFixture& f, const std::string& token, const v1::CreateUserRequest& req) {
  v1::User user;
  auto ctx = f.Ctx(token);
  grpc::Status s = f.stub().CreateUser(ctx.get(), req, &user);
  return {s.error_code(), ViolationField(*ctx), s.error_message()};
}

v1::User Get(IdentityFixture& f, const std::string& token, const std::string& id) {
  v1::GetUserRequest req;
  req.set_user_id(id);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().GetUser(f.Ctx(token).get(), req, &user));
  return user;
}

grpc::Status CurrentUser(IdentityFixture& f, const std::string& token) {
  v1::GetCurrentUserResponse resp;
  return f.stub().GetCurrentUser(f.Ctx(token).get(), v1::GetCurrentUserRequest(), &resp);
}

std::string Png(size_t bytes) {
  std::string data = "\x89PNG\r\n\x1a\n";
  data.resize(bytes, 'x');
  return data;
}

TEST_CASE("CreateTenant makes a tenant and its first admin, who can log in", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::GetTenantRequest req;
  v1::Tenant tenant;
  SB_REQUIRE_GRPC_OK(f.stub().GetTenant(f.Ctx(acme.admin_token).get(), req, &tenant));
  CHECK(tenant.slug() == "acme");
  CHECK(tenant.id() == acme.id);
  CHECK(tenant.state() == v1::TENANT_STATE_ACTIVE);
  CHECK(tenant.time_zone() == "Europe/Budapest");
  CHECK(tenant.recording_policy() == switchboard::common::v1::RECORDING_POLICY_ALWAYS);
  v1::User admin = Get(f, acme.admin_token, acme.admin_id);
  CHECK(admin.role_ids_size() == 1);
  CHECK(admin.role_ids(0) == "admin");
  CHECK(admin.display_name() == "Ada Admin");

  SECTION("a generated first password must be changed at first login") {
    v1::CreateTenantRequest t;
    t.mutable_tenant()->set_slug("beta");
    t.mutable_tenant()->set_display_name("Beta");
    t.mutable_tenant()->set_sip_domain("beta.sip.test");
    t.mutable_admin()->mutable_user()->set_first_name("Bo");
    t.mutable_admin()->mutable_user()->set_last_name("Boss");
    t.mutable_admin()->mutable_user()->set_email("bo@beta.example");
    v1::CreateTenantResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().CreateTenant(f.Ctx(f.platform_token()).get(), t, &resp));
    REQUIRE(resp.admin_initial_password().size() >= 12);
    CHECK(resp.admin().must_change_password());
    v1::LoginResponse login = f.Login("beta", "BO@beta.example", resp.admin_initial_password());
    CHECK(login.status() == v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED);
    CHECK(login.tokens().restricted());
  }
  SECTION("duplicates and bad input name the field") {
    v1::CreateTenantRequest t;
    t.mutable_tenant()->set_slug("acme");
    t.mutable_tenant()->set_display_name("Acme again");
    t.mutable_tenant()->set_sip_domain("other.sip.test");
    t.mutable_admin()->mutable_user()->set_first_name("A");
    t.mutable_admin()->mutable_user()->set_last_name("B");
    t.mutable_admin()->mutable_user()->set_login_name("admin");
    t.mutable_admin()->set_password(kPassword);
    v1::CreateTenantResponse resp;
    auto ctx = f.Ctx(f.platform_token());
    CHECK(Code(f.stub().CreateTenant(ctx.get(), t, &resp)) == grpc::ALREADY_EXISTS);
    CHECK(ViolationField(*ctx) == "tenant.slug");
    t.mutable_tenant()->set_slug("gamma");
    t.mutable_tenant()->set_sip_domain("acme.sip.test");
    ctx = f.Ctx(f.platform_token());
    CHECK(Code(f.stub().CreateTenant(ctx.get(), t, &resp)) == grpc::ALREADY_EXISTS);
    CHECK(ViolationField(*ctx) == "tenant.sip_domain");
    t.mutable_tenant()->set_sip_domain("gamma.sip.test");
    t.mutable_tenant()->set_time_zone("Mars/Olympus_Mons");
    ctx = f.Ctx(f.platform_token());
    CHECK(Code(f.stub().CreateTenant(ctx.get(), t, &resp)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "tenant.time_zone");
    t.mutable_tenant()->set_time_zone("UTC");
    t.mutable_tenant()->set_slug("Bad Slug!");
    ctx = f.Ctx(f.platform_token());
    CHECK(Code(f.stub().CreateTenant(ctx.get(), t, &resp)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "tenant.slug");
  }
  SECTION("a tenant admin cannot create tenants") {
    v1::CreateTenantRequest t;
    t.mutable_tenant()->set_slug("evil");
    v1::CreateTenantResponse resp;
    CHECK(Code(f.stub().CreateTenant(f.Ctx(acme.admin_token).get(), t, &resp)) ==
          grpc::PERMISSION_DENIED);
  }
}

TEST_CASE("CreateUser refuses bad input with InvalidArgument or AlreadyExists naming the field",
          "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.CreateUser(acme.admin_token, "taken", {"agent"});
  {
    v1::CreateUserRequest req = UserRequest("withmail");
    req.mutable_user()->set_email("Erika@Example.com");
    v1::User user;
    SB_REQUIRE_GRPC_OK(f.stub().CreateUser(f.Ctx(acme.admin_token).get(), req, &user));
    CHECK(user.email() == "Erika@Example.com");
  }
  struct Case {
    std::string name;
    std::function<void(v1::CreateUserRequest&)> change;
    grpc::StatusCode code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty first name", [](auto& r) { r.mutable_user()->set_first_name("  "); },
       grpc::INVALID_ARGUMENT, "user.first_name"},
      {"overlong last name",
       [](auto& r) { r.mutable_user()->set_last_name(std::string(101, 'x')); },
       grpc::INVALID_ARGUMENT, "user.last_name"},
      {"bad login characters",
       [](auto& r) { r.mutable_user()->set_login_name("erika mustermann"); },
       grpc::INVALID_ARGUMENT, "user.login_name"},
      {"short login", [](auto& r) { r.mutable_user()->set_login_name("ab"); },
       grpc::INVALID_ARGUMENT, "user.login_name"},
      {"neither login nor email", [](auto& r) { r.mutable_user()->clear_login_name(); },
       grpc::INVALID_ARGUMENT, "user.login_name"},
      {"bad email", [](auto& r) { r.mutable_user()->set_email("erika@"); }, grpc::INVALID_ARGUMENT,
       "user.email"},
      {"email without domain dot", [](auto& r) { r.mutable_user()->set_email("erika@localhost"); },
       grpc::INVALID_ARGUMENT, "user.email"},
      {"unknown time zone", [](auto& r) { r.mutable_user()->set_time_zone("Europe/Atlantis"); },
       grpc::INVALID_ARGUMENT, "user.time_zone"},
      {"unsupported language", [](auto& r) { r.mutable_user()->set_language("fr"); },
       grpc::INVALID_ARGUMENT, "user.language"},
      {"unknown role", [](auto& r) { r.mutable_user()->add_role_ids("wizard"); },
       grpc::INVALID_ARGUMENT, "user.role_ids[0]"},
      {"no password", [](auto& r) { r.clear_password(); }, grpc::INVALID_ARGUMENT, "password"},
      {"mismatched confirmation", [](auto& r) { r.set_password_confirmation("something-else-1"); },
       grpc::INVALID_ARGUMENT, ""},
      {"duplicate login", [](auto& r) { r.mutable_user()->set_login_name("TAKEN"); },
       grpc::ALREADY_EXISTS, "user.login_name"},
      {"duplicate email in another case",
       [](auto& r) {
         r.mutable_user()->set_login_name("other");
         r.mutable_user()->set_email("erika@EXAMPLE.com");
       },
       grpc::ALREADY_EXISTS, "user.email"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      v1::CreateUserRequest req = UserRequest("fresh.user");
      c.change(req);
      Refusal r = TryCreate(f, acme.admin_token, req);
      INFO(r.message);
      CHECK(r.code == c.code);
      if (!c.field.empty()) {
        CHECK(r.field == c.field);
        CHECK(absl::StartsWith(r.message, c.field));
      }
    }
  }
  SECTION("weak passwords name the password field") {
    for (const char* weak : {"password1", "short", "aaaaaaaaaaaa", "1234567890", "fresh.user99"}) {
      v1::CreateUserRequest req = UserRequest("fresh.user");
      req.set_password(weak);
      Refusal r = TryCreate(f, acme.admin_token, req);
      INFO(weak << ": " << r.message);
      CHECK(r.code == grpc::INVALID_ARGUMENT);
      CHECK(absl::StartsWith(r.message, "password"));
    }
  }
  SECTION("mismatched confirmation names the confirmation") {
    v1::CreateUserRequest req = UserRequest("fresh.user");
    req.set_password_confirmation("Correct-Horse-42-Batterx");
    Refusal r = TryCreate(f, acme.admin_token, req);
    CHECK(r.code == grpc::INVALID_ARGUMENT);
    CHECK(absl::StartsWith(r.message, "password_confirmation"));
  }
}

TEST_CASE("ListUsers filters by text, role and state, and pages with tokens bound to the query",
          "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  for (int i = 0; i < 5; ++i)
    f.CreateUser(acme.admin_token, "agent" + std::to_string(i), {"agent"});
  const std::string head = f.CreateUser(acme.admin_token, "the.head", {"head"});

  v1::ListUsersRequest req;
  req.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    v1::ListUsersResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), req, &resp));
    CHECK(resp.total_size() == 7);  // 5 agents, head, admin
    for (const auto& u : resp.users()) seen.push_back(u.id());
    req.set_page_token(resp.next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 10);
  CHECK(pages == 4);
  CHECK(seen.size() == 7);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 7);

  SECTION("a page token used with other filters is refused") {
    v1::ListUsersRequest first;
    first.set_page_size(2);
    v1::ListUsersResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), first, &resp));
    v1::ListUsersRequest other;
    other.set_page_token(resp.next_page_token());
    other.set_query("agent");
    auto ctx = f.Ctx(acme.admin_token);
    CHECK(Code(f.stub().ListUsers(ctx.get(), other, &resp)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "page_token");
  }
  SECTION("filters") {
    v1::ListUsersRequest by_role;
    by_role.set_role_id("head");
    v1::ListUsersResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), by_role, &resp));
    REQUIRE(resp.users_size() == 1);
    CHECK(resp.users(0).id() == head);

    v1::ListUsersRequest by_text;
    by_text.set_query("AGENT3");
    resp.Clear();
    SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), by_text, &resp));
    REQUIRE(resp.users_size() == 1);
    CHECK(resp.users(0).login_name() == "agent3");
  }
}

TEST_CASE("UpdateUser changes the named fields only; a changed email is no longer verified",
          "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::CreateUserRequest create = UserRequest("erika");
  create.mutable_user()->set_email("erika@acme.example");
  create.mutable_user()->set_email_verified(true);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().CreateUser(f.Ctx(acme.admin_token).get(), create, &user));
  CHECK(user.email_verified());

  v1::UpdateUserRequest req;
  req.mutable_user()->set_id(user.id());
  req.mutable_user()->set_email("erika.m@acme.example");
  req.mutable_user()->set_time_zone("America/New_York");
  req.mutable_user()->set_last_name("IGNORED, not in mask");
  req.mutable_update_mask()->add_paths("email");
  req.mutable_update_mask()->add_paths("time_zone");
  v1::User updated;
  SB_REQUIRE_GRPC_OK(f.stub().UpdateUser(f.Ctx(acme.admin_token).get(), req, &updated));
  CHECK(updated.email() == "erika.m@acme.example");
  CHECK_FALSE(updated.email_verified());
  CHECK(updated.time_zone() == "America/New_York");
  CHECK(updated.last_name() == "Mustermann");

  SECTION("an unknown time zone or mask field is refused by name") {
    req.mutable_update_mask()->Clear();
    req.mutable_update_mask()->add_paths("time_zone");
    req.mutable_user()->set_time_zone("Nowhere/Special");
    auto ctx = f.Ctx(acme.admin_token);
    CHECK(Code(f.stub().UpdateUser(ctx.get(), req, &updated)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "user.time_zone");
    req.mutable_update_mask()->Clear();
    req.mutable_update_mask()->add_paths("password_hash");
    ctx = f.Ctx(acme.admin_token);
    CHECK(Code(f.stub().UpdateUser(ctx.get(), req, &updated)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "update_mask");
  }
  SECTION("users edit their own name and language, but not their roles") {
    const std::string token = f.Token("acme", "erika");
    v1::UpdateUserRequest self;
    self.mutable_user()->set_id(user.id());
    self.mutable_user()->set_language("de");
    self.mutable_update_mask()->add_paths("language");
    SB_REQUIRE_GRPC_OK(f.stub().UpdateUser(f.Ctx(token).get(), self, &updated));
    CHECK(updated.language() == "de");
    self.mutable_user()->add_role_ids("admin");
    self.mutable_update_mask()->add_paths("role_ids");
    CHECK(Code(f.stub().UpdateUser(f.Ctx(token).get(), self, &updated)) == grpc::PERMISSION_DENIED);
    CHECK(Get(f, acme.admin_token, user.id()).role_ids(0) == "agent");
  }
}

TEST_CASE("Disabling a user ends their tokens within a second; enabling lets them back in",
          "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string token = f.Token("acme", "anna");
  SB_REQUIRE_GRPC_OK(CurrentUser(f, token));

  v1::DisableUserRequest disable;
  disable.set_user_id(id);
  disable.set_reason("left the company");
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().DisableUser(f.Ctx(acme.admin_token).get(), disable, &user));
  CHECK(user.state() == v1::USER_STATE_DISABLED);
  const absl::Time disabled_at = absl::Now();
  CHECK(testing::Eventually([&] { return Code(CurrentUser(f, token)) == grpc::UNAUTHENTICATED; },
                            absl::Seconds(1)));
  INFO("revoked after " << absl::FormatDuration(absl::Now() - disabled_at));
  CHECK(absl::Now() - disabled_at < absl::Seconds(1));

  v1::LoginRequest login;
  login.set_tenant_slug("acme");
  login.set_login("anna");
  login.set_password(kPassword);
  v1::LoginResponse resp;
  CHECK(Code(f.stub().Login(f.Ctx().get(), login, &resp)) == grpc::FAILED_PRECONDITION);
  CHECK(Code(f.stub().DisableUser(f.Ctx(acme.admin_token).get(), disable, &user)) ==
        grpc::FAILED_PRECONDITION);

  v1::EnableUserRequest enable;
  enable.set_user_id(id);
  SB_REQUIRE_GRPC_OK(f.stub().EnableUser(f.Ctx(acme.admin_token).get(), enable, &user));
  CHECK(user.state() == v1::USER_STATE_ACTIVE);
  SB_REQUIRE_GRPC_OK(CurrentUser(f, f.Token("acme", "anna")));
}

TEST_CASE("Deleting a user keeps their record for history and frees the login", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  v1::DeleteUserRequest del;
  del.set_user_id(id);
  google::protobuf::Empty empty;
  SB_REQUIRE_GRPC_OK(f.stub().DeleteUser(f.Ctx(acme.admin_token).get(), del, &empty));
  v1::User gone = Get(f, acme.admin_token, id);
  CHECK(gone.state() == v1::USER_STATE_DELETED);
  CHECK(gone.display_name() == "First anna Last");
  CHECK(gone.has_deleted_at());
  CHECK(f.org().released().contains(id));

  v1::ListUsersRequest list;
  v1::ListUsersResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), list, &resp));
  for (const auto& u : resp.users()) CHECK(u.id() != id);
  list.set_state(v1::USER_STATE_DELETED);
  resp.Clear();
  SB_REQUIRE_GRPC_OK(f.stub().ListUsers(f.Ctx(acme.admin_token).get(), list, &resp));
  REQUIRE(resp.users_size() == 1);
  CHECK(resp.users(0).id() == id);

  const std::string again = f.CreateUser(acme.admin_token, "anna", {"agent"});
  CHECK(again != id);
  CHECK(Code(f.stub().DeleteUser(f.Ctx(acme.admin_token).get(), del, &empty)) == grpc::NOT_FOUND);
}

TEST_CASE("The tenant's last admin cannot be disabled, deleted or demoted", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string second = f.CreateUser(acme.admin_token, "second.admin", {"admin"});
  const std::string token2 = f.Token("acme", "second.admin");
  v1::DeleteUserRequest del;
  del.set_user_id(acme.admin_id);
  google::protobuf::Empty empty;
  SB_REQUIRE_GRPC_OK(f.stub().DeleteUser(f.Ctx(token2).get(), del, &empty));
  // second.admin is now the only one; another admin-capable account is a platform admin's job.
  v1::UpdateUserRequest demote;
  demote.mutable_user()->set_id(second);
  demote.mutable_user()->add_role_ids("agent");
  demote.mutable_update_mask()->add_paths("role_ids");
  v1::User user;
  CHECK(Code(f.stub().UpdateUser(f.Ctx(token2).get(), demote, &user)) ==
        grpc::PERMISSION_DENIED);  // own roles
  const std::string third = f.CreateUser(token2, "third", {"agent"});
  v1::UpdateUserRequest promote;
  promote.mutable_user()->set_id(third);
  promote.mutable_user()->add_role_ids("admin");
  promote.mutable_update_mask()->add_paths("role_ids");
  SB_REQUIRE_GRPC_OK(f.stub().UpdateUser(f.Ctx(token2).get(), promote, &user));
  const std::string token3 = f.Token("acme", "third");
  v1::DisableUserRequest disable;
  disable.set_user_id(second);
  SB_REQUIRE_GRPC_OK(f.stub().DisableUser(f.Ctx(token3).get(), disable, &user));
  // third is the last active admin now.
  demote.mutable_user()->set_id(third);
  CHECK(Code(f.stub().UpdateUser(f.Ctx(f.platform_token()).get(), demote, &user)) ==
        grpc::FAILED_PRECONDITION);
}

TEST_CASE("CloneUser copies roles, overrides, settings and placement under a new login",
          "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.org().AddUnit("11111111-1111-4111-8111-111111111111");
  v1::CreateUserRequest create = UserRequest("template.agent");
  create.mutable_user()->add_role_ids("agent");
  create.mutable_user()->add_role_ids("group_leader");
  create.mutable_user()->set_time_zone("Europe/Berlin");
  create.mutable_user()->set_language("de");
  create.add_org_unit_ids("11111111-1111-4111-8111-111111111111");
  v1::User source;
  SB_REQUIRE_GRPC_OK(f.stub().CreateUser(f.Ctx(acme.admin_token).get(), create, &source));
  v1::GrantUserPermissionRequest grant;
  grant.set_user_id(source.id());
  grant.mutable_grant()->set_permission("calls.export");
  grant.mutable_grant()->set_scope(switchboard::common::v1::SCOPE_TEAM);
  v1::UserPermissions perms;
  SB_REQUIRE_GRPC_OK(f.stub().GrantUserPermission(f.Ctx(acme.admin_token).get(), grant, &perms));

  v1::CloneUserRequest clone;
  clone.set_source_user_id(source.id());
  clone.set_first_name("Max");
  clone.set_last_name("Muster");
  clone.set_login_name("max");
  clone.set_password("Another-Good-Passphrase-7");
  clone.set_must_change_password(true);
  v1::User copy;
  SB_REQUIRE_GRPC_OK(f.stub().CloneUser(f.Ctx(acme.admin_token).get(), clone, &copy));
  CHECK(copy.id() != source.id());
  CHECK(copy.login_name() == "max");
  CHECK(copy.display_name() == "Max Muster");
  CHECK(copy.time_zone() == "Europe/Berlin");
  CHECK(copy.language() == "de");
  CHECK(copy.must_change_password());
  CHECK(std::vector<std::string>(copy.role_ids().begin(), copy.role_ids().end()) ==
        std::vector<std::string>{"agent", "group_leader"});
  CHECK(f.org().UnitsOf(copy.id()) ==
        std::vector<std::string>{"11111111-1111-4111-8111-111111111111"});
  v1::GetUserPermissionsRequest get;
  get.set_user_id(copy.id());
  SB_REQUIRE_GRPC_OK(f.stub().GetUserPermissions(f.Ctx(acme.admin_token).get(), get, &perms));
  REQUIRE(perms.overrides_size() == 1);
  CHECK(perms.overrides(0).grant().permission() == "calls.export");
  CHECK(f.Login("acme", "max", "Another-Good-Passphrase-7").status() ==
        v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED);

  clone.set_login_name("template.agent");
  auto ctx = f.Ctx(acme.admin_token);
  CHECK(Code(f.stub().CloneUser(ctx.get(), clone, &copy)) == grpc::ALREADY_EXISTS);
  CHECK(ViolationField(*ctx) == "login_name");
}

TEST_CASE("ResetUserPassword revokes sessions and forces a change at next login", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string old_token = f.Token("acme", "anna");
  v1::ResetUserPasswordRequest req;
  req.set_user_id(id);
  v1::ResetUserPasswordResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().ResetUserPassword(f.Ctx(acme.admin_token).get(), req, &resp));
  REQUIRE(resp.generated_password().size() >= 12);
  CHECK(testing::Eventually(
      [&] { return Code(CurrentUser(f, old_token)) == grpc::UNAUTHENTICATED; }, absl::Seconds(1)));
  v1::LoginResponse login = f.Login("acme", "anna", resp.generated_password());
  CHECK(login.status() == v1::LoginResponse::STATUS_PASSWORD_CHANGE_REQUIRED);
  v1::LoginRequest old;
  old.set_tenant_slug("acme");
  old.set_login("anna");
  old.set_password(kPassword);
  v1::LoginResponse refused;
  CHECK(Code(f.stub().Login(f.Ctx().get(), old, &refused)) == grpc::UNAUTHENTICATED);
}

TEST_CASE("Avatars: type and size are checked against the content", "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string token = f.Token("acme", "anna");
  v1::UploadUserAvatarRequest req;
  req.set_user_id(id);
  req.set_content_type("image/png");
  v1::User user;
  auto refuse = [&](const std::string& field) {
    auto ctx = f.Ctx(token);
    CHECK(Code(f.stub().UploadUserAvatar(ctx.get(), req, &user)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == field);
  };
  req.set_data(Png((1 << 20) + 1));
  refuse("data");
  req.set_data("GIF89a not a png at all");
  refuse("data");
  req.set_content_type("image/gif");
  req.set_data("GIF89a");
  refuse("content_type");
  req.set_content_type("image/png");
  req.set_data(Png(2048));
  SB_REQUIRE_GRPC_OK(f.stub().UploadUserAvatar(f.Ctx(token).get(), req, &user));
  CHECK(absl::StartsWith(user.avatar_url(), "/api/v1/users/" + id + "/avatar"));
  v1::GetUserAvatarRequest get;
  get.set_user_id(id);
  v1::GetUserAvatarResponse avatar;
  SB_REQUIRE_GRPC_OK(f.stub().GetUserAvatar(f.Ctx(acme.admin_token).get(), get, &avatar));
  CHECK(avatar.data() == Png(2048));
  CHECK(avatar.content_type() == "image/png");
  CHECK_FALSE(avatar.etag().empty());
  v1::DeleteUserAvatarRequest del;
  del.set_user_id(id);
  SB_REQUIRE_GRPC_OK(f.stub().DeleteUserAvatar(f.Ctx(token).get(), del, &user));
  CHECK(user.avatar_url().empty());
  CHECK(Code(f.stub().GetUserAvatar(f.Ctx(token).get(), get, &avatar)) == grpc::NOT_FOUND);
}

TEST_CASE("UpdateTenant: settings by the tenant admin, state only by the platform admin",
          "[users]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::UpdateTenantRequest req;
  req.mutable_tenant()->set_display_name("ACME Call Center");
  req.mutable_tenant()->mutable_security()->set_password_min_length(14);
  req.mutable_update_mask()->add_paths("display_name");
  req.mutable_update_mask()->add_paths("security.password_min_length");
  v1::Tenant tenant;
  SB_REQUIRE_GRPC_OK(f.stub().UpdateTenant(f.Ctx(acme.admin_token).get(), req, &tenant));
  CHECK(tenant.display_name() == "ACME Call Center");
  CHECK(tenant.security().password_min_length() == 14);
  // The new minimum applies to new passwords.
  v1::CreateUserRequest create = UserRequest("shortpass");
  create.set_password("Good-Pass-77");  // 12 characters
  CHECK(TryCreate(f, acme.admin_token, create).code == grpc::INVALID_ARGUMENT);

  v1::UpdateTenantRequest suspend;
  suspend.mutable_tenant()->set_id(acme.id);
  suspend.mutable_tenant()->set_state(v1::TENANT_STATE_SUSPENDED);
  suspend.mutable_update_mask()->add_paths("state");
  CHECK(Code(f.stub().UpdateTenant(f.Ctx(acme.admin_token).get(), suspend, &tenant)) ==
        grpc::PERMISSION_DENIED);
  SB_REQUIRE_GRPC_OK(f.stub().UpdateTenant(f.Ctx(f.platform_token()).get(), suspend, &tenant));
  CHECK(tenant.state() == v1::TENANT_STATE_SUSPENDED);
  CHECK(testing::Eventually(
      [&] { return Code(CurrentUser(f, acme.admin_token)) == grpc::UNAUTHENTICATED; },
      absl::Seconds(1)));
  v1::LoginRequest login;
  login.set_tenant_slug("acme");
  login.set_login("admin");
  login.set_password(kPassword);
  v1::LoginResponse resp;
  CHECK(Code(f.stub().Login(f.Ctx().get(), login, &resp)) == grpc::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace sb::identity::test
