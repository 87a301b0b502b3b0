// ReportCallEvent through RoutingService's gRPC API: a failed ring plan ends the call with the
// rejection its results call for; other events need no answer until issue #7 keeps call state.

#include <catch2/catch.hpp>

#include "libs/common/ids.h"
#include "tests/integration/services/routing/routing_fixture.h"

namespace sb::routing::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

v1::TargetFailed Failed(const std::string& target, int sip_code,
                        cv1::HangupCause cause = cv1::HANGUP_CAUSE_UNSPECIFIED) {
  v1::TargetFailed t;
  t.set_target_id(target);
  t.set_sip_code(sip_code);
  t.set_cause(cause);
  return t;
}

struct Reported {
  grpc::StatusCode code = grpc::OK;
  std::string field;
  v1::ReportCallEventResponse response;
};

Reported Report(RoutingFixture& f, const v1::ReportCallEventRequest& req) {
  auto ctx = f.InternalCtx();
  Reported r;
  r.code = f.stub().ReportCallEvent(ctx.get(), req, &r.response).error_code();
  r.field = ViolationField(*ctx);
  return r;
}

v1::ReportCallEventRequest PlanFailed(const std::string& call_id,
                                      const std::vector<v1::TargetFailed>& results,
                                      uint64_t sequence = 1) {
  v1::ReportCallEventRequest req;
  req.set_call_id(call_id);
  req.set_node_id("sip-1");
  req.set_instruction_sequence(sequence);
  req.mutable_ring_plan_failed();
  for (const auto& r : results) *req.mutable_ring_plan_failed()->add_results() = r;
  return req;
}

TEST_CASE("ReportCallEvent ends a call whose ring plan failed", "[routing][events]") {
  RoutingFixture f;
  const std::string call = NewUuid();
  struct Case {
    const char* what;
    std::vector<v1::TargetFailed> results;
    int sip_code;
    cv1::HangupCause cause;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"every agent busy",
       {Failed("a:ext", 486), Failed("a:mobile", 486), Failed("b:ext", 600)},
       486,
       cv1::HANGUP_CAUSE_USER_BUSY,
       "USER_BUSY"},
      {"one busy, one rang out",
       {Failed("a:ext", 486), Failed("b:ext", 0, cv1::HANGUP_CAUSE_NO_ANSWER)},
       480,
       cv1::HANGUP_CAUSE_NO_ANSWER,
       "NO_ANSWER"},
      {"a request timeout", {Failed("a:ext", 408)}, 480, cv1::HANGUP_CAUSE_NO_ANSWER, "NO_ANSWER"},
      {"nobody registered",
       {Failed("a:ext", 480), Failed("b:ext", 404)},
       480,
       cv1::HANGUP_CAUSE_USER_UNAVAILABLE,
       "USER_UNAVAILABLE"},
      {"no results at all", {}, 480, cv1::HANGUP_CAUSE_USER_UNAVAILABLE, "USER_UNAVAILABLE"},
      {"the callee declined",
       {Failed("external", 603)},
       603,
       cv1::HANGUP_CAUSE_CALL_REJECTED,
       "CALL_REJECTED"},
      {"the external number does not exist",
       {Failed("external", 404)},
       404,
       cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
       "UNALLOCATED_NUMBER"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Reported r = Report(f, PlanFailed(call, c.results, 1));
    REQUIRE(r.code == grpc::OK);
    REQUIRE(r.response.has_next());
    const v1::RoutingInstruction& next = r.response.next();
    CHECK(next.call_id() == call);
    CHECK(next.sequence() == 2);
    REQUIRE(next.has_reject());
    CHECK(next.reject().sip_code() == c.sip_code);
    CHECK(next.reject().cause() == c.cause);
    CHECK(next.reject().reason() == c.reason);
  }
  // The sequence follows the instruction the report answers.
  CHECK(Report(f, PlanFailed(call, {Failed("a:ext", 486)}, 7)).response.next().sequence() == 8);
}

TEST_CASE("ReportCallEvent needs no answer for other events", "[routing][events]") {
  RoutingFixture f;
  v1::ReportCallEventRequest ringing;
  ringing.set_call_id(NewUuid());
  ringing.set_instruction_sequence(1);
  ringing.mutable_target_ringing()->set_target_id("a:ext");
  Reported r = Report(f, ringing);
  REQUIRE(r.code == grpc::OK);
  CHECK(!r.response.has_next());

  v1::ReportCallEventRequest ended;
  ended.set_call_id(NewUuid());
  ended.mutable_call_ended()->set_cause(cv1::HANGUP_CAUSE_NORMAL_CLEARING);
  r = Report(f, ended);
  REQUIRE(r.code == grpc::OK);
  CHECK(!r.response.has_next());

  // Malformed reports name the field.
  v1::ReportCallEventRequest bad = ringing;
  bad.set_call_id("call-1");
  CHECK(Report(f, bad).field == "call_id");
  bad = ringing;
  bad.clear_target_ringing();
  CHECK(Report(f, bad).field == "event");
  bad = PlanFailed(NewUuid(), {Failed("a:ext", 486)}, 0);
  const Reported no_sequence = Report(f, bad);
  CHECK(no_sequence.code == grpc::INVALID_ARGUMENT);
  CHECK(no_sequence.field == "instruction_sequence");
}

}  // namespace
}  // namespace sb::routing::test

namespace sb::routing::test {
namespace {

v1::ReportCallEventRequest TransferTo(const TenantInfo& tenant, const std::string& by_user,
                                      const std::function<void(v1::TransferRequested&)>& target) {
  v1::ReportCallEventRequest req;
  req.set_call_id(NewUuid());
  req.set_node_id("sip-1");
  req.set_tenant_id(tenant.id);
  req.set_instruction_sequence(3);
  auto* t = req.mutable_transfer_requested();
  t->set_type(::switchboard::common::v1::TRANSFER_TYPE_BLIND);
  t->set_by_user_id(by_user);
  target(*t);
  return req;
}

TEST_CASE("ReportCallEvent plans a blind transfer as if the agent had dialled the target",
          "[routing][events]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const RoutingFixture::Agent anna = f.CreateAgent(acme, "anna");
  const RoutingFixture::Agent bob = f.CreateAgent(acme, "bob");

  SECTION("to a colleague's extension, by extension or by user id") {
    for (const auto& req :
         {TransferTo(acme, anna.user_id, [&](auto& t) { t.set_extension(bob.extension); }),
          TransferTo(acme, anna.user_id, [&](auto& t) { t.set_user_id(bob.user_id); })}) {
      const Reported r = Report(f, req);
      REQUIRE(r.code == grpc::OK);
      REQUIRE(r.response.next().has_ring());
      CHECK(r.response.next().sequence() == 4);
      const auto& target = r.response.next().ring().steps(0).targets(0);
      CHECK(target.agent_user_id() == bob.user_id);
      CHECK(target.extension() == bob.extension);
    }
  }
  SECTION("to an international number without a PIN: refused") {
    const Reported r =
        Report(f, TransferTo(acme, anna.user_id, [](auto& t) { t.set_number("+4930901820"); }));
    REQUIRE(r.code == grpc::OK);
    REQUIRE(r.response.next().has_reject());
    CHECK(r.response.next().reject().sip_code() == 403);
  }
  SECTION("bad input names the field; queues wait for issue 7") {
    auto no_tenant =
        TransferTo(acme, anna.user_id, [&](auto& t) { t.set_extension(bob.extension); });
    no_tenant.clear_tenant_id();
    Reported r = Report(f, no_tenant);
    CHECK(r.code == grpc::INVALID_ARGUMENT);
    CHECK(r.field == "tenant_id");
    r = Report(f, TransferTo(acme, anna.user_id, [](auto&) {}));
    CHECK(r.code == grpc::INVALID_ARGUMENT);
    CHECK(r.field == "transfer_requested");
    r = Report(f, TransferTo(acme, anna.user_id, [](auto& t) { t.set_queue_id(NewUuid()); }));
    CHECK(r.code == grpc::UNIMPLEMENTED);
  }
}

}  // namespace
}  // namespace sb::routing::test
