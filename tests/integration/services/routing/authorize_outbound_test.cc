// AuthorizeOutboundCall through RoutingService's gRPC API with real org and identity: the
// built-in destination policy (domestic allowed, international with a PIN, premium-rate
// blocked), PINs from the dialled prefix or the pin field (identity's VerifyPin and its throttle),
// the wallet, the agent's right to call out, the trunk and the caller id it shows.

#include <catch2/catch.hpp>

#include "libs/common/ids.h"
#include "tests/integration/services/routing/routing_fixture.h"

namespace sb::routing::test {
namespace {

using Agent = RoutingFixture::Agent;
using Decision = v1::AuthorizeOutboundCallResponse;

struct Decided {
  grpc::StatusCode code = grpc::OK;
  std::string field;
  std::string message;
  Decision response;
};

Decided Authorize(RoutingFixture& f, const TenantInfo& t, const Agent& a,
                  const std::string& dialled, const std::string& pin = "") {
  v1::AuthorizeOutboundCallRequest req;
  req.set_tenant_id(t.id);
  req.set_user_id(a.user_id);
  req.set_call_id(NewUuid());
  req.set_source(v1::AuthorizeOutboundCallRequest::SOURCE_CLICK_TO_CALL);
  req.set_dialled(dialled);
  req.set_pin(pin);
  auto ctx = f.InternalCtx();
  Decided d;
  const grpc::Status s = f.stub().AuthorizeOutboundCall(ctx.get(), req, &d.response);
  d.code = s.error_code();
  d.field = ViolationField(*ctx);
  d.message = s.error_message();
  return d;
}

void RequireRefused(const Decided& d, Decision::RefusalReason reason) {
  INFO(d.code << ": " << d.message << "\n" << d.response.DebugString());
  REQUIRE(d.code == grpc::OK);
  CHECK(d.response.decision() == Decision::DECISION_REFUSED);
  CHECK(Decision::RefusalReason_Name(d.response.refusal_reason()) ==
        Decision::RefusalReason_Name(reason));
}

void RequireAllowed(const Decided& d, const std::string& destination, const std::string& trunk,
                    const std::string& caller_id, const std::string& rule) {
  INFO(d.code << ": " << d.message << "\n" << d.response.DebugString());
  REQUIRE(d.code == grpc::OK);
  CHECK(d.response.decision() == Decision::DECISION_ALLOWED);
  CHECK(d.response.refusal_reason() == Decision::REFUSAL_REASON_UNSPECIFIED);
  CHECK(d.response.destination_number() == destination);
  CHECK(d.response.trunk_id() == trunk);
  CHECK(d.response.caller_id_number() == caller_id);
  CHECK(d.response.matched_rule_id() == rule);
  CHECK(!d.response.has_max_duration());
}

orgv1::AgentProfile Outbound(const std::string& caller_id = "") {
  orgv1::AgentProfile p;
  p.set_outbound_enabled(true);
  p.set_outbound_caller_id(caller_id);
  return p;
}

TEST_CASE("AuthorizeOutboundCall allows domestic calls and asks a PIN for the rest",
          "[routing][outbound]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  // Two trunks: the default outbound one wins over the one first by name.
  const std::string backup = f.CreateTrunk(admin, "A backup carrier");
  const std::string main =
      f.CreateTrunk(admin, "Main carrier", [](orgv1::Trunk& t) { t.set_default_outbound(true); });
  const std::string sales = f.CreateProject(admin, "Sales");
  f.CreateNumber(admin, "+3612345600", sales, backup);
  f.CreateNumber(admin, "+3612345611", sales, main);
  f.CreateNumber(admin, "+3612345610", sales, main);
  f.TopUp(admin, 20);
  const Agent anna = f.CreateAgent(acme, "anna", Outbound());
  const Agent bob = f.CreateAgent(acme, "bob", Outbound("+3612345600"));
  f.CreatePin(admin, anna.user_id, "582947");

  // Domestic, in any format the tenant's country reads; caller id: the main trunk's first number.
  for (const char* dialled : {"06 30 123 4567", "+36 30 123 4567", "0036301234567"}) {
    INFO(dialled);
    RequireAllowed(Authorize(f, acme, anna, dialled), "+36301234567", main, "+3612345610",
                   "default:domestic");
  }
  // An agent's own outbound caller id wins.
  RequireAllowed(Authorize(f, acme, bob, "06301234567"), "+36301234567", main, "+3612345600",
                 "default:domestic");

  // International: a PIN is needed.
  const Decided ask = Authorize(f, acme, anna, "00442079460958");
  REQUIRE(ask.code == grpc::OK);
  CHECK(ask.response.decision() == Decision::DECISION_PIN_REQUIRED);
  CHECK(ask.response.destination_number() == "+442079460958");
  CHECK(ask.response.matched_rule_id() == "default:international");
  // ... in the dialled prefix, or in the pin field (collected by IVR), which wins when set.
  RequireAllowed(Authorize(f, acme, anna, "*582947*00442079460958"), "+442079460958", main,
                 "+3612345610", "default:international");
  RequireAllowed(Authorize(f, acme, anna, "+442079460958", "582947"), "+442079460958", main,
                 "+3612345610", "default:international");
  RequireAllowed(Authorize(f, acme, anna, "*000000*+442079460958", "582947"), "+442079460958", main,
                 "+3612345610", "default:international");
  RequireRefused(Authorize(f, acme, anna, "*582948*00442079460958"),
                 Decision::REFUSAL_REASON_PIN_INVALID);
  // Another agent's PIN is not yours.
  RequireRefused(Authorize(f, acme, bob, "*582947*00442079460958"),
                 Decision::REFUSAL_REASON_PIN_INVALID);

  // Premium-rate ranges are blocked, domestic or not, PIN or not.
  RequireRefused(Authorize(f, acme, anna, "06 90 123 456"),
                 Decision::REFUSAL_REASON_DESTINATION_BLOCKED);
  RequireRefused(Authorize(f, acme, anna, "*582947*+881612345678"),
                 Decision::REFUSAL_REASON_DESTINATION_BLOCKED);
  // Not numbers.
  for (const char* dialled : {"12", "hello", "*582947", "**0049301234567", "*582947*"}) {
    INFO(dialled);
    RequireRefused(Authorize(f, acme, anna, dialled), Decision::REFUSAL_REASON_INVALID_NUMBER);
  }
}

TEST_CASE("AuthorizeOutboundCall throttles wrong PINs", "[routing][outbound]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  f.CreateTrunk(acme.admin_token, "Carrier");
  f.TopUp(acme.admin_token, 20);
  const Agent anna = f.CreateAgent(acme, "anna", Outbound());
  f.CreatePin(acme.admin_token, anna.user_id, "582947");
  int wrong = 0;
  Decided d;
  do {
    d = Authorize(f, acme, anna, "0049301234567", "111999");
    REQUIRE(d.code == grpc::OK);
    REQUIRE(d.response.decision() == Decision::DECISION_REFUSED);
  } while (d.response.refusal_reason() == Decision::REFUSAL_REASON_PIN_INVALID && ++wrong < 10);
  CHECK(wrong >= 4);  // identity lets a few mistakes pass
  RequireRefused(d, Decision::REFUSAL_REASON_PIN_THROTTLED);
  // Locked out: even the right PIN waits.
  RequireRefused(Authorize(f, acme, anna, "0049301234567", "582947"),
                 Decision::REFUSAL_REASON_PIN_THROTTLED);
  // Domestic calls need no PIN and still go out.
  REQUIRE(Authorize(f, acme, anna, "06301234567").response.decision() ==
          Decision::DECISION_ALLOWED);
}

TEST_CASE("AuthorizeOutboundCall refuses without funds trunk or the right to call out",
          "[routing][outbound]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  // An inbound-only trunk carries no outbound calls.
  f.CreateTrunk(admin, "Inbound only", [](orgv1::Trunk& t) {
    t.set_outbound_enabled(false);
    t.clear_outbound_host();
  });
  const Agent anna = f.CreateAgent(acme, "anna", Outbound());
  const Agent bob = f.CreateAgent(acme, "bob");  // outbound_enabled off
  f.CreatePin(admin, anna.user_id, "582947");
  const Agent no_profile{.user_id = f.org().CreateUser(admin, "carl", {"agent"})};

  RequireRefused(Authorize(f, acme, bob, "06301234567"), Decision::REFUSAL_REASON_USER_NOT_ALLOWED);
  RequireRefused(Authorize(f, acme, no_profile, "06301234567"),
                 Decision::REFUSAL_REASON_USER_NOT_ALLOWED);
  // A new tenant's wallet is empty.
  RequireRefused(Authorize(f, acme, anna, "06301234567"),
                 Decision::REFUSAL_REASON_INSUFFICIENT_FUNDS);
  f.TopUp(admin, 1);
  RequireRefused(Authorize(f, acme, anna, "06301234567"), Decision::REFUSAL_REASON_NO_TRUNK);
  // No PIN is asked for a call that would be refused anyway.
  RequireRefused(Authorize(f, acme, anna, "0049301234567"), Decision::REFUSAL_REASON_NO_TRUNK);

  // A trunk that always shows its fixed caller id.
  const std::string fixed = f.CreateTrunk(admin, "Fixed", [](orgv1::Trunk& t) {
    t.set_caller_id_mode(orgv1::CALLER_ID_MODE_FIXED);
    t.set_fixed_caller_id("+3612340000");
  });
  RequireAllowed(Authorize(f, acme, anna, "06301234567"), "+36301234567", fixed, "+3612340000",
                 "default:domestic");
  // A trunk without numbers and without a fixed caller id shows none: the carrier's rule applies.
  SECTION("anonymous trunks show no caller id") {
    orgv1::UpdateTrunkRequest req;
    req.mutable_trunk()->set_id(fixed);
    req.mutable_trunk()->set_caller_id_mode(orgv1::CALLER_ID_MODE_ANONYMOUS);
    req.mutable_update_mask()->add_paths("caller_id_mode");
    orgv1::Trunk out;
    SB_REQUIRE_GRPC_OK(f.org_stub().UpdateTrunk(f.Ctx(admin).get(), req, &out));
    RequireAllowed(Authorize(f, acme, anna, "06301234567"), "+36301234567", fixed, "",
                   "default:domestic");
  }
}

TEST_CASE("AuthorizeOutboundCall without a tenant country asks a PIN for every number",
          "[routing][outbound]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme", "");
  const std::string trunk = f.CreateTrunk(acme.admin_token, "Carrier");
  f.TopUp(acme.admin_token, 5);
  const Agent anna = f.CreateAgent(acme, "anna", Outbound());
  // National numbers cannot be read without a country.
  RequireRefused(Authorize(f, acme, anna, "06301234567"), Decision::REFUSAL_REASON_INVALID_NUMBER);
  const Decided d = Authorize(f, acme, anna, "+36301234567");
  REQUIRE(d.code == grpc::OK);
  CHECK(d.response.decision() == Decision::DECISION_PIN_REQUIRED);
  CHECK(d.response.trunk_id() == trunk);
}

TEST_CASE("AuthorizeOutboundCall refuses malformed requests naming the field",
          "[routing][outbound]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const Agent anna{.user_id = acme.admin_id};
  const Agent nobody{.user_id = "anna"};
  CHECK(Authorize(f, acme, anna, "").field == "dialled");
  CHECK(Authorize(f, acme, anna, std::string(65, '1')).field == "dialled");
  CHECK(Authorize(f, acme, anna, "06301234567", std::string(33, '1')).field == "pin");
  const Decided bad_user = Authorize(f, acme, nobody, "06301234567");
  CHECK(bad_user.code == grpc::INVALID_ARGUMENT);
  CHECK(bad_user.field == "user_id");
  TenantInfo no_tenant = acme;
  no_tenant.id = "";
  CHECK(Authorize(f, no_tenant, anna, "06301234567").field == "tenant_id");
  // Messages never repeat what was dialled (it may hold a PIN).
  const Decided long_one = Authorize(f, acme, anna, "*582947*" + std::string(60, '1'));
  CHECK(long_one.message.find("582947") == std::string::npos);
}

}  // namespace
}  // namespace sb::routing::test
