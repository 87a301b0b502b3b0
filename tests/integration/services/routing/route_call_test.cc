// RouteCall through RoutingService's gRPC API, with real org and identity behind it: inbound hunt
// plans over the agents who selected the number's project (each ringing per their incoming-call
// preference), working hours, unknown and disabled numbers, nobody to ring, internal calls
// between extensions, outbound calls dialled on a phone (PIN, destination rules), and org being
// out of reach.

#include <catch2/catch.hpp>

#include <google/protobuf/util/message_differencer.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "libs/common/fake_clock.h"
#include "libs/common/ids.h"
#include "libs/pg/fields.h"
#include "services/routing/call_router.h"
#include "services/routing/grpc_directory.h"
#include "services/routing/outbound_authorizer.h"
#include "services/routing/ring_plans.h"
#include "tests/integration/services/routing/routing_fixture.h"

namespace sb::routing::test {
namespace {

namespace cv1 = ::switchboard::common::v1;
using Agent = RoutingFixture::Agent;

constexpr char kDid[] = "+3612345600";
constexpr char kCaller[] = "+36209998877";

struct Routed {
  grpc::StatusCode code = grpc::OK;
  std::string field;  // the first FieldViolation's field
  std::string message;
  v1::RouteCallResponse response;
};

Routed Route(RoutingFixture& f, const v1::RouteCallRequest& req,
             std::unique_ptr<grpc::ClientContext> ctx = nullptr) {
  if (!ctx) ctx = f.InternalCtx();
  Routed r;
  const grpc::Status s = f.stub().RouteCall(ctx.get(), req, &r.response);
  r.code = s.error_code();
  r.field = ViolationField(*ctx);
  r.message = s.error_message();
  return r;
}

// What sip sends for an INVITE from a carrier to one of the tenant's numbers.
v1::RouteCallRequest TrunkCall(const TenantInfo& t, const std::string& did,
                               const std::string& from = kCaller) {
  v1::RouteCallRequest req;
  req.set_call_id(NewUuid());
  req.set_node_id("sip-1");
  req.set_sip_call_id("a84b4c76e66710@pc33.carrier.test");
  req.mutable_trunk()->set_tenant_id(t.id);
  req.mutable_trunk()->set_did(did);
  req.mutable_trunk()->set_source_address("192.0.2.10");
  req.set_from_number(from);
  req.set_from_display_name("Petra's phone");
  req.set_dialled(did);
  pg::SetTimestamp(req.mutable_received_at(), absl::Now());
  return req;
}

// What sip sends when an agent's registered phone dials `dialled`.
v1::RouteCallRequest PhoneCall(const TenantInfo& t, const Agent& a, const std::string& dialled) {
  v1::RouteCallRequest req;
  req.set_call_id(NewUuid());
  req.set_node_id("sip-1");
  req.mutable_phone()->set_tenant_id(t.id);
  req.mutable_phone()->set_user_id(a.user_id);
  req.mutable_phone()->set_extension(a.extension);
  req.set_from_number(a.extension);
  req.set_from_display_name("Agent");
  req.set_dialled(dialled);
  return req;
}

orgv1::AgentProfile Profile(orgv1::IncomingCallPreference preference,
                            const std::string& mobile = "",
                            absl::Duration mobile_delay = absl::ZeroDuration()) {
  orgv1::AgentProfile p;
  p.set_incoming_call_preference(preference);
  if (!mobile.empty()) {
    orgv1::AgentPhone* phone = p.add_phones();
    phone->set_number(mobile);
    phone->set_mobile(true);
    phone->set_label("mobile");
  }
  if (mobile_delay > absl::ZeroDuration())
    *p.mutable_mobile_delay() = ToDurationProto(mobile_delay);
  return p;
}

v1::RingTarget ExtensionTarget(const Agent& a) {
  v1::RingTarget t;
  t.set_target_id(a.user_id + ":ext");
  t.set_agent_user_id(a.user_id);
  t.set_extension(a.extension);
  return t;
}

v1::RingTarget MobileTarget(const Agent& a, const std::string& number, const std::string& trunk,
                            absl::Duration delay = absl::ZeroDuration()) {
  v1::RingTarget t;
  t.set_target_id(a.user_id + ":mobile");
  t.set_agent_user_id(a.user_id);
  t.mutable_external()->set_number(number);
  t.mutable_external()->set_trunk_id(trunk);
  if (delay > absl::ZeroDuration()) *t.mutable_delay() = ToDurationProto(delay);
  return t;
}

v1::RingStep Step(std::vector<v1::RingTarget> targets, absl::Duration timeout) {
  v1::RingStep s;
  for (auto& t : targets) *s.add_targets() = std::move(t);
  *s.mutable_timeout() = ToDurationProto(timeout);
  return s;
}

void RequireEqual(const google::protobuf::Message& got, const google::protobuf::Message& want) {
  INFO("got:\n" << got.DebugString() << "want:\n" << want.DebugString());
  REQUIRE(google::protobuf::util::MessageDifferencer::Equals(got, want));
}

void RequireReject(const Routed& r, int sip_code, cv1::HangupCause cause,
                   const std::string& reason) {
  INFO(r.code << ": " << r.message << "\n" << r.response.DebugString());
  REQUIRE(r.code == grpc::OK);
  REQUIRE(r.response.instruction().has_reject());
  CHECK(r.response.instruction().sequence() == 1);
  CHECK(r.response.instruction().reject().sip_code() == sip_code);
  CHECK(r.response.instruction().reject().cause() == cause);
  CHECK(r.response.instruction().reject().reason() == reason);
}

// A schedule open 9:00-17:00 on `days` in `zone`, made by the admin with `token`.
orgv1::Schedule OfficeHours(RoutingFixture& f, const std::string& token, const std::string& zone,
                            const std::vector<orgv1::DayOfWeek>& days) {
  orgv1::CreateScheduleRequest req;
  orgv1::Schedule& s = *req.mutable_schedule();
  s.set_name("Office hours");
  s.set_time_zone(zone);
  for (orgv1::DayOfWeek day : days) {
    orgv1::WeeklyRange* range = s.add_weekly_ranges();
    range->set_day(day);
    range->mutable_start()->set_hours(9);
    range->mutable_end()->set_hours(17);
  }
  orgv1::Schedule schedule;
  SB_REQUIRE_GRPC_OK(f.org_stub().CreateSchedule(f.Ctx(token).get(), req, &schedule));
  return schedule;
}

// Selections are ordered by the millisecond they were made: keep them apart.
void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }

TEST_CASE("RouteCall hunts the agents who selected the number's project in order",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string trunk = f.CreateTrunk(admin, "Carrier");
  const std::string sales = f.CreateProject(admin, "Sales");
  const std::string service = f.CreateProject(admin, "Service");
  f.CreateNumber(admin, kDid, sales, trunk);

  const Agent anna = f.CreateAgent(
      acme, "anna", Profile(orgv1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS, "+36301110001"));
  const Agent bob = f.CreateAgent(acme, "bob",
                                  Profile(orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_THEN_MOBILE,
                                          "+36301110002", absl::Seconds(8)));
  // Cara has a mobile, but wants calls on her extension only.
  const Agent cara = f.CreateAgent(
      acme, "cara", Profile(orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY, "+36301110003"));
  const Agent dan = f.CreateAgent(
      acme, "dan", Profile(orgv1::INCOMING_CALL_PREFERENCE_MOBILE_ONLY, "+36301110004"));
  const Agent eve =
      f.CreateAgent(acme, "eve", Profile(orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY));
  // Cara selected first, but only as her secondary project: primary selectors come first.
  f.Select(cara, service, {sales});
  Tick();
  f.Select(anna, sales);
  Tick();
  f.Select(bob, sales, {service});
  Tick();
  f.Select(dan, sales);
  Tick();
  f.Select(eve, service);  // not on Sales: not rung

  // The caller is a known contact.
  orgv1::CreateContactRequest contact;
  contact.mutable_contact()->set_first_name("Petra");
  contact.mutable_contact()->set_last_name("Kovacs");
  contact.mutable_contact()->add_phone_numbers()->set_number(kCaller);
  orgv1::Contact saved;
  SB_REQUIRE_GRPC_OK(f.org_stub().CreateContact(f.Ctx(admin).get(), contact, &saved));

  const v1::RouteCallRequest req = TrunkCall(acme, kDid);
  const Routed r = Route(f, req);
  INFO(r.code << ": " << r.message);
  REQUIRE(r.code == grpc::OK);

  v1::RouteCallResponse want;
  want.set_direction(cv1::CALL_DIRECTION_INBOUND);
  v1::RoutingInstruction& in = *want.mutable_instruction();
  in.set_call_id(req.call_id());
  in.set_sequence(1);
  in.mutable_attributes()->set_tenant_id(acme.id);
  in.mutable_attributes()->set_record(true);  // a new tenant's policy: every call recorded
  in.mutable_attributes()->set_project_id(sales);
  in.mutable_attributes()->set_caller_name("Petra Kovacs");
  v1::RingPlan& plan = *in.mutable_ring();
  plan.set_caller_id_number(kCaller);
  plan.set_caller_id_name("Petra Kovacs");
  *plan.add_steps() =
      Step({ExtensionTarget(anna), MobileTarget(anna, "+36301110001", trunk)}, absl::Seconds(20));
  // Extension then mobile: the extension alone for the mobile delay, then the mobile alone.
  *plan.add_steps() = Step({ExtensionTarget(bob)}, absl::Seconds(8));
  *plan.add_steps() = Step({MobileTarget(bob, "+36301110002", trunk)}, absl::Seconds(20));
  *plan.add_steps() = Step({MobileTarget(dan, "+36301110004", trunk)}, absl::Seconds(20));
  *plan.add_steps() = Step({ExtensionTarget(cara)}, absl::Seconds(20));
  RequireEqual(r.response, want);

  SECTION("the project's recording policy overrides the tenant's") {
    for (const auto policy : {cv1::RECORDING_POLICY_NEVER, cv1::RECORDING_POLICY_ON_DEMAND,
                              cv1::RECORDING_POLICY_INHERIT}) {
      orgv1::UpdateProjectRequest update;
      update.mutable_project()->set_id(sales);
      update.mutable_project()->set_recording_policy(policy);
      update.mutable_update_mask()->add_paths("recording_policy");
      orgv1::Project updated;
      SB_REQUIRE_GRPC_OK(f.org_stub().UpdateProject(f.Ctx(admin).get(), update, &updated));
      const Routed again = Route(f, TrunkCall(acme, kDid));
      REQUIRE(again.code == grpc::OK);
      INFO(cv1::RecordingPolicy_Name(policy));
      // ON_DEMAND: not recorded unless someone starts it; INHERIT: the tenant's ALWAYS.
      CHECK(again.response.instruction().attributes().record() ==
            (policy == cv1::RECORDING_POLICY_INHERIT));
      CHECK(!again.response.instruction().attributes().has_recording_retention());
    }
  }

  SECTION("an unknown caller rings the same agents, showing the From display name") {
    const Routed anonymous = Route(f, TrunkCall(acme, kDid, "+36705550000"));
    REQUIRE(anonymous.code == grpc::OK);
    CHECK(anonymous.response.instruction().attributes().caller_name().empty());
    CHECK(anonymous.response.instruction().ring().caller_id_name() == "Petra's phone");
    CHECK(anonymous.response.instruction().ring().caller_id_number() == "+36705550000");
    RequireEqual(anonymous.response.instruction().ring().steps(0), plan.steps(0));
    CHECK(anonymous.response.instruction().ring().steps_size() == 5);
  }
  SECTION("a withheld number still rings: the name lookup is best effort") {
    const Routed withheld = Route(f, TrunkCall(acme, kDid, "anonymous"));
    REQUIRE(withheld.code == grpc::OK);
    CHECK(withheld.response.instruction().attributes().caller_name().empty());
    CHECK(withheld.response.instruction().ring().steps_size() == 5);
  }
  SECTION("an agent who ends the selection drops out of the next plan") {
    f.Select(anna, "");
    const Routed after = Route(f, TrunkCall(acme, kDid));
    REQUIRE(after.code == grpc::OK);
    REQUIRE(after.response.instruction().ring().steps_size() == 4);
    CHECK(after.response.instruction().ring().steps(0).targets(0).agent_user_id() == bob.user_id);
  }
}

TEST_CASE("RouteCall answers 404 for unknown disabled and foreign numbers",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const TenantInfo globex = f.CreateTenant("globex");
  const std::string trunk = f.CreateTrunk(acme.admin_token, "Carrier");
  const std::string sales = f.CreateProject(acme.admin_token, "Sales");
  const std::string number = f.CreateNumber(acme.admin_token, kDid, sales, trunk);
  const Agent anna = f.CreateAgent(acme, "anna");
  f.Select(anna, sales);
  REQUIRE(Route(f, TrunkCall(acme, kDid)).response.instruction().has_ring());

  RequireReject(Route(f, TrunkCall(acme, "+3612349999")), 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
                "UNALLOCATED_NUMBER");
  // Another tenant's trunk cannot take calls for acme's number.
  RequireReject(Route(f, TrunkCall(globex, kDid)), 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
                "UNALLOCATED_NUMBER");
  // Not a number at all.
  RequireReject(Route(f, TrunkCall(acme, "12345")), 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
                "UNALLOCATED_NUMBER");

  orgv1::UpdateNumberRequest off;
  off.mutable_number()->set_id(number);
  off.mutable_number()->set_enabled(false);
  off.mutable_update_mask()->add_paths("enabled");
  orgv1::Number updated;
  SB_REQUIRE_GRPC_OK(f.org_stub().UpdateNumber(f.Ctx(acme.admin_token).get(), off, &updated));
  RequireReject(Route(f, TrunkCall(acme, kDid)), 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
                "UNALLOCATED_NUMBER");
}

TEST_CASE("RouteCall answers 480 AFTER_HOURS outside the number's working hours",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const orgv1::Schedule schedule = OfficeHours(
      f, admin, "Europe/Budapest",
      {orgv1::DAY_OF_WEEK_MONDAY, orgv1::DAY_OF_WEEK_TUESDAY, orgv1::DAY_OF_WEEK_WEDNESDAY,
       orgv1::DAY_OF_WEEK_THURSDAY, orgv1::DAY_OF_WEEK_FRIDAY});
  const std::string trunk = f.CreateTrunk(admin, "Carrier");
  const std::string sales = f.CreateProject(admin, "Sales");
  f.CreateNumber(admin, kDid, sales, trunk, schedule.id());
  const Agent anna = f.CreateAgent(acme, "anna");
  f.Select(anna, sales);

  const absl::TimeZone utc = absl::UTCTimeZone();
  // Saturday 1 June 2024, 14:00 in Budapest.
  v1::RouteCallRequest saturday = TrunkCall(acme, kDid);
  pg::SetTimestamp(saturday.mutable_received_at(),
                   absl::FromCivil(absl::CivilSecond(2024, 6, 1, 12, 0, 0), utc));
  const Routed closed = Route(f, saturday);
  RequireReject(closed, 480, cv1::HANGUP_CAUSE_AFTER_HOURS, "AFTER_HOURS");
  CHECK(closed.response.direction() == cv1::CALL_DIRECTION_INBOUND);
  CHECK(closed.response.instruction().attributes().tenant_id() == acme.id);
  CHECK(closed.response.instruction().attributes().project_id() == sales);
  // Monday 3 June 2024, 18:30 in Budapest: after closing.
  v1::RouteCallRequest evening = TrunkCall(acme, kDid);
  pg::SetTimestamp(evening.mutable_received_at(),
                   absl::FromCivil(absl::CivilSecond(2024, 6, 3, 16, 30, 0), utc));
  RequireReject(Route(f, evening), 480, cv1::HANGUP_CAUSE_AFTER_HOURS, "AFTER_HOURS");

  // Monday 3 June 2024, 10:00 in Budapest: open.
  v1::RouteCallRequest monday = TrunkCall(acme, kDid);
  pg::SetTimestamp(monday.mutable_received_at(),
                   absl::FromCivil(absl::CivilSecond(2024, 6, 3, 8, 0, 0), utc));
  const Routed open = Route(f, monday);
  REQUIRE(open.code == grpc::OK);
  REQUIRE(open.response.instruction().ring().steps_size() == 1);
  RequireEqual(open.response.instruction().ring().steps(0),
               Step({ExtensionTarget(anna)}, absl::Seconds(20)));
}

TEST_CASE("RouteCall answers 480 NO_AGENTS when nobody can take the call",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string trunk = f.CreateTrunk(admin, "Carrier");
  const std::string sales = f.CreateProject(admin, "Sales");
  const std::string service = f.CreateProject(admin, "Service");
  f.CreateNumber(admin, kDid, sales, trunk);
  f.CreateNumber(admin, "+3612345601", "", trunk);  // no project

  // Nobody has selected Sales (anna works Service).
  const Agent anna = f.CreateAgent(acme, "anna");
  f.Select(anna, service);
  const Routed nobody = Route(f, TrunkCall(acme, kDid));
  RequireReject(nobody, 480, cv1::HANGUP_CAUSE_USER_UNAVAILABLE, "NO_AGENTS");
  CHECK(nobody.response.instruction().attributes().project_id() == sales);

  RequireReject(Route(f, TrunkCall(acme, "+3612345601")), 480, cv1::HANGUP_CAUSE_USER_UNAVAILABLE,
                "NO_AGENTS");
}

TEST_CASE("RouteCall from a phone rings another extension as an internal call",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const Agent anna = f.CreateAgent(acme, "anna");
  // Bob's mobile is not rung for a colleague's call, whatever his preference.
  const Agent bob = f.CreateAgent(
      acme, "bob", Profile(orgv1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS, "+36301110002"));

  const v1::RouteCallRequest req = PhoneCall(acme, anna, bob.extension);
  const Routed r = Route(f, req);
  INFO(r.code << ": " << r.message);
  REQUIRE(r.code == grpc::OK);
  v1::RouteCallResponse want;
  want.set_direction(cv1::CALL_DIRECTION_INTERNAL);
  v1::RoutingInstruction& in = *want.mutable_instruction();
  in.set_call_id(req.call_id());
  in.set_sequence(1);
  in.mutable_attributes()->set_tenant_id(acme.id);
  in.mutable_attributes()->set_record(true);  // a new tenant's policy: every call recorded
  in.mutable_ring()->set_caller_id_number(anna.extension);
  in.mutable_ring()->set_caller_id_name("Agent");
  *in.mutable_ring()->add_steps() = Step({ExtensionTarget(bob)}, absl::Seconds(30));
  RequireEqual(r.response, want);

  // Dialling your own extension.
  const Routed self = Route(f, PhoneCall(acme, anna, anna.extension));
  RequireReject(self, 486, cv1::HANGUP_CAUSE_USER_BUSY, "OWN_EXTENSION");
  CHECK(self.response.direction() == cv1::CALL_DIRECTION_INTERNAL);
}

TEST_CASE("RouteCall from a phone to an external number goes through outbound authorisation",
          "[routing][route_call][outbound]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string trunk = f.CreateTrunk(admin, "Carrier");
  const std::string sales = f.CreateProject(admin, "Sales");
  f.CreateNumber(admin, kDid, sales, trunk);
  f.TopUp(admin, 50);
  orgv1::AgentProfile may_call_out;
  may_call_out.set_outbound_enabled(true);
  const Agent anna = f.CreateAgent(acme, "anna", may_call_out);
  f.CreatePin(admin, anna.user_id, "582947");

  // A national number, dialled the way people in Hungary do: allowed without a PIN, showing the
  // number that the trunk carries.
  const v1::RouteCallRequest national = PhoneCall(acme, anna, "06 30 123 4567");
  const Routed r = Route(f, national);
  INFO(r.code << ": " << r.message);
  REQUIRE(r.code == grpc::OK);
  v1::RouteCallResponse want;
  want.set_direction(cv1::CALL_DIRECTION_OUTBOUND);
  v1::RoutingInstruction& in = *want.mutable_instruction();
  in.set_call_id(national.call_id());
  in.set_sequence(1);
  in.mutable_attributes()->set_tenant_id(acme.id);
  in.mutable_attributes()->set_record(true);  // a new tenant's policy: every call recorded
  in.mutable_ring()->set_caller_id_number(kDid);
  v1::RingTarget out;
  out.set_target_id("external");
  out.mutable_external()->set_number("+36301234567");
  out.mutable_external()->set_trunk_id(trunk);
  out.mutable_external()->set_caller_id_number(kDid);
  *in.mutable_ring()->add_steps() = Step({out}, absl::Seconds(60));
  RequireEqual(r.response, want);

  // International: a PIN is needed, and there is no IVR to ask for one yet.
  const Routed no_pin = Route(f, PhoneCall(acme, anna, "0049301234567"));
  RequireReject(no_pin, 403, cv1::HANGUP_CAUSE_FORBIDDEN, "PIN_REQUIRED");
  CHECK(no_pin.response.direction() == cv1::CALL_DIRECTION_OUTBOUND);
  RequireReject(Route(f, PhoneCall(acme, anna, "*111999*0049301234567")), 403,
                cv1::HANGUP_CAUSE_FORBIDDEN, "PIN_INVALID");
  const Routed with_pin = Route(f, PhoneCall(acme, anna, "*582947*0049301234567"));
  REQUIRE(with_pin.code == grpc::OK);
  REQUIRE(with_pin.response.instruction().ring().steps_size() == 1);
  out.mutable_external()->set_number("+49301234567");
  RequireEqual(with_pin.response.instruction().ring().steps(0), Step({out}, absl::Seconds(60)));

  // Premium-rate numbers are blocked; what is no number at all is not found.
  RequireReject(Route(f, PhoneCall(acme, anna, "06 90 123 456")), 403, cv1::HANGUP_CAUSE_FORBIDDEN,
                "DESTINATION_BLOCKED");
  RequireReject(Route(f, PhoneCall(acme, anna, "12")), 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
                "INVALID_NUMBER");
}

TEST_CASE("RouteCall refuses malformed requests naming the field", "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const v1::RouteCallRequest good = TrunkCall(acme, kDid);
  auto field_of = [&](const std::function<void(v1::RouteCallRequest&)>& edit) {
    v1::RouteCallRequest req = good;
    edit(req);
    const Routed r = Route(f, req);
    INFO(r.message);
    CHECK(r.code == grpc::INVALID_ARGUMENT);
    return r.field;
  };
  CHECK(field_of([](auto& r) { r.set_call_id("call-1"); }) == "call_id");
  CHECK(field_of([](auto& r) { r.clear_call_id(); }) == "call_id");
  CHECK(field_of([](auto& r) { r.clear_dialled(); }) == "dialled");
  CHECK(field_of([](auto& r) { r.clear_trunk(); }) == "origin");
  CHECK(field_of([](auto& r) { r.mutable_trunk()->set_tenant_id("acme"); }) == "trunk.tenant_id");
  CHECK(field_of([](auto& r) { r.mutable_trunk()->clear_did(); }) == "trunk.did");
  CHECK(field_of([](auto& r) { r.mutable_trunk()->set_number_id("n-1"); }) == "trunk.number_id");
  CHECK(field_of([](auto& r) { r.mutable_phone()->set_tenant_id(NewUuid()); }) == "phone.user_id");
  CHECK(field_of([](auto& r) { r.mutable_received_at()->set_nanos(-1); }) == "received_at");
}

TEST_CASE("routing's call RPCs are for the platform's services only", "[routing][auth]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const v1::RouteCallRequest req = TrunkCall(acme, kDid);
  CHECK(Route(f, req, f.Ctx()).code == grpc::UNAUTHENTICATED);
  CHECK(Route(f, req, f.Ctx(acme.admin_token)).code == grpc::PERMISSION_DENIED);
  CHECK(Route(f, req, f.Ctx(f.org().platform_token())).code == grpc::PERMISSION_DENIED);
  CHECK(Route(f, req, f.Ctx("not-a-token")).code == grpc::UNAUTHENTICATED);

  v1::ReportCallEventRequest event;
  event.set_call_id(req.call_id());
  event.set_instruction_sequence(1);
  event.mutable_ring_plan_failed();
  v1::ReportCallEventResponse event_out;
  CHECK(Code(f.stub().ReportCallEvent(f.Ctx().get(), event, &event_out)) == grpc::UNAUTHENTICATED);
  CHECK(Code(f.stub().ReportCallEvent(f.Ctx(acme.admin_token).get(), event, &event_out)) ==
        grpc::PERMISSION_DENIED);

  v1::AuthorizeOutboundCallRequest ask;
  ask.set_tenant_id(acme.id);
  ask.set_user_id(acme.admin_id);
  ask.set_dialled("+36301234567");
  v1::AuthorizeOutboundCallResponse decision;
  CHECK(Code(f.stub().AuthorizeOutboundCall(f.Ctx().get(), ask, &decision)) ==
        grpc::UNAUTHENTICATED);
  CHECK(Code(f.stub().AuthorizeOutboundCall(f.Ctx(acme.admin_token).get(), ask, &decision)) ==
        grpc::PERMISSION_DENIED);
}

// The domain classes over the fixture's org, through a GrpcDirectory with `options`, on a clock
// the test moves.
struct DirectRouter {
  DirectRouter(RoutingFixture& f, GrpcDirectoryOptions options)
      : directory([&f] { return f.org().identity().channel(); },
                  [&f] { return f.org().identity().channel(); },
                  f.org().identity().internal_token(), clock, options),
        outbound(directory),
        router(directory, outbound, clock) {}
  FakeClock clock;
  GrpcDirectory directory;
  OutboundAuthorizer outbound;
  CallRouter router;
};

TEST_CASE("With a number cache, numbers and working hours are reused, selections are not",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const orgv1::Schedule schedule =
      OfficeHours(f, admin, "UTC", {orgv1::DAY_OF_WEEK_MONDAY, orgv1::DAY_OF_WEEK_TUESDAY});
  const std::string trunk = f.CreateTrunk(admin, "Carrier");
  const std::string sales = f.CreateProject(admin, "Sales");
  const std::string service = f.CreateProject(admin, "Service");
  const std::string number = f.CreateNumber(admin, kDid, sales, trunk, schedule.id());
  const Agent anna = f.CreateAgent(acme, "anna");
  const Agent bob = f.CreateAgent(acme, "bob");
  f.Select(anna, sales);
  f.Select(bob, service);

  // The domain classes over a directory that caches numbers for 5 s.
  DirectRouter direct(f, {.number_cache_ttl = absl::Seconds(5)});
  FakeClock& clock = direct.clock;
  const CallRouter& router = direct.router;
  // On Monday 3 June 2024 (or Tuesday the 4th).
  auto at = [&](int hour, int minute, int day = 3) {
    v1::RouteCallRequest req = TrunkCall(acme, kDid);
    pg::SetTimestamp(
        req.mutable_received_at(),
        absl::FromCivil(absl::CivilSecond(2024, 6, day, hour, minute, 0), absl::UTCTimeZone()));
    absl::StatusOr<v1::RouteCallResponse> out = router.RouteCall(req);
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    return out->instruction();
  };
  auto rung = [](const v1::RoutingInstruction& i) {
    std::vector<std::string> users;
    for (const auto& step : i.ring().steps()) users.push_back(step.targets(0).agent_user_id());
    return users;
  };
  REQUIRE(rung(at(10, 0)) == std::vector<std::string>{anna.user_id});

  // Without an agent cache, selections take effect on the next call.
  f.Select(bob, sales);
  REQUIRE(rung(at(10, 1)) == std::vector<std::string>{anna.user_id, bob.user_id});

  // The number disabled and the hours changed (closed all week): the cached answers still apply
  // within the 5 s, for instants before the hours' next change (Monday 17:00) ...
  orgv1::UpdateNumberRequest off;
  off.mutable_number()->set_id(number);
  off.mutable_number()->set_enabled(false);
  off.mutable_update_mask()->add_paths("enabled");
  orgv1::Number updated;
  SB_REQUIRE_GRPC_OK(f.org_stub().UpdateNumber(f.Ctx(admin).get(), off, &updated));
  orgv1::UpdateScheduleRequest closed;
  closed.mutable_schedule()->set_id(schedule.id());
  closed.mutable_update_mask()->add_paths("weekly_ranges");
  orgv1::Schedule changed;
  SB_REQUIRE_GRPC_OK(f.org_stub().UpdateSchedule(f.Ctx(admin).get(), closed, &changed));
  clock.Advance(absl::Seconds(4));
  CHECK(at(10, 2).has_ring());
  // ... an instant the cached status does not cover is asked again (Tuesday 10:00 was open) ...
  CHECK(at(10, 0, /*day=*/4).reject().reason() == "AFTER_HOURS");
  // ... and once the 5 s have passed, org's answers are taken afresh.
  clock.Advance(absl::Seconds(2));
  CHECK(at(10, 3).reject().reason() == "UNALLOCATED_NUMBER");
  off.mutable_number()->set_enabled(true);
  SB_REQUIRE_GRPC_OK(f.org_stub().UpdateNumber(f.Ctx(admin).get(), off, &updated));
  clock.Advance(absl::Seconds(6));
  CHECK(at(10, 4).reject().reason() == "AFTER_HOURS");
}

TEST_CASE("With an agent cache, selections and profiles are reused for its time; names too",
          "[routing][route_call]") {
  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string trunk = f.CreateTrunk(admin, "Carrier");
  const std::string sales = f.CreateProject(admin, "Sales");
  f.CreateNumber(admin, kDid, sales, trunk);
  const Agent anna = f.CreateAgent(acme, "anna");
  const Agent bob = f.CreateAgent(acme, "bob");
  f.Select(anna, sales);

  DirectRouter direct(f,
                      {.number_cache_ttl = absl::Seconds(5), .agent_cache_ttl = absl::Seconds(1)});
  FakeClock& clock = direct.clock;
  const CallRouter& router = direct.router;
  auto route = [&] {
    absl::StatusOr<v1::RouteCallResponse> out = router.RouteCall(TrunkCall(acme, kDid));
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    return out->instruction();
  };
  // Who is rung, as "user:extension".
  auto rung = [](const v1::RoutingInstruction& i) {
    std::vector<std::string> targets;
    for (const auto& step : i.ring().steps()) {
      targets.push_back(
          absl::StrCat(step.targets(0).agent_user_id(), ":", step.targets(0).extension()));
    }
    return targets;
  };
  const std::string anna_was = absl::StrCat(anna.user_id, ":", anna.extension);
  const v1::RoutingInstruction first = route();
  REQUIRE(rung(first) == std::vector<std::string>{anna_was});
  CHECK(first.attributes().caller_name().empty());

  // Bob selects Sales, Anna's extension changes and the caller becomes a contact: within the
  // agent cache's second the call still rings as before, and the caller is still unnamed.
  f.Select(bob, sales);
  orgv1::UpdateAgentProfileRequest moved;
  moved.mutable_profile()->set_user_id(anna.user_id);
  moved.mutable_profile()->set_extension("190");
  moved.mutable_update_mask()->add_paths("extension");
  orgv1::AgentProfile updated;
  SB_REQUIRE_GRPC_OK(f.org_stub().UpdateAgentProfile(f.Ctx(admin).get(), moved, &updated));
  orgv1::CreateContactRequest contact;
  contact.mutable_contact()->set_company("Kovacs Kft");
  contact.mutable_contact()->add_phone_numbers()->set_number(kCaller);
  orgv1::Contact saved;
  SB_REQUIRE_GRPC_OK(f.org_stub().CreateContact(f.Ctx(admin).get(), contact, &saved));
  clock.Advance(absl::Milliseconds(900));
  CHECK(rung(route()) == std::vector<std::string>{anna_was});

  // Past the second: both agents, Anna on her new extension (Bob's profile is asked once, with
  // Anna's); the name waits for the number cache's 5 s.
  clock.Advance(absl::Milliseconds(200));
  const v1::RoutingInstruction later = route();
  CHECK(rung(later) == std::vector<std::string>{absl::StrCat(anna.user_id, ":190"),
                                                absl::StrCat(bob.user_id, ":", bob.extension)});
  CHECK(later.attributes().caller_name().empty());
  clock.Advance(absl::Seconds(5));
  CHECK(route().attributes().caller_name() == "Kovacs Kft");
}

TEST_CASE("routing answers Unavailable when org cannot be reached", "[routing][route_call]") {
  // The domain classes over a directory whose services are down: nothing listens on the port.
  SystemClock clock;
  auto dead = [] { return grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()); };
  GrpcDirectory directory(
      dead, dead, "token", clock,
      {.deadline = absl::Milliseconds(300), .caller_name_deadline = absl::Milliseconds(100)});
  OutboundAuthorizer outbound(directory);
  CallRouter router(directory, outbound, clock);
  TenantInfo t{.id = NewUuid()};
  absl::StatusOr<v1::RouteCallResponse> inbound = router.RouteCall(TrunkCall(t, kDid));
  INFO(inbound.status().ToString());
  CHECK(absl::IsUnavailable(inbound.status()));
  Agent anna{.user_id = NewUuid(), .extension = "100"};
  CHECK(absl::IsUnavailable(router.RouteCall(PhoneCall(t, anna, "101")).status()));
  CHECK(absl::IsUnavailable(router.RouteCall(PhoneCall(t, anna, "+36301234567")).status()));

  RoutingFixture f;
  const TenantInfo acme = f.CreateTenant("acme");
  // A directory that shows the wrong credential: a deployment fault, not a retry.
  GrpcDirectory misconfigured([&f] { return f.org().identity().channel(); },
                              [&f] { return f.org().identity().channel(); }, "wrong-token", clock);
  OutboundAuthorizer outbound2(misconfigured);
  CallRouter router2(misconfigured, outbound2, clock);
  CHECK(absl::IsInternal(router2.RouteCall(TrunkCall(acme, kDid)).status()));
}

}  // namespace
}  // namespace sb::routing::test
