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
