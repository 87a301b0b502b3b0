// Numbers (DIDs) and trunks, and what sip asks of them per call.

#include <catch2/catch.hpp>

#include "tests/integration/services/org/org_fixture.h"

namespace sb::org::test {
namespace {

v1::Trunk CarrierTrunk(const std::string& name) {
  v1::Trunk t;
  t.set_name(name);
  t.add_inbound_cidrs("203.0.113.0/24");
  t.add_inbound_cidrs("2001:db8::/32");
  t.set_inbound_enabled(true);
  t.set_outbound_enabled(true);
  t.set_outbound_host("sip.carrier.example");
  t.set_auth_username("acme");
  t.set_auth_password("s3cret-trunk-pass");
  t.set_max_channels(30);
  return t;
}

TEST_CASE("numbers: E.164, unique on the platform, found by sip", "[numbers]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo globex = f.CreateTenant("globex");
  const std::string& admin = acme.admin_token;

  v1::CreateTrunkRequest tr;
  *tr.mutable_trunk() = CarrierTrunk("Carrier");
  v1::Trunk trunk;
  SB_REQUIRE_GRPC_OK(f.stub().CreateTrunk(f.Ctx(admin).get(), tr, &trunk));
  CHECK(trunk.has_auth_password());
  CHECK(trunk.auth_password().empty());
  CHECK(trunk.transport() == v1::TRUNK_TRANSPORT_UDP);

  v1::CreateNumberRequest req;
  req.mutable_number()->set_number("+36 1 234 5678");
  req.mutable_number()->set_description("Google Ads spring campaign");
  req.mutable_number()->set_trunk_id(trunk.id());
  v1::Number n;
  SB_REQUIRE_GRPC_OK(f.stub().CreateNumber(f.Ctx(admin).get(), req, &n));
  CHECK(n.number() == "+3612345678");
  CHECK(n.enabled());

  SECTION("bad input names the field") {
    v1::CreateNumberRequest bad;
    bad.mutable_number()->set_number("12ab");
    v1::Number out;
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().CreateNumber(ctx.get(), bad, &out)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "number.number");
    bad.mutable_number()->set_number("+3612345679");
    bad.mutable_number()->set_project_id("6b1d2c3e-2222-4222-8222-222222222222");
    auto ctx2 = f.Ctx(admin);
    grpc::Status s = f.stub().CreateNumber(ctx2.get(), bad, &out);
    CHECK(Code(s) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx2) == "number.project_id");
    // Another tenant cannot take the number, nor learn whose it is.
    v1::CreateNumberRequest dup;
    dup.mutable_number()->set_number("+3612345678");
    grpc::Status taken = f.stub().CreateNumber(f.Ctx(globex.admin_token).get(), dup, &out);
    CHECK(Code(taken) == grpc::ALREADY_EXISTS);
    CHECK(taken.error_message().find("acme") == std::string::npos);
    CHECK(Code(f.stub().CreateNumber(f.Ctx(f.Token("acme", "admin")).get(), dup, &out)) ==
          grpc::ALREADY_EXISTS);
  }

  SECTION("sip matches the number and the source address to a trunk") {
    v1::MatchInboundTrunkRequest m;
    m.set_number("+3612345678");
    m.set_source_address("203.0.113.77");
    v1::MatchInboundTrunkResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().MatchInboundTrunk(f.InternalCtx().get(), m, &resp));
    CHECK(resp.number().tenant_id() == acme.id);
    CHECK(resp.trunk().id() == trunk.id());
    CHECK(resp.trunk().auth_password() == "s3cret-trunk-pass");
    m.set_source_address("2001:db8::9");
    SB_REQUIRE_GRPC_OK(f.stub().MatchInboundTrunk(f.InternalCtx().get(), m, &resp));
    m.set_source_address("198.51.100.1");
    CHECK(Code(f.stub().MatchInboundTrunk(f.InternalCtx().get(), m, &resp)) ==
          grpc::PERMISSION_DENIED);
    m.set_number("+3612345670");
    CHECK(Code(f.stub().MatchInboundTrunk(f.InternalCtx().get(), m, &resp)) == grpc::NOT_FOUND);
    CHECK(Code(f.stub().MatchInboundTrunk(f.Ctx(admin).get(), m, &resp)) == grpc::UNAUTHENTICATED);

    // A disabled number takes no calls.
    v1::UpdateNumberRequest off;
    off.mutable_number()->set_id(n.id());
    off.mutable_number()->set_enabled(false);
    off.mutable_update_mask()->add_paths("enabled");
    v1::Number updated;
    SB_REQUIRE_GRPC_OK(f.stub().UpdateNumber(f.Ctx(admin).get(), off, &updated));
    CHECK_FALSE(updated.enabled());
    CHECK(updated.description() == "Google Ads spring campaign");
    v1::ResolveNumberRequest resolve;
    resolve.set_number("+3612345678");
    v1::Number found;
    CHECK(Code(f.stub().ResolveNumber(f.InternalCtx().get(), resolve, &found)) == grpc::NOT_FOUND);
  }

  SECTION("a trunk with numbers cannot be deleted") {
    v1::DeleteTrunkRequest del;
    del.set_trunk_id(trunk.id());
    google::protobuf::Empty empty;
    CHECK(Code(f.stub().DeleteTrunk(f.Ctx(admin).get(), del, &empty)) == grpc::FAILED_PRECONDITION);
    v1::DeleteNumberRequest dn;
    dn.set_number_id(n.id());
    SB_REQUIRE_GRPC_OK(f.stub().DeleteNumber(f.Ctx(admin).get(), dn, &empty));
    SB_REQUIRE_GRPC_OK(f.stub().DeleteTrunk(f.Ctx(admin).get(), del, &empty));
  }

  SECTION("numbers are listed by digits or advert; agents read them, only admins write") {
    v1::ListNumbersRequest list;
    list.set_query("spring");
    v1::ListNumbersResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListNumbers(f.Ctx(admin).get(), list, &resp));
    CHECK(resp.numbers_size() == 1);
    list.set_query("2345");
    v1::ListNumbersResponse digits;
    SB_REQUIRE_GRPC_OK(f.stub().ListNumbers(f.Ctx(admin).get(), list, &digits));
    CHECK(digits.numbers_size() == 1);
    f.CreateUser(admin, "anna", {"agent"});
    const std::string anna = f.Token("acme", "anna");
    v1::ListNumbersResponse seen;
    SB_REQUIRE_GRPC_OK(f.stub().ListNumbers(f.Ctx(anna).get(), v1::ListNumbersRequest(), &seen));
    CHECK(seen.numbers_size() == 1);
    v1::Number out;
    CHECK(Code(f.stub().CreateNumber(f.Ctx(anna).get(), req, &out)) == grpc::PERMISSION_DENIED);
    v1::GetNumberRequest get;
    get.set_number_id(n.id());
    v1::Number one;
    SB_REQUIRE_GRPC_OK(f.stub().GetNumber(f.Ctx(anna).get(), get, &one));
    CHECK(one.description() == "Google Ads spring campaign");
    CHECK(Code(f.stub().GetNumber(f.Ctx(globex.admin_token).get(), get, &one)) == grpc::NOT_FOUND);
    v1::ListNumbersResponse other;
    SB_REQUIRE_GRPC_OK(
        f.stub().ListNumbers(f.Ctx(globex.admin_token).get(), v1::ListNumbersRequest(), &other));
    CHECK(other.numbers_size() == 0);
  }
}

TEST_CASE("MatchInboundTrunk prefers the number's own trunk, then the first allowing the source",
          "[numbers][trunks]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo globex = f.CreateTenant("globex");
  const std::string& admin = acme.admin_token;
  auto create_trunk = [&](const std::string& token, const std::string& name, bool inbound) {
    v1::CreateTrunkRequest tr;
    *tr.mutable_trunk() = CarrierTrunk(name);
    tr.mutable_trunk()->set_inbound_enabled(inbound);
    v1::Trunk trunk;
    SB_REQUIRE_GRPC_OK(f.stub().CreateTrunk(f.Ctx(token).get(), tr, &trunk));
    return trunk.id();
  };
  auto create_number = [&](const std::string& e164, const std::string& trunk_id) {
    v1::CreateNumberRequest req;
    req.mutable_number()->set_number(e164);
    req.mutable_number()->set_trunk_id(trunk_id);
    v1::Number n;
    SB_REQUIRE_GRPC_OK(f.stub().CreateNumber(f.Ctx(admin).get(), req, &n));
    return n.id();
  };
  // "Alpha" comes first by name but takes no calls; globex's trunk allows the same source.
  create_trunk(admin, "Alpha", /*inbound=*/false);
  const std::string bravo = create_trunk(admin, "Bravo", true);
  const std::string charlie = create_trunk(admin, "Charlie", true);
  create_trunk(globex.admin_token, "Aardvark", true);
  const std::string own = create_number("+3612345001", charlie);
  const std::string loose = create_number("+3612345002", "");

  auto match = [&](const std::string& number, const std::string& source) {
    v1::MatchInboundTrunkRequest m;
    m.set_number(number);
    m.set_source_address(source);
    v1::MatchInboundTrunkResponse resp;
    const grpc::Status s = f.stub().MatchInboundTrunk(f.InternalCtx().get(), m, &resp);
    return std::make_pair(Code(s), resp);
  };
  const auto [code, on_own] = match("+3612345001", "203.0.113.9");
  REQUIRE(code == grpc::OK);
  CHECK(on_own.number().id() == own);
  CHECK(on_own.number().trunk_id() == charlie);
  CHECK(on_own.trunk().id() == charlie);
  CHECK(on_own.trunk().tenant_id() == acme.id);
  CHECK(on_own.trunk().name() == "Charlie");
  CHECK(on_own.trunk().auth_password() == "s3cret-trunk-pass");
  CHECK(on_own.trunk().max_channels() == 30);
  const auto [loose_code, on_loose] = match("+3612345002", "2001:db8::77");
  REQUIRE(loose_code == grpc::OK);
  CHECK(on_loose.number().id() == loose);
  CHECK(on_loose.number().trunk_id().empty());
  CHECK(on_loose.trunk().id() == bravo);
  CHECK(match("+3612345001", "198.51.100.1").first == grpc::PERMISSION_DENIED);
  CHECK(match("+3612345003", "203.0.113.9").first == grpc::NOT_FOUND);
}

TEST_CASE("trunks: validated, the password never shown, one default", "[numbers][trunks]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  auto create = [&](const v1::Trunk& t, std::string* field) {
    v1::CreateTrunkRequest req;
    *req.mutable_trunk() = t;
    v1::Trunk out;
    auto ctx = f.Ctx(admin);
    grpc::Status s = f.stub().CreateTrunk(ctx.get(), req, &out);
    *field = ViolationField(*ctx);
    return std::make_pair(s, out);
  };
  std::string field;
  v1::Trunk t = CarrierTrunk("A");
  t.set_inbound_cidrs(0, "203.0.113.5/24");
  CHECK(Code(create(t, &field).first) == grpc::INVALID_ARGUMENT);
  CHECK(field == "trunk.inbound_cidrs[0]");
  t.set_inbound_cidrs(0, "not-an-ip");
  CHECK(Code(create(t, &field).first) == grpc::INVALID_ARGUMENT);
  t.set_inbound_cidrs(0, "203.0.113.9");
  t.set_outbound_host("sip://bad host");
  CHECK(Code(create(t, &field).first) == grpc::INVALID_ARGUMENT);
  CHECK(field == "trunk.outbound_host");
  t.set_outbound_host("sip.carrier.example");
  t.set_outbound_port(70000);
  CHECK(Code(create(t, &field).first) == grpc::INVALID_ARGUMENT);
  CHECK(field == "trunk.outbound_port");
  t.set_outbound_port(5080);
  t.set_caller_id_mode(v1::CALLER_ID_MODE_FIXED);
  CHECK(Code(create(t, &field).first) == grpc::INVALID_ARGUMENT);
  CHECK(field == "trunk.fixed_caller_id");
  t.set_fixed_caller_id("+36 1 999 0000");
  t.set_default_outbound(true);
  auto [ok, a] = create(t, &field);
  SB_REQUIRE_GRPC_OK(ok);
  CHECK(a.inbound_cidrs(0) == "203.0.113.9/32");
  CHECK(a.fixed_caller_id() == "+3619990000");
  CHECK(a.default_outbound());

  v1::Trunk second = CarrierTrunk("B");
  second.set_default_outbound(true);
  auto [ok2, b] = create(second, &field);
  SB_REQUIRE_GRPC_OK(ok2);
  v1::GetTrunkRequest get;
  get.set_trunk_id(a.id());
  v1::Trunk again;
  SB_REQUIRE_GRPC_OK(f.stub().GetTrunk(f.Ctx(admin).get(), get, &again));
  CHECK_FALSE(again.default_outbound());
  CHECK(again.auth_password().empty());
  CHECK(Code(create(CarrierTrunk("a"), &field).first) == grpc::ALREADY_EXISTS);

  // Update by mask: the password stays unless named.
  v1::UpdateTrunkRequest upd;
  upd.mutable_trunk()->set_id(b.id());
  upd.mutable_trunk()->set_max_channels(10);
  upd.mutable_trunk()->set_outbound_enabled(false);
  upd.mutable_update_mask()->add_paths("max_channels");
  upd.mutable_update_mask()->add_paths("outbound_enabled");
  v1::Trunk updated;
  SB_REQUIRE_GRPC_OK(f.stub().UpdateTrunk(f.Ctx(admin).get(), upd, &updated));
  CHECK(updated.max_channels() == 10);
  CHECK_FALSE(updated.outbound_enabled());
  CHECK(updated.has_auth_password());
  CHECK(updated.name() == "B");

  // sip's cache reads every tenant's trunks with their credentials; people cannot.
  v1::ListTrunksRequest all;
  all.set_all_tenants(true);
  v1::ListTrunksResponse cache;
  SB_REQUIRE_GRPC_OK(f.stub().ListTrunks(f.InternalCtx().get(), all, &cache));
  REQUIRE(cache.trunks_size() == 2);
  CHECK(cache.trunks(0).auth_password() == "s3cret-trunk-pass");
  CHECK(Code(f.stub().ListTrunks(f.Ctx(admin).get(), all, &cache)) == grpc::PERMISSION_DENIED);
  f.CreateUser(admin, "anna", {"agent"});
  CHECK(Code(f.stub().GetTrunk(f.Ctx(f.Token("acme", "anna")).get(), get, &again)) ==
        grpc::PERMISSION_DENIED);
}

}  // namespace
}  // namespace sb::org::test
