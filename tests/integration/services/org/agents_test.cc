// Agent profiles: extensions allocated automatically and never twice, the seat licence, phones
// and ringing preferences, who may change what; org settings.

#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "tests/integration/services/org/org_fixture.h"

namespace sb::org::test {
namespace {

v1::CreateAgentProfileRequest ProfileFor(const std::string& user) {
  v1::CreateAgentProfileRequest req;
  req.mutable_profile()->set_user_id(user);
  return req;
}

void SetRange(OrgFixture& f, const std::string& token, int start, int end) {
  v1::UpdateOrgSettingsRequest req;
  req.mutable_settings()->set_extension_range_start(start);
  req.mutable_settings()->set_extension_range_end(end);
  req.mutable_update_mask()->add_paths("extension_range_start");
  req.mutable_update_mask()->add_paths("extension_range_end");
  v1::OrgSettings out;
  SB_REQUIRE_GRPC_OK(f.stub().UpdateOrgSettings(f.Ctx(token).get(), req, &out));
}

TEST_CASE("extensions are allocated from the tenant's range and never twice", "[agents]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  SetRange(f, admin, 200, 202);
  std::vector<std::string> users;
  for (int i = 0; i < 4; ++i)
    users.push_back(f.CreateUser(admin, "agent" + std::to_string(i), {"agent"}));

  std::vector<std::string> extensions;
  for (int i = 0; i < 3; ++i) {
    v1::AgentProfile p;
    SB_REQUIRE_GRPC_OK(f.stub().CreateAgentProfile(f.Ctx(admin).get(), ProfileFor(users[i]), &p));
    extensions.push_back(p.extension());
    CHECK(p.incoming_call_preference() == v1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY);
    CHECK(p.max_concurrent_calls() == 1);
    CHECK(p.mobile_delay().seconds() == 15);
  }
  CHECK(extensions == std::vector<std::string>{"200", "201", "202"});

  SECTION("a full range is ResourceExhausted") {
    v1::AgentProfile p;
    CHECK(Code(f.stub().CreateAgentProfile(f.Ctx(admin).get(), ProfileFor(users[3]), &p)) ==
          grpc::RESOURCE_EXHAUSTED);
  }
  SECTION("a freed extension is given again only after its holder is gone") {
    v1::DeleteAgentProfileRequest del;
    del.set_user_id(users[1]);
    google::protobuf::Empty empty;
    SB_REQUIRE_GRPC_OK(f.stub().DeleteAgentProfile(f.Ctx(admin).get(), del, &empty));
    v1::AgentProfile p;
    SB_REQUIRE_GRPC_OK(f.stub().CreateAgentProfile(f.Ctx(admin).get(), ProfileFor(users[3]), &p));
    CHECK(p.extension() == "201");
  }
  SECTION("an admin may move an agent to a free extension, not a held one") {
    v1::UpdateAgentProfileRequest upd;
    upd.mutable_profile()->set_user_id(users[0]);
    upd.mutable_profile()->set_extension("202");
    upd.mutable_update_mask()->add_paths("extension");
    v1::AgentProfile p;
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().UpdateAgentProfile(ctx.get(), upd, &p)) == grpc::ALREADY_EXISTS);
    CHECK(ViolationField(*ctx) == "profile.extension");
    upd.mutable_profile()->set_extension("7001");
    SB_REQUIRE_GRPC_OK(f.stub().UpdateAgentProfile(f.Ctx(admin).get(), upd, &p));
    CHECK(p.extension() == "7001");
    v1::LookupExtensionRequest look;
    look.set_tenant_id(acme.id);
    look.set_extension("7001");
    v1::AgentProfile found;
    SB_REQUIRE_GRPC_OK(f.stub().LookupExtension(f.InternalCtx().get(), look, &found));
    CHECK(found.user_id() == users[0]);
    look.set_extension("200");
    CHECK(Code(f.stub().LookupExtension(f.InternalCtx().get(), look, &found)) == grpc::NOT_FOUND);
    CHECK(Code(f.stub().LookupExtension(f.Ctx(admin).get(), look, &found)) ==
          grpc::UNAUTHENTICATED);
  }
  SECTION("org settings: contact fields for every console") {
    v1::UpdateOrgSettingsRequest req;
    req.mutable_settings()->add_contact_custom_fields("Customer number");
    req.mutable_settings()->add_contact_custom_fields("Contract");
    req.mutable_update_mask()->add_paths("contact_custom_fields");
    v1::OrgSettings out;
    SB_REQUIRE_GRPC_OK(f.stub().UpdateOrgSettings(f.Ctx(admin).get(), req, &out));
    f.CreateUser(admin, "viewer", {"agent"});
    v1::OrgSettings seen;
    SB_REQUIRE_GRPC_OK(f.stub().GetOrgSettings(f.Ctx(f.Token("acme", "viewer")).get(),
                                               v1::GetOrgSettingsRequest(), &seen));
    REQUIRE(seen.contact_custom_fields_size() == 2);
    CHECK(seen.contact_custom_fields(1) == "Contract");
    CHECK(seen.extension_range_start() == 200);
    CHECK(Code(f.stub().UpdateOrgSettings(f.Ctx(f.Token("acme", "viewer")).get(), req, &out)) ==
          grpc::PERMISSION_DENIED);
    req.mutable_settings()->add_contact_custom_fields("contract");
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().UpdateOrgSettings(ctx.get(), req, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "settings.contact_custom_fields[2]");
  }
  SECTION("the range cannot shrink below the extensions in use") {
    v1::UpdateOrgSettingsRequest req;
    req.mutable_settings()->set_extension_range_start(200);
    req.mutable_settings()->set_extension_range_end(200);
    req.mutable_update_mask()->add_paths("extension_range_end");
    v1::OrgSettings out;
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().UpdateOrgSettings(ctx.get(), req, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "settings.extension_range_end");
  }
}

TEST_CASE("100 parallel profile creations get 100 different extensions", "[agents][concurrency]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  constexpr int kAgents = 100;
  std::vector<std::string> users;
  for (int i = 0; i < kAgents; ++i) {
    users.push_back(f.CreateUser(admin, "agent" + std::to_string(i), {"agent"}));
  }
  std::vector<std::string> extensions(kAgents);
  std::vector<grpc::Status> statuses(kAgents);
  std::vector<std::thread> threads;
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kAgents; i += 10) {
        v1::AgentProfile p;
        statuses[i] = f.stub().CreateAgentProfile(f.Ctx(admin).get(), ProfileFor(users[i]), &p);
        extensions[i] = p.extension();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> distinct;
  for (int i = 0; i < kAgents; ++i) {
    INFO(statuses[i].error_message());
    REQUIRE(statuses[i].ok());
    distinct.insert(extensions[i]);
  }
  CHECK(distinct.size() == kAgents);
  // The default range starts at 100; a dense allocation fills 100..199.
  CHECK(*distinct.begin() == "100");
}

TEST_CASE("the licence caps agent profiles", "[agents][licence]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string a = f.CreateUser(admin, "agenta", {"agent"});
  const std::string b = f.CreateUser(admin, "agentb", {"agent"});

  v1::UpdateLicenceRequest lic;
  lic.mutable_licence()->set_tenant_id(acme.id);
  lic.mutable_licence()->set_max_agents(1);
  lic.mutable_update_mask()->add_paths("max_agents");
  v1::Licence out;
  CHECK(Code(f.stub().UpdateLicence(f.Ctx(admin).get(), lic, &out)) == grpc::PERMISSION_DENIED);
  SB_REQUIRE_GRPC_OK(f.stub().UpdateLicence(f.Ctx(f.platform_token()).get(), lic, &out));
  CHECK(out.max_agents() == 1);

  v1::AgentProfile p;
  SB_REQUIRE_GRPC_OK(f.stub().CreateAgentProfile(f.Ctx(admin).get(), ProfileFor(a), &p));
  auto ctx = f.Ctx(admin);
  grpc::Status full = f.stub().CreateAgentProfile(ctx.get(), ProfileFor(b), &p);
  CHECK(Code(full) == grpc::FAILED_PRECONDITION);
  CHECK(full.error_message().find("licence allows 1") != std::string::npos);

  v1::GetLicenceRequest get;
  SB_REQUIRE_GRPC_OK(f.stub().GetLicence(f.Ctx(admin).get(), get, &out));
  CHECK(out.agents_in_use() == 1);
  // Lowering below the seats in use is refused; raising frees a seat.
  lic.mutable_licence()->set_max_agents(0);
  SB_REQUIRE_GRPC_OK(f.stub().UpdateLicence(f.Ctx(f.platform_token()).get(), lic, &out));
  SB_REQUIRE_GRPC_OK(f.stub().CreateAgentProfile(f.Ctx(admin).get(), ProfileFor(b), &p));
  lic.mutable_licence()->set_max_agents(1);
  CHECK(Code(f.stub().UpdateLicence(f.Ctx(f.platform_token()).get(), lic, &out)) ==
        grpc::INVALID_ARGUMENT);
  CHECK(Code(f.stub().GetLicence(f.Ctx(f.Token("acme", "agenta")).get(), get, &out)) ==
        grpc::PERMISSION_DENIED);
}

TEST_CASE("agent phones and ringing preferences are validated", "[agents][validation]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string a = f.CreateUser(admin, "anna", {"agent"});

  auto create = [&](const v1::AgentProfile& profile, std::string* field) {
    v1::CreateAgentProfileRequest req;
    *req.mutable_profile() = profile;
    req.mutable_profile()->set_user_id(a);
    v1::AgentProfile out;
    auto ctx = f.Ctx(admin);
    grpc::Status s = f.stub().CreateAgentProfile(ctx.get(), req, &out);
    *field = ViolationField(*ctx);
    return s;
  };
  std::string field;
  v1::AgentProfile p;
  p.add_phones()->set_number("not a number");
  CHECK(Code(create(p, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "profile.phones[0].number");

  p.clear_phones();
  for (int i = 0; i < 5; ++i) p.add_phones()->set_number("+3630123456" + std::to_string(i));
  CHECK(Code(create(p, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "profile.phones");

  p.clear_phones();
  p.add_phones()->set_number("+36301234567");
  p.set_incoming_call_preference(v1::INCOMING_CALL_PREFERENCE_MOBILE_ONLY);
  CHECK(Code(create(p, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "profile.incoming_call_preference");

  p.mutable_phones(0)->set_mobile(true);
  p.add_phones()->set_number("+36 1 234 5678");
  p.mutable_phones(1)->set_mobile(true);
  CHECK(Code(create(p, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "profile.phones");

  p.mutable_phones(1)->set_mobile(false);
  p.set_incoming_call_preference(v1::INCOMING_CALL_PREFERENCE_EXTENSION_THEN_MOBILE);
  p.mutable_mobile_delay()->set_seconds(20);
  auto* skill = p.add_skills();
  skill->set_name("German");
  skill->set_level(11);
  CHECK(Code(create(p, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "profile.skills[0].level");
  skill->set_level(7);
  p.set_schedule_id("6b1d2c3e-2222-4222-8222-222222222222");
  CHECK(Code(create(p, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "profile.schedule_id");
  p.clear_schedule_id();

  v1::CreateAgentProfileRequest req;
  *req.mutable_profile() = p;
  req.mutable_profile()->set_user_id(a);
  v1::AgentProfile made;
  SB_REQUIRE_GRPC_OK(f.stub().CreateAgentProfile(f.Ctx(admin).get(), req, &made));
  REQUIRE(made.phones_size() == 2);
  CHECK(made.phones(1).number() == "+3612345678");
  CHECK(made.skills(0).name() == "german");
  CHECK(made.mobile_delay().seconds() == 20);

  SECTION("agents change their own phones and preference, nothing else") {
    const std::string anna = f.Token("acme", "anna");
    v1::UpdateAgentProfileRequest upd;
    upd.mutable_profile()->set_user_id(a);
    upd.mutable_profile()->set_incoming_call_preference(v1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS);
    upd.mutable_update_mask()->add_paths("incoming_call_preference");
    v1::AgentProfile out;
    SB_REQUIRE_GRPC_OK(f.stub().UpdateAgentProfile(f.Ctx(anna).get(), upd, &out));
    CHECK(out.incoming_call_preference() == v1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS);
    upd.mutable_update_mask()->add_paths("max_concurrent_calls");
    upd.mutable_profile()->set_max_concurrent_calls(5);
    CHECK(Code(f.stub().UpdateAgentProfile(f.Ctx(anna).get(), upd, &out)) ==
          grpc::PERMISSION_DENIED);
    v1::DeleteAgentProfileRequest del;
    del.set_user_id(a);
    google::protobuf::Empty empty;
    CHECK(Code(f.stub().DeleteAgentProfile(f.Ctx(anna).get(), del, &empty)) ==
          grpc::PERMISSION_DENIED);
  }
  SECTION("profiles are listed by skill and found by extension") {
    v1::ListAgentProfilesRequest list;
    list.set_skill("german");
    v1::ListAgentProfilesResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListAgentProfiles(f.Ctx(admin).get(), list, &resp));
    REQUIRE(resp.profiles_size() == 1);
    CHECK(resp.profiles(0).user_id() == a);
    list.set_skill("french");
    v1::ListAgentProfilesResponse none;
    SB_REQUIRE_GRPC_OK(f.stub().ListAgentProfiles(f.Ctx(admin).get(), list, &none));
    CHECK(none.profiles_size() == 0);
    TenantInfo other = f.CreateTenant("globex");
    v1::GetAgentProfileRequest get;
    get.set_user_id(a);
    v1::AgentProfile out;
    CHECK(Code(f.stub().GetAgentProfile(f.Ctx(other.admin_token).get(), get, &out)) ==
          grpc::NOT_FOUND);
  }
}

TEST_CASE("a local manager manages profiles only inside their subtree", "[agents][authz]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string sales = f.CreateOrgUnit(admin, "Sales");
  const std::string support = f.CreateOrgUnit(admin, "Support");
  f.CreateUser(admin, "lena", {"local_manager"}, {sales});
  const std::string inside = f.CreateUser(admin, "inside", {"agent"}, {sales});
  const std::string outside = f.CreateUser(admin, "outside", {"agent"}, {support});
  const std::string lena = f.Token("acme", "lena");
  v1::AgentProfile p;
  SB_REQUIRE_GRPC_OK(f.stub().CreateAgentProfile(f.Ctx(lena).get(), ProfileFor(inside), &p));
  CHECK(Code(f.stub().CreateAgentProfile(f.Ctx(lena).get(), ProfileFor(outside), &p)) ==
        grpc::PERMISSION_DENIED);
  // Identity's CloneUser copies the profile through org, with a new extension.
  iv1::CloneUserRequest clone;
  clone.set_source_user_id(inside);
  clone.set_first_name("Clone");
  clone.set_last_name("Of Inside");
  clone.set_login_name("inside2");
  clone.set_password(kPassword);
  iv1::User cloned;
  SB_REQUIRE_GRPC_OK(f.identity_stub().CloneUser(f.Ctx(admin).get(), clone, &cloned));
  v1::GetAgentProfileRequest get;
  get.set_user_id(cloned.id());
  v1::AgentProfile copy;
  SB_REQUIRE_GRPC_OK(f.stub().GetAgentProfile(f.Ctx(admin).get(), get, &copy));
  CHECK(copy.extension() != p.extension());
  v1::GetUserPlacementRequest place;
  place.set_user_id(cloned.id());
  v1::UserPlacement placement;
  SB_REQUIRE_GRPC_OK(f.stub().GetUserPlacement(f.Ctx(admin).get(), place, &placement));
  REQUIRE(placement.org_unit_ids_size() == 1);
  CHECK(placement.org_unit_ids(0) == sales);
}

}  // namespace
}  // namespace sb::org::test
