// Projects, who works them, and agents' live project selection (Redis).

#include <catch2/catch.hpp>

#include "libs/testing/eventually.h"
#include "tests/integration/services/org/org_fixture.h"

namespace sb::org::test {
namespace {

std::string CreateProject(OrgFixture& f, const std::string& token, const std::string& name,
                          const std::vector<std::string>& teams = {},
                          const std::vector<std::string>& agents = {}) {
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name(name);
  for (const auto& t : teams) req.mutable_project()->add_team_ids(t);
  for (const auto& a : agents) req.mutable_project()->add_agent_user_ids(a);
  v1::Project p;
  SB_REQUIRE_GRPC_OK(f.stub().CreateProject(f.Ctx(token).get(), req, &p));
  return p.id();
}

grpc::Status Select(OrgFixture& f, const std::string& token, const std::string& primary,
                    const std::vector<std::string>& secondary, const std::string& user = "",
                    std::string* field = nullptr) {
  v1::SetProjectSelectionRequest req;
  req.set_user_id(user);
  req.set_primary_project_id(primary);
  for (const auto& s : secondary) req.add_secondary_project_ids(s);
  v1::ProjectSelection out;
  auto ctx = f.Ctx(token);
  grpc::Status s = f.stub().SetProjectSelection(ctx.get(), req, &out);
  if (field != nullptr) *field = ViolationField(*ctx);
  return s;
}

TEST_CASE("projects: teams and agents that work them", "[projects]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string anna = f.CreateUser(admin, "anna", {"agent"});
  const std::string bob = f.CreateUser(admin, "bob", {"agent"});
  const std::string red = f.CreateTeam(admin, "Red", {anna});
  const std::string sales = CreateProject(f, admin, "Sales", {red});
  const std::string vip = CreateProject(f, admin, "VIP", {}, {bob});
  const std::string open = CreateProject(f, admin, "Open to all");

  v1::GetProjectRequest get;
  get.set_project_id(sales);
  v1::Project p;
  SB_REQUIRE_GRPC_OK(f.stub().GetProject(f.Ctx(admin).get(), get, &p));
  CHECK(p.recording_policy() == ::switchboard::common::v1::RECORDING_POLICY_INHERIT);
  CHECK(p.state() == v1::PROJECT_STATE_ACTIVE);
  REQUIRE(p.team_ids_size() == 1);

  // Agents see what they may work: anna Sales (team) and the open one, not VIP.
  v1::ListProjectsResponse mine;
  SB_REQUIRE_GRPC_OK(f.stub().ListProjects(f.Ctx(f.Token("acme", "anna")).get(),
                                           v1::ListProjectsRequest(), &mine));
  std::vector<std::string> names;
  for (const auto& x : mine.projects()) names.push_back(x.name());
  CHECK(names == std::vector<std::string>{"Open to all", "Sales"});
  get.set_project_id(vip);
  CHECK(Code(f.stub().GetProject(f.Ctx(f.Token("acme", "anna")).get(), get, &p)) ==
        grpc::NOT_FOUND);

  v1::CreateProjectRequest bad;
  bad.mutable_project()->set_name("Bad");
  bad.mutable_project()->add_team_ids("6b1d2c3e-2222-4222-8222-222222222222");
  auto ctx = f.Ctx(admin);
  CHECK(Code(f.stub().CreateProject(ctx.get(), bad, &p)) == grpc::INVALID_ARGUMENT);
  CHECK(ViolationField(*ctx) == "project.team_ids[0]");
  bad.mutable_project()->clear_team_ids();
  bad.mutable_project()->set_name("sales");
  CHECK(Code(f.stub().CreateProject(f.Ctx(admin).get(), bad, &p)) == grpc::ALREADY_EXISTS);
  CHECK(Code(f.stub().CreateProject(f.Ctx(f.Token("acme", "anna")).get(), bad, &p)) ==
        grpc::PERMISSION_DENIED);

  // A team that works a project cannot be deleted; an archived project cannot be selected.
  v1::DeleteTeamRequest del_team;
  del_team.set_team_id(red);
  google::protobuf::Empty empty;
  CHECK(Code(f.stub().DeleteTeam(f.Ctx(admin).get(), del_team, &empty)) ==
        grpc::FAILED_PRECONDITION);
  v1::UpdateProjectRequest archive;
  archive.mutable_project()->set_id(open);
  archive.mutable_project()->set_state(v1::PROJECT_STATE_ARCHIVED);
  archive.mutable_update_mask()->add_paths("state");
  SB_REQUIRE_GRPC_OK(f.stub().UpdateProject(f.Ctx(admin).get(), archive, &p));
  CHECK(Code(Select(f, f.Token("acme", "anna"), open, {})) == grpc::FAILED_PRECONDITION);

  // A project with numbers is archived, not deleted.
  v1::CreateNumberRequest num;
  num.mutable_number()->set_number("+3612345678");
  num.mutable_number()->set_project_id(sales);
  v1::Number n;
  SB_REQUIRE_GRPC_OK(f.stub().CreateNumber(f.Ctx(admin).get(), num, &n));
  v1::DeleteProjectRequest del;
  del.set_project_id(sales);
  CHECK(Code(f.stub().DeleteProject(f.Ctx(admin).get(), del, &empty)) == grpc::FAILED_PRECONDITION);
  get.set_project_id(sales);
  SB_REQUIRE_GRPC_OK(f.stub().GetProject(f.Ctx(admin).get(), get, &p));
  REQUIRE(p.number_ids_size() == 1);
  CHECK(p.number_ids(0) == n.id());
  del.set_project_id(vip);
  SB_REQUIRE_GRPC_OK(f.stub().DeleteProject(f.Ctx(admin).get(), del, &empty));
}

TEST_CASE("project selection: live in Redis and offered primary first", "[projects][selection]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string anna = f.CreateUser(admin, "anna", {"agent"});
  const std::string bob = f.CreateUser(admin, "bob", {"agent"});
  const std::string carl = f.CreateUser(admin, "carl", {"agent"});
  const std::string gl = f.CreateUser(admin, "gina", {"group_leader"});
  f.CreateTeam(admin, "Red", {anna, bob}, {gl});
  const std::string sales = CreateProject(f, admin, "Sales");
  const std::string support = CreateProject(f, admin, "Support");
  const std::string vip = CreateProject(f, admin, "VIP", {}, {carl});

  const std::string anna_token = f.Token("acme", "anna");
  const std::string bob_token = f.Token("acme", "bob");
  SB_REQUIRE_GRPC_OK(Select(f, bob_token, support, {sales}));
  SB_REQUIRE_GRPC_OK(Select(f, anna_token, sales, {support}));

  std::string field;
  CHECK(Code(Select(f, anna_token, sales, {sales}, "", &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "secondary_project_ids[0]");
  CHECK(Code(Select(f, anna_token, "", {sales}, "", &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "primary_project_id");
  CHECK(Code(Select(f, anna_token, vip, {}, "", &field)) == grpc::PERMISSION_DENIED);
  CHECK(field == "primary_project_id");
  CHECK(Code(Select(f, anna_token, "6b1d2c3e-2222-4222-8222-222222222222", {}, "", &field)) ==
        grpc::INVALID_ARGUMENT);
  CHECK(field == "primary_project_id");

  // Routing asks (service credential) who selected Sales: anna (primary) before bob (secondary).
  v1::ListProjectSelectionsRequest list;
  list.set_project_id(sales);
  v1::ListProjectSelectionsResponse who;
  SB_REQUIRE_GRPC_OK(f.stub().ListProjectSelections(f.InternalCtx(acme.id).get(), list, &who));
  REQUIRE(who.selections_size() == 2);
  CHECK(who.selections(0).user_id() == anna);
  CHECK(who.selections(1).user_id() == bob);
  list.set_primary_only(true);
  v1::ListProjectSelectionsResponse primary;
  SB_REQUIRE_GRPC_OK(f.stub().ListProjectSelections(f.InternalCtx(acme.id).get(), list, &primary));
  REQUIRE(primary.selections_size() == 1);
  CHECK(primary.selections(0).user_id() == anna);

  // Taken off a project, an agent is no longer offered its calls, selection or not.
  v1::UpdateProjectRequest only_carl;
  only_carl.mutable_project()->set_id(sales);
  only_carl.mutable_project()->add_agent_user_ids(carl);
  only_carl.mutable_update_mask()->add_paths("agent_user_ids");
  v1::Project changed;
  SB_REQUIRE_GRPC_OK(f.stub().UpdateProject(f.Ctx(admin).get(), only_carl, &changed));
  list.set_primary_only(false);
  v1::ListProjectSelectionsResponse after;
  SB_REQUIRE_GRPC_OK(f.stub().ListProjectSelections(f.InternalCtx(acme.id).get(), list, &after));
  CHECK(after.selections_size() == 0);
  only_carl.mutable_project()->clear_agent_user_ids();
  SB_REQUIRE_GRPC_OK(f.stub().UpdateProject(f.Ctx(admin).get(), only_carl, &changed));

  // The group leader sees their team's selections and sets them; an agent sees no one else's.
  v1::ListProjectSelectionsResponse seen;
  SB_REQUIRE_GRPC_OK(f.stub().ListProjectSelections(f.Ctx(f.Token("acme", "gina")).get(),
                                                    v1::ListProjectSelectionsRequest(), &seen));
  CHECK(seen.selections_size() == 2);
  SB_REQUIRE_GRPC_OK(Select(f, f.Token("acme", "gina"), support, {}, anna));
  CHECK(Code(Select(f, f.Token("acme", "gina"), vip, {}, carl)) == grpc::PERMISSION_DENIED);
  CHECK(Code(Select(f, bob_token, support, {}, anna)) == grpc::PERMISSION_DENIED);

  v1::GetProjectSelectionRequest get;
  v1::ProjectSelection sel;
  SB_REQUIRE_GRPC_OK(f.stub().GetProjectSelection(f.Ctx(anna_token).get(), get, &sel));
  CHECK(sel.primary_project_id() == support);
  CHECK(sel.secondary_project_ids_size() == 0);

  // Clearing ends it; so does logging out of the session it was made in.
  SB_REQUIRE_GRPC_OK(Select(f, bob_token, "", {}));
  get.set_user_id(bob);
  CHECK(Code(f.stub().GetProjectSelection(f.Ctx(admin).get(), get, &sel)) == grpc::NOT_FOUND);

  iv1::LoginResponse login = f.identity().Login("acme", "carl");
  const std::string carl_token = login.tokens().access_token();
  SB_REQUIRE_GRPC_OK(Select(f, carl_token, vip, {sales}));
  iv1::LogoutRequest logout;
  logout.set_refresh_token(login.tokens().refresh_token());
  google::protobuf::Empty empty;
  SB_REQUIRE_GRPC_OK(f.identity_stub().Logout(f.Ctx(carl_token).get(), logout, &empty));
  get.set_user_id(carl);
  CHECK(testing::Eventually([&] {
    v1::ProjectSelection s;
    return Code(f.stub().GetProjectSelection(f.Ctx(admin).get(), get, &s)) == grpc::NOT_FOUND;
  }));
}

}  // namespace
}  // namespace sb::org::test
