// Org units, placement, reporting managers and the scope facts libs/auth asks for.

#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/integration/services/org/org_fixture.h"

namespace sb::org::test {
namespace {

using ::switchboard::common::v1::SCOPE_ORG_UNIT;
using ::switchboard::common::v1::SCOPE_REPORTS;
using ::switchboard::common::v1::SCOPE_TEAM;
using ::switchboard::common::v1::SCOPE_TENANT;

bool Has(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

v1::ResolveScopeResponse Resolve(OrgFixture& f, const std::string& tenant, const std::string& user,
                                 ::switchboard::common::v1::Scope scope) {
  v1::ResolveScopeRequest req;
  req.set_tenant_id(tenant);
  req.set_user_id(user);
  req.set_scope(scope);
  v1::ResolveScopeResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().ResolveScope(f.InternalCtx().get(), req, &resp));
  return resp;
}

TEST_CASE("org units form a tree that cannot fold into itself", "[units]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string hq = f.CreateOrgUnit(admin, "Headquarters");
  const std::string sales = f.CreateOrgUnit(admin, "Sales", hq);
  const std::string north = f.CreateOrgUnit(admin, "North", sales);
  const std::string support = f.CreateOrgUnit(admin, "Support", hq);

  SECTION("listed parents before children with ancestors and counts") {
    v1::ListOrgUnitsRequest req;
    v1::ListOrgUnitsResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListOrgUnits(f.Ctx(admin).get(), req, &resp));
    REQUIRE(resp.org_units_size() == 4);
    CHECK(resp.total_size() == 4);
    CHECK(resp.org_units(0).id() == hq);
    CHECK(resp.org_units(1).id() == sales);
    CHECK(resp.org_units(2).id() == north);
    CHECK(resp.org_units(3).id() == support);
    CHECK(resp.org_units(0).child_count() == 2);
    REQUIRE(resp.org_units(2).ancestor_ids_size() == 2);
    CHECK(resp.org_units(2).ancestor_ids(0) == hq);
    CHECK(resp.org_units(2).ancestor_ids(1) == sales);

    req.set_root_id(sales);
    v1::ListOrgUnitsResponse sub;
    SB_REQUIRE_GRPC_OK(f.stub().ListOrgUnits(f.Ctx(admin).get(), req, &sub));
    REQUIRE(sub.org_units_size() == 2);
    CHECK(sub.org_units(0).id() == sales);
    CHECK(sub.org_units(1).id() == north);
  }

  SECTION("moving a unit under its own child is refused") {
    v1::MoveOrgUnitRequest req;
    req.set_org_unit_id(sales);
    req.set_new_parent_id(north);
    v1::OrgUnit out;
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().MoveOrgUnit(ctx.get(), req, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "new_parent_id");
    req.set_new_parent_id(sales);
    auto self = f.Ctx(admin);
    CHECK(Code(f.stub().MoveOrgUnit(self.get(), req, &out)) == grpc::INVALID_ARGUMENT);

    // A legal move carries the subtree along.
    req.set_org_unit_id(sales);
    req.set_new_parent_id(support);
    SB_REQUIRE_GRPC_OK(f.stub().MoveOrgUnit(f.Ctx(admin).get(), req, &out));
    CHECK(out.parent_id() == support);
    v1::GetOrgUnitRequest get;
    get.set_org_unit_id(north);
    v1::OrgUnit n;
    SB_REQUIRE_GRPC_OK(f.stub().GetOrgUnit(f.Ctx(admin).get(), get, &n));
    REQUIRE(n.ancestor_ids_size() == 3);
    CHECK(n.ancestor_ids(1) == support);
  }

  SECTION("sibling names are unique and names are required") {
    v1::CreateOrgUnitRequest req;
    req.mutable_org_unit()->set_name("sales");
    req.mutable_org_unit()->set_parent_id(hq);
    v1::OrgUnit out;
    CHECK(Code(f.stub().CreateOrgUnit(f.Ctx(admin).get(), req, &out)) == grpc::ALREADY_EXISTS);
    req.mutable_org_unit()->set_parent_id(support);
    SB_REQUIRE_GRPC_OK(f.stub().CreateOrgUnit(f.Ctx(admin).get(), req, &out));
    req.mutable_org_unit()->set_name("  ");
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().CreateOrgUnit(ctx.get(), req, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "org_unit.name");
    req.mutable_org_unit()->set_name("Orphans");
    req.mutable_org_unit()->set_parent_id("7d0f5b7e-0000-4000-8000-000000000000");
    auto missing = f.Ctx(admin);
    CHECK(Code(f.stub().CreateOrgUnit(missing.get(), req, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*missing) == "org_unit.parent_id");
  }

  SECTION("a unit with users or children cannot be deleted") {
    const std::string anna = f.CreateUser(admin, "anna", {"agent"}, {north});
    v1::DeleteOrgUnitRequest del;
    google::protobuf::Empty empty;
    del.set_org_unit_id(north);
    CHECK(Code(f.stub().DeleteOrgUnit(f.Ctx(admin).get(), del, &empty)) ==
          grpc::FAILED_PRECONDITION);
    del.set_org_unit_id(sales);
    CHECK(Code(f.stub().DeleteOrgUnit(f.Ctx(admin).get(), del, &empty)) ==
          grpc::FAILED_PRECONDITION);
    v1::SetUserOrgUnitsRequest move;
    move.set_user_id(anna);
    move.add_org_unit_ids(support);
    v1::UserPlacement placed;
    SB_REQUIRE_GRPC_OK(f.stub().SetUserOrgUnits(f.Ctx(admin).get(), move, &placed));
    del.set_org_unit_id(north);
    SB_REQUIRE_GRPC_OK(f.stub().DeleteOrgUnit(f.Ctx(admin).get(), del, &empty));
  }

  SECTION("another tenant sees none of it") {
    TenantInfo other = f.CreateTenant("globex");
    v1::GetOrgUnitRequest get;
    get.set_org_unit_id(hq);
    v1::OrgUnit out;
    CHECK(Code(f.stub().GetOrgUnit(f.Ctx(other.admin_token).get(), get, &out)) == grpc::NOT_FOUND);
    v1::ListOrgUnitsResponse list;
    SB_REQUIRE_GRPC_OK(
        f.stub().ListOrgUnits(f.Ctx(other.admin_token).get(), v1::ListOrgUnitsRequest(), &list));
    CHECK(list.org_units_size() == 0);
    v1::MoveOrgUnitRequest move;
    move.set_org_unit_id(north);
    v1::OrgUnit moved;
    CHECK(Code(f.stub().MoveOrgUnit(f.Ctx(other.admin_token).get(), move, &moved)) ==
          grpc::NOT_FOUND);
  }
}

TEST_CASE("users placed by identity show in placement and in scope facts", "[units][scope]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string hq = f.CreateOrgUnit(admin, "HQ");
  const std::string sales = f.CreateOrgUnit(admin, "Sales", hq);
  const std::string north = f.CreateOrgUnit(admin, "North", sales);
  const std::string support = f.CreateOrgUnit(admin, "Support", hq);
  const std::string lm = f.CreateUser(admin, "lena", {"local_manager"}, {sales});
  const std::string anna = f.CreateUser(admin, "anna", {"agent"}, {north});
  const std::string bob = f.CreateUser(admin, "bob", {"agent"}, {support});

  v1::GetUserPlacementRequest get;
  get.set_user_id(anna);
  v1::UserPlacement p;
  SB_REQUIRE_GRPC_OK(f.stub().GetUserPlacement(f.Ctx(admin).get(), get, &p));
  REQUIRE(p.org_unit_ids_size() == 1);
  CHECK(p.org_unit_ids(0) == north);

  v1::ResolveScopeResponse reach = Resolve(f, acme.id, lm, SCOPE_ORG_UNIT);
  CHECK_FALSE(reach.all());
  CHECK(Has(reach.org_unit_ids(), sales));
  CHECK(Has(reach.org_unit_ids(), north));
  CHECK_FALSE(Has(reach.org_unit_ids(), support));
  CHECK(Has(reach.user_ids(), anna));
  CHECK(Has(reach.user_ids(), lm));
  CHECK_FALSE(Has(reach.user_ids(), bob));
  CHECK(Resolve(f, acme.id, lm, SCOPE_TENANT).all());

  SECTION("the users of a unit and its subtree, also as identity's ListUsers filter") {
    v1::ListOrgUnitUsersRequest req;
    req.set_org_unit_id(sales);
    v1::ListOrgUnitUsersResponse direct;
    SB_REQUIRE_GRPC_OK(f.stub().ListOrgUnitUsers(f.Ctx(admin).get(), req, &direct));
    REQUIRE(direct.user_ids_size() == 1);
    CHECK(direct.user_ids(0) == lm);
    req.set_include_subtree(true);
    v1::ListOrgUnitUsersResponse subtree;
    SB_REQUIRE_GRPC_OK(f.stub().ListOrgUnitUsers(f.Ctx(admin).get(), req, &subtree));
    CHECK(subtree.total_size() == 2);
    CHECK(Has(subtree.user_ids(), anna));

    iv1::ListUsersRequest users;
    users.set_org_unit_id(hq);
    users.set_include_subtree(true);
    iv1::ListUsersResponse listed;
    SB_REQUIRE_GRPC_OK(f.identity_stub().ListUsers(f.Ctx(admin).get(), users, &listed));
    CHECK(listed.users_size() == 3);
    // A local manager sees only their subtree's users, whatever unit they ask for.
    iv1::ListUsersResponse theirs;
    SB_REQUIRE_GRPC_OK(
        f.identity_stub().ListUsers(f.Ctx(f.Token("acme", "lena")).get(), users, &theirs));
    CHECK(theirs.users_size() == 2);
  }

  SECTION("a unit is renamed and redescribed by mask") {
    v1::UpdateOrgUnitRequest rename;
    rename.mutable_org_unit()->set_id(north);
    rename.mutable_org_unit()->set_name("North & Baltics");
    rename.mutable_org_unit()->set_description("Nordic desks");
    rename.mutable_update_mask()->add_paths("name");
    v1::OrgUnit out;
    SB_REQUIRE_GRPC_OK(f.stub().UpdateOrgUnit(f.Ctx(admin).get(), rename, &out));
    CHECK(out.name() == "North & Baltics");
    CHECK(out.description().empty());
    CHECK(out.user_count() == 1);
    rename.mutable_update_mask()->add_paths("colour");
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().UpdateOrgUnit(ctx.get(), rename, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "update_mask");
  }

  SECTION("a local manager places users only inside their subtree") {
    const std::string lena = f.Token("acme", "lena");
    // Through identity: a new user in their subtree, then one outside it.
    f.CreateUser(lena, "carl", {"agent"}, {north});
    iv1::CreateUserRequest req;
    req.mutable_user()->set_first_name("Dora");
    req.mutable_user()->set_last_name("Outside");
    req.mutable_user()->set_login_name("dora");
    req.add_org_unit_ids(support);
    req.set_password(kPassword);
    iv1::User created;
    CHECK(Code(f.identity_stub().CreateUser(f.Ctx(lena).get(), req, &created)) ==
          grpc::PERMISSION_DENIED);

    // Directly: moving a reached user out of the subtree, or touching someone outside it.
    v1::SetUserOrgUnitsRequest move;
    move.set_user_id(anna);
    move.add_org_unit_ids(support);
    v1::UserPlacement out;
    auto ctx = f.Ctx(lena);
    CHECK(Code(f.stub().SetUserOrgUnits(ctx.get(), move, &out)) == grpc::PERMISSION_DENIED);
    CHECK(ViolationField(*ctx) == "org_unit_ids[0]");
    move.set_user_id(bob);
    move.set_org_unit_ids(0, north);
    CHECK(Code(f.stub().SetUserOrgUnits(f.Ctx(lena).get(), move, &out)) == grpc::PERMISSION_DENIED);
    move.set_user_id(anna);
    move.set_org_unit_ids(0, sales);
    SB_REQUIRE_GRPC_OK(f.stub().SetUserOrgUnits(f.Ctx(lena).get(), move, &out));
    // Local managers cannot edit the tree itself (no org.manage).
    v1::CreateOrgUnitRequest unit;
    unit.mutable_org_unit()->set_name("Mine");
    unit.mutable_org_unit()->set_parent_id(sales);
    v1::OrgUnit u;
    CHECK(Code(f.stub().CreateOrgUnit(f.Ctx(lena).get(), unit, &u)) == grpc::PERMISSION_DENIED);
  }

  SECTION("a local manager cannot clone someone who also sits outside their subtree") {
    const std::string dual = f.CreateUser(admin, "dual", {"agent"}, {north, support});
    iv1::CloneUserRequest clone;
    clone.set_source_user_id(dual);
    clone.set_first_name("Dual");
    clone.set_last_name("Copy");
    clone.set_login_name("dualcopy");
    clone.set_password(kPassword);
    iv1::User copy;
    CHECK(Code(f.identity_stub().CloneUser(f.Ctx(f.Token("acme", "lena")).get(), clone, &copy)) ==
          grpc::PERMISSION_DENIED);
    // The admin's clone copies both units.
    SB_REQUIRE_GRPC_OK(f.identity_stub().CloneUser(f.Ctx(admin).get(), clone, &copy));
    v1::GetUserPlacementRequest where;
    where.set_user_id(copy.id());
    v1::UserPlacement placed;
    SB_REQUIRE_GRPC_OK(f.stub().GetUserPlacement(f.Ctx(admin).get(), where, &placed));
    CHECK(placed.org_unit_ids_size() == 2);
  }

  SECTION("a manager with org.manage on their units edits only their subtree") {
    f.Grant(admin, lm, "org.manage", SCOPE_ORG_UNIT);
    const std::string lena = f.Token("acme", "lena");
    const std::string south = f.CreateOrgUnit(lena, "South", sales);
    v1::MoveOrgUnitRequest move;
    move.set_org_unit_id(south);
    move.set_new_parent_id(support);
    v1::OrgUnit out;
    CHECK(Code(f.stub().MoveOrgUnit(f.Ctx(lena).get(), move, &out)) == grpc::PERMISSION_DENIED);
    move.set_new_parent_id(north);
    SB_REQUIRE_GRPC_OK(f.stub().MoveOrgUnit(f.Ctx(lena).get(), move, &out));
    v1::UpdateOrgUnitRequest rename;
    rename.mutable_org_unit()->set_id(support);
    rename.mutable_org_unit()->set_name("Mine now");
    rename.mutable_update_mask()->add_paths("name");
    CHECK(Code(f.stub().UpdateOrgUnit(f.Ctx(lena).get(), rename, &out)) == grpc::PERMISSION_DENIED);
    v1::CreateOrgUnitRequest root;
    root.mutable_org_unit()->set_name("Root of my own");
    CHECK(Code(f.stub().CreateOrgUnit(f.Ctx(lena).get(), root, &out)) == grpc::PERMISSION_DENIED);
    // Making oneself the manager of someone in the subtree would hand over their report tree.
    v1::SetReportingManagerRequest mine;
    mine.set_user_id(anna);
    mine.set_manager_user_id(lm);
    v1::UserPlacement placed;
    CHECK(Code(f.stub().SetReportingManager(f.Ctx(lena).get(), mine, &placed)) ==
          grpc::PERMISSION_DENIED);
  }

  SECTION("deleting a user in identity releases their placement") {
    iv1::DeleteUserRequest del;
    del.set_user_id(anna);
    google::protobuf::Empty empty;
    SB_REQUIRE_GRPC_OK(f.identity_stub().DeleteUser(f.Ctx(admin).get(), del, &empty));
    v1::GetUserPlacementRequest internal;
    internal.set_tenant_id(acme.id);
    internal.set_user_id(anna);
    v1::UserPlacement gone;
    SB_REQUIRE_GRPC_OK(f.stub().GetUserPlacement(f.InternalCtx().get(), internal, &gone));
    CHECK(gone.org_unit_ids_size() == 0);
  }
}

TEST_CASE("reporting managers: transitive reports and no cycles", "[units][reports]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string boss = f.CreateUser(admin, "boss", {"supervisor"});
  const std::string mid = f.CreateUser(admin, "mid", {"supervisor"});
  const std::string a1 = f.CreateUser(admin, "agent1", {"agent"});
  const std::string a2 = f.CreateUser(admin, "agent2", {"agent"});
  auto set = [&](const std::string& user, const std::string& manager) {
    v1::SetReportingManagerRequest req;
    req.set_user_id(user);
    req.set_manager_user_id(manager);
    v1::UserPlacement out;
    auto ctx = f.Ctx(admin);
    grpc::Status s = f.stub().SetReportingManager(ctx.get(), req, &out);
    return std::make_pair(s, ViolationField(*ctx));
  };
  REQUIRE(set(mid, boss).first.ok());
  REQUIRE(set(a1, mid).first.ok());
  REQUIRE(set(a2, mid).first.ok());

  v1::ListReportsRequest req;
  req.set_manager_user_id(boss);
  v1::ListReportsResponse direct;
  SB_REQUIRE_GRPC_OK(f.stub().ListReports(f.Ctx(admin).get(), req, &direct));
  REQUIRE(direct.user_ids_size() == 1);
  CHECK(direct.user_ids(0) == mid);
  req.set_transitive(true);
  v1::ListReportsResponse all;
  SB_REQUIRE_GRPC_OK(f.stub().ListReports(f.Ctx(admin).get(), req, &all));
  CHECK(all.user_ids_size() == 3);
  v1::ResolveScopeResponse reach = Resolve(f, acme.id, boss, SCOPE_REPORTS);
  CHECK(Has(reach.user_ids(), a1));
  CHECK(Has(reach.user_ids(), a2));
  CHECK(Has(reach.user_ids(), mid));

  // The boss may list their own reports; an agent may not list someone else's.
  v1::ListReportsRequest own;
  v1::ListReportsResponse mine;
  own.set_transitive(true);
  SB_REQUIRE_GRPC_OK(f.stub().ListReports(f.Ctx(f.Token("acme", "boss")).get(), own, &mine));
  CHECK(mine.user_ids_size() == 3);
  CHECK(Code(f.stub().ListReports(f.Ctx(f.Token("acme", "agent1")).get(), req, &mine)) ==
        grpc::PERMISSION_DENIED);

  auto [cycle, field] = set(boss, a1);
  CHECK(Code(cycle) == grpc::INVALID_ARGUMENT);
  CHECK(field == "manager_user_id");
  CHECK(Code(set(boss, boss).first) == grpc::INVALID_ARGUMENT);
  auto [unknown, unknown_field] = set(a1, "5a8c7b2e-1111-4111-8111-111111111111");
  CHECK(Code(unknown) == grpc::INVALID_ARGUMENT);
  CHECK(unknown_field == "manager_user_id");
  // Clearing works, and re-pointing is a replace.
  REQUIRE(set(a1, boss).first.ok());
  REQUIRE(set(a2, "").first.ok());
  v1::ListReportsResponse after;
  req.set_manager_user_id(mid);
  SB_REQUIRE_GRPC_OK(f.stub().ListReports(f.Ctx(admin).get(), req, &after));
  CHECK(after.user_ids_size() == 0);
}

TEST_CASE("teams: leaders reach their members and edit only their teams", "[teams][scope]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string gl = f.CreateUser(admin, "gina", {"group_leader"});
  const std::string a1 = f.CreateUser(admin, "agent1", {"agent"});
  const std::string a2 = f.CreateUser(admin, "agent2", {"agent"});
  const std::string a3 = f.CreateUser(admin, "agent3", {"agent"});
  const std::string red = f.CreateTeam(admin, "Red", {a1}, {gl});
  const std::string blue = f.CreateTeam(admin, "Blue", {a2});
  const std::string green = f.CreateTeam(admin, "Green", {a3}, {gl});

  v1::ResolveScopeResponse reach = Resolve(f, acme.id, gl, SCOPE_TEAM);
  CHECK(Has(reach.team_ids(), red));
  CHECK_FALSE(Has(reach.team_ids(), blue));
  CHECK(Has(reach.user_ids(), a1));
  CHECK_FALSE(Has(reach.user_ids(), a2));

  // A built-in group leader edits nothing; with org.manage:team only their own teams.
  const std::string gina = f.Token("acme", "gina");
  v1::UpdateTeamRequest upd;
  upd.mutable_team()->set_id(red);
  upd.mutable_team()->set_description("The red team");
  upd.mutable_update_mask()->add_paths("description");
  v1::Team out;
  CHECK(Code(f.stub().UpdateTeam(f.Ctx(gina).get(), upd, &out)) == grpc::PERMISSION_DENIED);
  f.Grant(admin, gl, "org.manage", SCOPE_TEAM);
  const std::string gina2 = f.Token("acme", "gina");
  SB_REQUIRE_GRPC_OK(f.stub().UpdateTeam(f.Ctx(gina2).get(), upd, &out));
  CHECK(out.description() == "The red team");
  upd.mutable_team()->set_id(blue);
  CHECK(Code(f.stub().UpdateTeam(f.Ctx(gina2).get(), upd, &out)) == grpc::NOT_FOUND);

  // A leader adds people they manage anyway (agent3, of their other team), not strangers.
  v1::AddTeamMembersRequest add;
  add.set_team_id(red);
  add.add_user_ids(a2);
  v1::AddTeamMembersResponse added;
  auto stranger = f.Ctx(gina2);
  CHECK(Code(f.stub().AddTeamMembers(stranger.get(), add, &added)) == grpc::PERMISSION_DENIED);
  CHECK(ViolationField(*stranger) == "user_ids[0]");
  add.set_user_ids(0, a3);
  SB_REQUIRE_GRPC_OK(f.stub().AddTeamMembers(f.Ctx(gina2).get(), add, &added));
  REQUIRE(added.members_size() == 1);
  // Nor can they demote a co-leader by adding them again as a member.
  v1::AddTeamMembersRequest demote;
  demote.set_team_id(red);
  demote.add_user_ids(gl);
  CHECK(Code(f.stub().AddTeamMembers(f.Ctx(gina2).get(), demote, &added)) ==
        grpc::PERMISSION_DENIED);
  add.set_role(v1::TeamMember::ROLE_LEADER);
  CHECK(Code(f.stub().AddTeamMembers(f.Ctx(gina2).get(), add, &added)) == grpc::PERMISSION_DENIED);
  add.set_team_id(blue);
  add.set_role(v1::TeamMember::ROLE_MEMBER);
  add.set_user_ids(0, a1);
  CHECK(Code(f.stub().AddTeamMembers(f.Ctx(gina2).get(), add, &added)) == grpc::NOT_FOUND);

  v1::GetTeamRequest get;
  get.set_team_id(red);
  v1::Team got;
  SB_REQUIRE_GRPC_OK(f.stub().GetTeam(f.Ctx(f.Token("acme", "agent1")).get(), get, &got));
  REQUIRE(got.leader_user_ids_size() == 1);
  CHECK(got.leader_user_ids(0) == gl);
  get.set_team_id(blue);
  CHECK(Code(f.stub().GetTeam(f.Ctx(f.Token("acme", "agent1")).get(), get, &got)) ==
        grpc::NOT_FOUND);

  v1::ListTeamsResponse visible;
  SB_REQUIRE_GRPC_OK(f.stub().ListTeams(f.Ctx(gina2).get(), v1::ListTeamsRequest(), &visible));
  REQUIRE(visible.teams_size() == 2);
  CHECK(visible.teams(0).id() == green);
  CHECK(visible.teams(1).id() == red);
  CHECK(visible.teams(1).member_count() == 3);
  v1::ListTeamsResponse everything;
  SB_REQUIRE_GRPC_OK(f.stub().ListTeams(f.Ctx(admin).get(), v1::ListTeamsRequest(), &everything));
  CHECK(everything.teams_size() == 3);

  v1::CreateTeamRequest dup;
  dup.mutable_team()->set_name("red");
  CHECK(Code(f.stub().CreateTeam(f.Ctx(admin).get(), dup, &out)) == grpc::ALREADY_EXISTS);
  CHECK(Code(f.stub().CreateTeam(f.Ctx(gina2).get(), dup, &out)) == grpc::PERMISSION_DENIED);
  dup.mutable_team()->set_name("Green");
  dup.add_member_user_ids("5a8c7b2e-1111-4111-8111-111111111111");
  CHECK(Code(f.stub().CreateTeam(f.Ctx(admin).get(), dup, &out)) == grpc::INVALID_ARGUMENT);

  v1::RemoveTeamMembersRequest rm;
  rm.set_team_id(red);
  rm.add_user_ids(gl);
  google::protobuf::Empty empty;
  CHECK(Code(f.stub().RemoveTeamMembers(f.Ctx(gina2).get(), rm, &empty)) ==
        grpc::PERMISSION_DENIED);
  rm.set_user_ids(0, a3);
  SB_REQUIRE_GRPC_OK(f.stub().RemoveTeamMembers(f.Ctx(gina2).get(), rm, &empty));
  v1::ListTeamMembersRequest members;
  members.set_team_id(red);
  v1::ListTeamMembersResponse list;
  SB_REQUIRE_GRPC_OK(f.stub().ListTeamMembers(f.Ctx(gina2).get(), members, &list));
  CHECK(list.members_size() == 2);
  CHECK(list.members(0).role() == v1::TeamMember::ROLE_LEADER);

  v1::DeleteTeamRequest del;
  del.set_team_id(red);
  CHECK(Code(f.stub().DeleteTeam(f.Ctx(gina2).get(), del, &empty)) == grpc::PERMISSION_DENIED);
  SB_REQUIRE_GRPC_OK(f.stub().DeleteTeam(f.Ctx(admin).get(), del, &empty));
}

}  // namespace
}  // namespace sb::org::test
