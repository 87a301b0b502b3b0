// Permissions, scopes and access decisions with a fake ScopeFacts (no network).

#include <catch2/catch.hpp>

#include "libs/auth/authorizer.h"
#include "libs/auth/cached_scope_facts.h"
#include "libs/common/fake_clock.h"

namespace sb::auth {
namespace {

class FakeFacts final : public ScopeFacts {
 public:
  absl::StatusOr<std::shared_ptr<const Reach>> Resolve(std::string_view tenant_id,
                                                       std::string_view user_id,
                                                       Scope scope) override {
    ++calls;
    if (down) return absl::UnavailableError("org down");
    auto it = reaches.find({std::string(user_id), scope});
    if (it == reaches.end()) return std::make_shared<Reach>();
    return std::make_shared<Reach>(it->second);
  }
  std::map<std::pair<std::string, Scope>, Reach> reaches;
  bool down = false;
  int calls = 0;
};

Principal User(std::string id, std::initializer_list<Grant> grants) {
  Principal p;
  p.tenant_id = "t1";
  p.user_id = std::move(id);
  for (const Grant& g : grants) p.permissions.Add(g);
  return p;
}

Resource Owned(std::string owner, std::string tenant = "t1") {
  return Resource{
      .type = "call", .tenant_id = std::move(tenant), .owner_user_id = std::move(owner)};
}

TEST_CASE("Scopes form a partial order: tenant covers units, teams and reports; those only own",
          "[auth]") {
  CHECK(Covers(Scope::kPlatform, Scope::kTenant));
  CHECK(Covers(Scope::kTenant, Scope::kOrgUnit));
  CHECK(Covers(Scope::kTenant, Scope::kReports));
  CHECK(Covers(Scope::kOrgUnit, Scope::kOwn));
  CHECK_FALSE(Covers(Scope::kOrgUnit, Scope::kTeam));
  CHECK_FALSE(Covers(Scope::kTeam, Scope::kReports));
  CHECK_FALSE(Covers(Scope::kTenant, Scope::kPlatform));
  CHECK_FALSE(Covers(Scope::kOwn, Scope::kTeam));
  CHECK_FALSE(Covers(Scope::kUnspecified, Scope::kOwn));
}

TEST_CASE("PermissionSet keeps the minimal scopes and answers coverage", "[auth]") {
  PermissionSet set;
  set.Add({"calls.read", Scope::kOwn});
  set.Add({"calls.read", Scope::kTeam});
  set.Add({"calls.read", Scope::kReports});
  CHECK(set.ScopesOf("calls.read") == std::vector<Scope>{Scope::kTeam, Scope::kReports});
  set.Add({"calls.read", Scope::kTenant});
  CHECK(set.ScopesOf("calls.read") == std::vector<Scope>{Scope::kTenant});
  set.Add({"calls.read", Scope::kOwn});  // covered: ignored
  CHECK(set.ScopesOf("calls.read") == std::vector<Scope>{Scope::kTenant});
  CHECK(set.Texts() == std::vector<std::string>{"calls.read:tenant"});

  PermissionSet small;
  small.Add({"calls.read", Scope::kOrgUnit});
  CHECK(set.CoversAll(small));
  CHECK_FALSE(small.CoversAll(set));
  REQUIRE(small.Uncovered(set).size() == 1);
  CHECK(small.Uncovered(set)[0] == Grant{"calls.read", Scope::kTenant});
  CHECK(PermissionSet::FromTexts({"calls.read:tenant", "bogus:tenant", "calls.read:nowhere",
                                  "settings.manage:own"}) == set);
}

TEST_CASE("ParseGrant and ValidateGrant name the problem", "[auth]") {
  CHECK(ParseGrant("users.manage:org_unit").ok());
  CHECK(absl::IsInvalidArgument(ParseGrant("users.manage").status()));
  CHECK(absl::IsInvalidArgument(ParseGrant("users.fly:tenant").status()));
  CHECK(absl::IsInvalidArgument(ParseGrant("settings.manage:own").status()));
  absl::Status s = ValidateGrant({"settings.manage", Scope::kTeam}, "role.permissions[3]");
  CHECK(std::string(s.message()).rfind("role.permissions[3]: scope 'team' is not allowed", 0) == 0);
}

TEST_CASE("Authorizer: own, team, reports and org-unit reach; cross-tenant is NotFound", "[auth]") {
  FakeFacts facts;
  Reach team;
  team.user_ids = {"gl", "m1"};
  team.team_ids = {"team-a"};
  facts.reaches[{"gl", Scope::kTeam}] = team;
  Reach units;
  units.user_ids = {"lm", "u1"};
  units.org_unit_ids = {"east", "east-1"};
  facts.reaches[{"lm", Scope::kOrgUnit}] = units;
  Authorizer authz(facts);

  const Principal agent = User("a1", {{"calls.read", Scope::kOwn}});
  CHECK(authz.Check(agent, "calls.read", Owned("a1")).ok());
  CHECK(absl::IsPermissionDenied(authz.Check(agent, "calls.read", Owned("m1"))));
  CHECK(absl::IsPermissionDenied(authz.Check(agent, "calls.export", Owned("a1"))));
  CHECK(absl::IsNotFound(authz.Check(agent, "calls.read", Owned("a1", "t2"))));

  const Principal gl = User("gl", {{"calls.read", Scope::kTeam}});
  CHECK(authz.Check(gl, "calls.read", Owned("m1")).ok());
  CHECK(authz.Check(gl, "calls.read", Owned("gl")).ok());
  CHECK(absl::IsPermissionDenied(authz.Check(gl, "calls.read", Owned("u1"))));
  Resource team_call = Owned("someone-else");
  team_call.team_ids = {"team-a"};
  CHECK(authz.Check(gl, "calls.read", team_call).ok());

  const Principal lm = User("lm", {{"calls.read", Scope::kOrgUnit}});
  Resource unit_call = Owned("nobody");
  unit_call.org_unit_ids = {"elsewhere", "east-1"};
  CHECK(authz.Check(lm, "calls.read", unit_call).ok());
  CHECK(authz.Check(lm, "calls.read", Owned("u1")).ok());
  CHECK(absl::IsPermissionDenied(authz.Check(lm, "calls.read", Owned("m1"))));

  const Principal admin = User("ad", {{"calls.read", Scope::kTenant}});
  CHECK(authz.Check(admin, "calls.read", Owned("m1")).ok());
  CHECK(absl::IsNotFound(authz.Check(admin, "calls.read", Owned("m1", "t2"))));
  const Principal platform = User("pa", {{"calls.read", Scope::kPlatform}});
  CHECK(authz.Check(platform, "calls.read", Owned("x", "t2")).ok());

  Principal restricted = admin;
  restricted.restricted = true;
  CHECK(absl::IsPermissionDenied(authz.Check(restricted, "calls.read", Owned("m1"))));

  facts.down = true;
  CHECK(absl::IsUnavailable(authz.Check(lm, "calls.read", Owned("u1"))));
  CHECK(authz.Check(admin, "calls.read", Owned("m1")).ok());
}

TEST_CASE("ReachFor merges every held scope", "[auth]") {
  FakeFacts facts;
  Reach team;
  team.user_ids = {"x", "m1"};
  facts.reaches[{"x", Scope::kTeam}] = team;
  Reach reports;
  reports.user_ids = {"x", "r1"};
  facts.reaches[{"x", Scope::kReports}] = reports;
  Authorizer authz(facts);
  const Principal p = User("x", {{"calls.read", Scope::kTeam}, {"calls.read", Scope::kReports}});
  absl::StatusOr<Reach> reach = authz.ReachFor(p, "calls.read");
  REQUIRE(reach.ok());
  CHECK_FALSE(reach->all);
  CHECK(reach->user_ids == absl::flat_hash_set<std::string>{"x", "m1", "r1"});
  CHECK(absl::IsPermissionDenied(authz.ReachFor(p, "users.manage").status()));
}

TEST_CASE("CachedScopeFacts answers from the cache until the TTL passes", "[auth]") {
  FakeFacts facts;
  FakeClock clock;
  CachedScopeFacts cached(facts, clock, absl::Seconds(5));
  REQUIRE(cached.Resolve("t1", "u", Scope::kTeam).ok());
  REQUIRE(cached.Resolve("t1", "u", Scope::kTeam).ok());
  CHECK(facts.calls == 1);
  clock.Advance(absl::Seconds(6));
  REQUIRE(cached.Resolve("t1", "u", Scope::kTeam).ok());
  CHECK(facts.calls == 2);
  cached.InvalidateTenant("t1");
  REQUIRE(cached.Resolve("t1", "u", Scope::kTeam).ok());
  CHECK(facts.calls == 3);
  facts.down = true;
  clock.Advance(absl::Seconds(6));
  CHECK(absl::IsUnavailable(cached.Resolve("t1", "u", Scope::kTeam).status()));
  facts.down = false;
  REQUIRE(cached.Resolve("t1", "u", Scope::kTeam).ok());  // errors were not cached
}

}  // namespace
}  // namespace sb::auth
