// Working-hour schedules through OrgService's gRPC API: CRUD, names unique per tenant, input
// errors naming their field, EvaluateSchedule on stored and unsaved schedules at DST changes and
// holidays, deletion refused while a team uses the schedule, access by role and tenant.
// Expected instants are worked out by hand in UTC (Budapest: CET +01:00 / CEST +02:00, changes at
// 2024-03-31 01:00Z and 2024-10-27 01:00Z; New York: EST -05:00 / EDT -04:00).

#include <catch2/catch.hpp>

#include <string>

#include "absl/time/time.h"
#include "libs/pg/fields.h"
#include "switchboard/common/v1/errors.pb.h"
#include "tests/integration/services/org/org_fixture.h"
#include "tests/support/schedule_builders.h"

namespace sb::org::test {
namespace {

using namespace sb::schedule::testing;  // NOLINT: schedule builders
using Exception = v1::ScheduleException;

// What a caller sees of a finished call: code and, for errors, the first field violation.
struct Outcome {
  grpc::StatusCode code = grpc::OK;
  std::string field;
  std::string reason;
  std::string message;
};

Outcome OutcomeOf(const grpc::Status& status, const grpc::ClientContext& context) {
  Outcome out{status.error_code(), "", "", status.error_message()};
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("sb-error-details-bin");
  if (it == trailers.end()) return out;
  ::switchboard::common::v1::ErrorDetails details;
  details.ParseFromString(std::string(it->second.data(), it->second.size()));
  for (const auto& d : details.details()) {
    if (d.has_field_violation()) {
      out.field = d.field_violation().field();
      out.reason = d.field_violation().reason();
      break;
    }
  }
  return out;
}

v1::Schedule Office(const std::string& name) {
  v1::Schedule s = Weekdays("Europe/Budapest", {{{9, 0}, {12, 0}}, {{13, 0}, {17, 0}}});
  s.set_name(name);
  s.set_description("Front desk");
  AddException(s, 2020, 12, 25, Exception::TYPE_HOLIDAY, "Christmas Day", true);
  AddSlot(AddException(s, 2024, 12, 24, Exception::TYPE_SPECIAL_HOURS, "Christmas Eve"), {9, 0},
          {12, 0});
  return s;
}

class Schedules {
 public:
  explicit Schedules(OrgFixture& f) : f_(f) {}

  Outcome Create(const std::string& token, const v1::Schedule& s, v1::Schedule* out = nullptr) {
    v1::CreateScheduleRequest req;
    *req.mutable_schedule() = s;
    v1::Schedule resp;
    auto ctx = f_.Ctx(token);
    const grpc::Status st = f_.stub().CreateSchedule(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp;
    return OutcomeOf(st, *ctx);
  }
  std::string MustCreate(const std::string& token, const v1::Schedule& s) {
    v1::Schedule out;
    const Outcome o = Create(token, s, &out);
    INFO(o.message);
    REQUIRE(o.code == grpc::OK);
    return out.id();
  }
  Outcome Get(const std::string& token, const std::string& id, v1::Schedule* out = nullptr) {
    v1::GetScheduleRequest req;
    req.set_schedule_id(id);
    v1::Schedule resp;
    auto ctx = f_.Ctx(token);
    const grpc::Status st = f_.stub().GetSchedule(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp;
    return OutcomeOf(st, *ctx);
  }
  Outcome Update(const std::string& token, const v1::Schedule& s,
                 std::initializer_list<std::string> paths, v1::Schedule* out = nullptr) {
    v1::UpdateScheduleRequest req;
    *req.mutable_schedule() = s;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    v1::Schedule resp;
    auto ctx = f_.Ctx(token);
    const grpc::Status st = f_.stub().UpdateSchedule(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp;
    return OutcomeOf(st, *ctx);
  }
  Outcome Delete(const std::string& token, const std::string& id) {
    v1::DeleteScheduleRequest req;
    req.set_schedule_id(id);
    google::protobuf::Empty resp;
    auto ctx = f_.Ctx(token);
    return OutcomeOf(f_.stub().DeleteSchedule(ctx.get(), req, &resp), *ctx);
  }
  Outcome List(const std::string& token, v1::ListSchedulesResponse* out,
               const std::string& query = "", int page_size = 0,
               const std::string& page_token = "") {
    v1::ListSchedulesRequest req;
    req.set_query(query);
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    auto ctx = f_.Ctx(token);
    return OutcomeOf(f_.stub().ListSchedules(ctx.get(), req, out), *ctx);
  }
  // Evaluates a stored schedule (by id) at an RFC 3339 instant.
  Outcome Evaluate(const std::string& token, const std::string& id, const std::string& at,
                   v1::EvaluateScheduleResponse* out) {
    v1::EvaluateScheduleRequest req;
    req.set_schedule_id(id);
    pg::SetTimestamp(req.mutable_at(), At(at));
    auto ctx = f_.Ctx(token);
    return OutcomeOf(f_.stub().EvaluateSchedule(ctx.get(), req, out), *ctx);
  }
  // Evaluates an unsaved schedule.
  Outcome Preview(const std::string& token, const v1::Schedule& s, const std::string& at,
                  v1::EvaluateScheduleResponse* out) {
    v1::EvaluateScheduleRequest req;
    *req.mutable_schedule() = s;
    pg::SetTimestamp(req.mutable_at(), At(at));
    auto ctx = f_.Ctx(token);
    return OutcomeOf(f_.stub().EvaluateSchedule(ctx.get(), req, out), *ctx);
  }

 private:
  OrgFixture& f_;
};

// "OPEN until 2024-03-31T02:00:00Z then CLOSED at 2024-03-31T03:00:00+02:00 (Christmas Day)".
std::string Show(const v1::EvaluateScheduleResponse& r) {
  std::string out = v1::ScheduleStatus_Name(r.status()).substr(16);
  if (r.has_next_change_at()) {
    out += " until " +
           absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", pg::FromProto(r.next_change_at()),
                            absl::UTCTimeZone()) +
           " then " + v1::ScheduleStatus_Name(r.next_status()).substr(16);
  } else {
    out += " for good";
    if (r.next_status() != v1::SCHEDULE_STATUS_UNSPECIFIED) out += " (next_status set!)";
  }
  out += " at " + r.local_time();
  if (!r.exception_name().empty()) out += " (" + r.exception_name() + ")";
  return out;
}

std::string Ranges(const v1::Schedule& s) {
  v1::Schedule only;
  *only.mutable_weekly_ranges() = s.weekly_ranges();
  *only.mutable_exceptions() = s.exceptions();
  return only.ShortDebugString();
}

TEST_CASE("schedules are created read listed updated and deleted", "[schedules]") {
  OrgFixture f;
  Schedules api(f);
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;

  v1::Schedule created;
  const v1::Schedule office = Office("Office hours");
  REQUIRE(api.Create(admin, office, &created).code == grpc::OK);
  CHECK(!created.id().empty());
  CHECK(created.tenant_id() == acme.id);
  CHECK(created.name() == "Office hours");
  CHECK(created.description() == "Front desk");
  CHECK(created.time_zone() == "Europe/Budapest");
  CHECK(Ranges(created) == Ranges(office));
  CHECK(created.has_created_at());
  CHECK(created.has_updated_at());

  v1::Schedule got;
  REQUIRE(api.Get(admin, created.id(), &got).code == grpc::OK);
  CHECK(got.ShortDebugString() == created.ShortDebugString());

  v1::Schedule night = Weekly("Europe/Budapest", {Range(kSun, {22, 0}, {6, 0})});
  night.set_name("Night line");
  const std::string night_id = api.MustCreate(admin, night);
  const std::string empty_id = api.MustCreate(admin, [] {
    v1::Schedule s = Weekly("UTC", {});
    s.set_name("Always closed");
    return s;
  }());

  SECTION("names are unique per tenant whatever their case") {
    const Outcome again = api.Create(admin, Office("office HOURS"));
    CHECK(again.code == grpc::ALREADY_EXISTS);
    CHECK(again.field == "schedule.name");
    v1::Schedule rename = got;
    rename.set_name("NIGHT line");
    const Outcome clash = api.Update(admin, rename, {"name"});
    CHECK(clash.code == grpc::ALREADY_EXISTS);
    CHECK(clash.field == "schedule.name");
    // Another tenant may use the name.
    TenantInfo globex = f.CreateTenant("globex");
    CHECK(api.Create(globex.admin_token, Office("Office hours")).code == grpc::OK);
  }

  SECTION("listed by name with a query and pages") {
    v1::ListSchedulesResponse all;
    REQUIRE(api.List(admin, &all).code == grpc::OK);
    REQUIRE(all.schedules_size() == 3);
    CHECK(all.total_size() == 3);
    CHECK(all.schedules(0).name() == "Always closed");
    CHECK(all.schedules(1).name() == "Night line");
    CHECK(all.schedules(2).name() == "Office hours");
    CHECK(Ranges(all.schedules(2)) == Ranges(office));
    CHECK(all.next_page_token().empty());

    v1::ListSchedulesResponse found;
    REQUIRE(api.List(admin, &found, "NIGHT").code == grpc::OK);
    REQUIRE(found.schedules_size() == 1);
    CHECK(found.schedules(0).id() == night_id);

    v1::ListSchedulesResponse first;
    REQUIRE(api.List(admin, &first, "", 2).code == grpc::OK);
    CHECK(first.schedules_size() == 2);
    CHECK(first.total_size() == 3);
    REQUIRE(!first.next_page_token().empty());
    v1::ListSchedulesResponse second;
    REQUIRE(api.List(admin, &second, "", 2, first.next_page_token()).code == grpc::OK);
    REQUIRE(second.schedules_size() == 1);
    CHECK(second.schedules(0).name() == "Office hours");
    CHECK(second.next_page_token().empty());
    // A token belongs to its query.
    v1::ListSchedulesResponse other;
    CHECK(api.List(admin, &other, "night", 2, first.next_page_token()).code ==
          grpc::INVALID_ARGUMENT);
  }

  SECTION("updated field by field") {
    v1::Schedule change;
    change.set_id(created.id());
    change.set_time_zone("America/New_York");
    change.set_name("Ignored: not in the mask");
    v1::Schedule updated;
    REQUIRE(api.Update(admin, change, {"time_zone"}, &updated).code == grpc::OK);
    CHECK(updated.time_zone() == "America/New_York");
    CHECK(updated.name() == "Office hours");
    CHECK(Ranges(updated) == Ranges(office));
    CHECK(pg::FromProto(updated.updated_at()) > pg::FromProto(created.updated_at()));
    CHECK(updated.created_at().ShortDebugString() == created.created_at().ShortDebugString());

    change.clear_time_zone();
    change.set_name("Front desk hours");
    *change.add_weekly_ranges() = Range(kSat, {10, 0}, {14, 0});
    REQUIRE(api.Update(admin, change, {"name", "weekly_ranges", "exceptions"}, &updated).code ==
            grpc::OK);
    CHECK(updated.name() == "Front desk hours");
    CHECK(updated.time_zone() == "America/New_York");
    REQUIRE(updated.weekly_ranges_size() == 1);
    CHECK(updated.weekly_ranges(0).day() == kSat);
    CHECK(updated.exceptions_size() == 0);
    v1::Schedule reread;
    REQUIRE(api.Get(admin, created.id(), &reread).code == grpc::OK);
    CHECK(reread.ShortDebugString() == updated.ShortDebugString());

    CHECK(api.Update(admin, change, {}).field == "update_mask");
    CHECK(api.Update(admin, change, {"id"}).field == "update_mask");
    change.set_id("7b0d7f44-0000-4000-8000-000000000000");
    CHECK(api.Update(admin, change, {"name"}).code == grpc::NOT_FOUND);
  }

  SECTION("deleted") {
    REQUIRE(api.Delete(admin, empty_id).code == grpc::OK);
    CHECK(api.Get(admin, empty_id).code == grpc::NOT_FOUND);
    CHECK(api.Delete(admin, empty_id).code == grpc::NOT_FOUND);
    CHECK(api.Delete(admin, "not-a-uuid").code == grpc::NOT_FOUND);
    v1::ListSchedulesResponse all;
    REQUIRE(api.List(admin, &all).code == grpc::OK);
    CHECK(all.total_size() == 2);
  }
}

TEST_CASE("schedule input errors name their field", "[schedules]") {
  OrgFixture f;
  Schedules api(f);
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  auto create = [&](v1::Schedule s) {
    if (s.name().empty()) s.set_name("Hours");
    const Outcome o = api.Create(admin, s);
    CHECK(o.code == grpc::INVALID_ARGUMENT);
    return o.field + " " + o.reason;
  };

  v1::Schedule bad_zone = Office("Hours");
  bad_zone.set_time_zone("Europe/Atlantis");
  CHECK(create(bad_zone) == "schedule.time_zone UNKNOWN_TIME_ZONE");
  CHECK(create(Weekly("UTC", {Range(kMon, {9, 0}, {12, 0}), Range(kMon, {11, 0}, {13, 0})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  // Sunday night's range runs into Monday morning's.
  CHECK(create(Weekly("UTC", {Range(kSun, {22, 0}, {6, 0}), Range(kMon, {5, 0}, {9, 0})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  CHECK(create(Weekly("UTC", {Range(kMon, {9, 0}, {25, 0})})) ==
        "schedule.weekly_ranges[0].end INVALID_TIME");
  CHECK(create(Weekly("UTC", {Range(kMon, {24, 0}, {10, 0})})) ==
        "schedule.weekly_ranges[0].start INVALID_TIME");
  CHECK(create(Weekly("UTC", {Range(kMon, {9, 75}, {10, 0})})) ==
        "schedule.weekly_ranges[0].start INVALID_TIME");
  CHECK(create(Weekly("UTC", {Range(kMon, {9, 0}, {9, 0})})) ==
        "schedule.weekly_ranges[0].end EMPTY_RANGE");
  CHECK(create(Weekly("UTC", {Range(v1::DAY_OF_WEEK_UNSPECIFIED, {9, 0}, {10, 0})})) ==
        "schedule.weekly_ranges[0].day REQUIRED");
  v1::Schedule no_name = Office("");
  no_name.set_name("   ");
  CHECK(create(no_name) == "schedule.name REQUIRED");
  v1::Schedule long_text = Office("Hours");
  long_text.set_description(std::string(1001, 'x'));
  CHECK(create(long_text) == "schedule.description TOO_LONG");
  v1::Schedule special = Office("Hours");
  AddException(special, 2025, 1, 2, Exception::TYPE_SPECIAL_HOURS, "No hours");
  CHECK(create(special) == "schedule.exceptions[2].hours REQUIRED");
  v1::Schedule duplicate = Office("Hours");
  AddException(duplicate, 2024, 12, 24, Exception::TYPE_CLOSED, "Again");
  CHECK(create(duplicate) == "schedule.exceptions[2].date DUPLICATE_DATE");
  v1::Schedule bad_date = Office("Hours");
  AddException(bad_date, 2025, 2, 29, Exception::TYPE_HOLIDAY, "No such day");
  CHECK(create(bad_date) == "schedule.exceptions[2].date INVALID_DATE");

  // Updates check the schedule as it will be.
  const std::string id = api.MustCreate(admin, Office("Hours"));
  v1::Schedule change;
  change.set_id(id);
  *change.add_weekly_ranges() = Range(kTue, {8, 0}, {10, 0});
  *change.add_weekly_ranges() = Range(kTue, {9, 0}, {11, 0});
  Outcome o = api.Update(admin, change, {"weekly_ranges"});
  CHECK(o.code == grpc::INVALID_ARGUMENT);
  CHECK(o.field == "schedule.weekly_ranges[1]");
  change.set_time_zone("Nowhere/Land");
  o = api.Update(admin, change, {"time_zone"});
  CHECK(o.field == "schedule.time_zone");
  CHECK(o.reason == "UNKNOWN_TIME_ZONE");
  // Nothing was changed by the refused updates.
  v1::Schedule still;
  REQUIRE(api.Get(admin, id, &still).code == grpc::OK);
  CHECK(Ranges(still) == Ranges(Office("Hours")));
  CHECK(still.time_zone() == "Europe/Budapest");

  // An unsaved schedule is checked the same way (but may still lack a name).
  v1::EvaluateScheduleResponse r;
  o = api.Preview(admin, bad_zone, "2024-01-01T00:00:00Z", &r);
  CHECK(o.code == grpc::INVALID_ARGUMENT);
  CHECK(o.field == "schedule.time_zone");
  v1::Schedule unnamed = Office("");
  CHECK(api.Preview(admin, unnamed, "2024-01-01T00:00:00Z", &r).code == grpc::OK);
  v1::EvaluateScheduleRequest neither;
  auto ctx = f.Ctx(admin);
  o = OutcomeOf(f.stub().EvaluateSchedule(ctx.get(), neither, &r), *ctx);
  CHECK(o.code == grpc::INVALID_ARGUMENT);
  CHECK(o.field == "schedule_id");
}

TEST_CASE("EvaluateSchedule answers across DST changes and holidays", "[schedules]") {
  OrgFixture f;
  Schedules api(f);
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  v1::Schedule hours = Office("Hours");
  *hours.add_weekly_ranges() = Range(kSun, {2, 30}, {4, 0});  // starts in the skipped hour
  const std::string id = api.MustCreate(admin, hours);
  auto eval = [&](const std::string& at) {
    v1::EvaluateScheduleResponse r;
    const Outcome o = api.Evaluate(admin, id, at, &r);
    INFO(o.message);
    REQUIRE(o.code == grpc::OK);
    return Show(r);
  };

  // Spring forward: 02:00 CET becomes 03:00 CEST at 01:00Z; 02:30 does not exist that day.
  CHECK(eval("2024-03-31T00:30:00Z") ==
        "CLOSED until 2024-03-31T01:00:00Z then OPEN at 2024-03-31T01:30:00+01:00");
  CHECK(eval("2024-03-31T01:00:00Z") ==
        "OPEN until 2024-03-31T02:00:00Z then CLOSED at 2024-03-31T03:00:00+02:00");
  // Fall back: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:30 happens twice.
  CHECK(eval("2024-10-27T00:30:00Z") ==
        "OPEN until 2024-10-27T01:00:00Z then CLOSED at 2024-10-27T02:30:00+02:00");
  CHECK(eval("2024-10-27T01:00:00Z") ==
        "CLOSED until 2024-10-27T01:30:00Z then OPEN at 2024-10-27T02:00:00+01:00");
  CHECK(eval("2024-10-27T01:30:00Z") ==
        "OPEN until 2024-10-27T03:00:00Z then CLOSED at 2024-10-27T02:30:00+01:00");
  // Friday evening to Monday morning across the spring change (Monday 09:00 CEST is 07:00Z).
  CHECK(eval("2024-03-29T16:00:00Z") ==
        "CLOSED until 2024-03-31T01:00:00Z then OPEN at 2024-03-29T17:00:00+01:00");
  CHECK(eval("2024-03-31T02:00:00Z") ==
        "CLOSED until 2024-04-01T07:00:00Z then OPEN at 2024-03-31T04:00:00+02:00");
  // Holidays and special hours.
  CHECK(eval("2024-12-25T10:00:00Z") ==
        "HOLIDAY until 2024-12-25T23:00:00Z then CLOSED at 2024-12-25T11:00:00+01:00 "
        "(Christmas Day)");
  CHECK(eval("2024-12-24T10:00:00Z") ==
        "OPEN until 2024-12-24T11:00:00Z then CLOSED at 2024-12-24T11:00:00+01:00 "
        "(Christmas Eve)");
  CHECK(eval("2024-12-24T11:00:00Z") ==
        "CLOSED until 2024-12-24T23:00:00Z then HOLIDAY at 2024-12-24T12:00:00+01:00 "
        "(Christmas Eve)");

  SECTION("a changed schedule is evaluated as it is now") {
    v1::Schedule change;
    change.set_id(id);
    change.set_time_zone("America/New_York");
    REQUIRE(api.Update(admin, change, {"time_zone"}).code == grpc::OK);
    // New York springs forward on 2024-03-10 at 07:00Z; Sunday 02:30-04:00 opens then.
    CHECK(eval("2024-03-10T06:30:00Z") ==
          "CLOSED until 2024-03-10T07:00:00Z then OPEN at 2024-03-10T01:30:00-05:00");
    CHECK(eval("2024-03-31T00:30:00Z") ==
          "CLOSED until 2024-03-31T06:30:00Z then OPEN at 2024-03-30T20:30:00-04:00");
  }

  SECTION("an unsaved schedule in New York") {
    v1::EvaluateScheduleResponse r;
    const v1::Schedule ny = Weekdays("America/New_York", {{{9, 0}, {17, 0}}});
    // Friday 17:00 EDT; Monday 09:00 EST after the fall-back weekend.
    REQUIRE(api.Preview(admin, ny, "2024-11-01T21:00:00Z", &r).code == grpc::OK);
    CHECK(Show(r) == "CLOSED until 2024-11-04T14:00:00Z then OPEN at 2024-11-01T17:00:00-04:00");
    // The repeated hour 01:00-02:00 is open twice in a night schedule.
    const v1::Schedule night = Weekly("America/New_York", {Range(kSun, {1, 15}, {1, 45})});
    REQUIRE(api.Preview(admin, night, "2024-11-03T05:45:00Z", &r).code == grpc::OK);
    CHECK(Show(r) == "CLOSED until 2024-11-03T06:15:00Z then OPEN at 2024-11-03T01:45:00-04:00");
    std::vector<v1::WeeklyRange> all_week;
    for (v1::DayOfWeek d : {kMon, kTue, kWed, kThu, kFri, kSat, kSun}) {
      all_week.push_back(Range(d, {0, 0}, {24, 0}));
    }
    REQUIRE(api.Preview(admin, Weekly("UTC", all_week), "2024-06-01T12:00:00Z", &r).code ==
            grpc::OK);
    CHECK(Show(r) == "OPEN for good at 2024-06-01T12:00:00+00:00");
  }

  SECTION("now when no instant is given") {
    v1::EvaluateScheduleRequest req;
    req.set_schedule_id(id);
    v1::EvaluateScheduleResponse r;
    SB_REQUIRE_GRPC_OK(f.stub().EvaluateSchedule(f.Ctx(admin).get(), req, &r));
    CHECK(r.status() != v1::SCHEDULE_STATUS_UNSPECIFIED);
    CHECK(!r.local_time().empty());
    CHECK(r.has_next_change_at());
  }

  SECTION("services evaluate and read with their credential") {
    v1::EvaluateScheduleRequest req;
    req.set_tenant_id(acme.id);
    req.set_schedule_id(id);
    pg::SetTimestamp(req.mutable_at(), At("2024-12-25T10:00:00Z"));
    v1::EvaluateScheduleResponse r;
    SB_REQUIRE_GRPC_OK(f.stub().EvaluateSchedule(f.InternalCtx().get(), req, &r));
    CHECK(r.status() == v1::SCHEDULE_STATUS_HOLIDAY);
    CHECK(r.exception_name() == "Christmas Day");
    v1::GetScheduleRequest get;
    get.set_schedule_id(id);
    v1::Schedule s;
    SB_REQUIRE_GRPC_OK(f.stub().GetSchedule(f.InternalCtx(acme.id).get(), get, &s));
    CHECK(s.name() == "Hours");
    // The service credential names the tenant; without one there is nothing to look in.
    auto ctx = f.InternalCtx();
    CHECK(Code(f.stub().GetSchedule(ctx.get(), get, &s)) == grpc::INVALID_ARGUMENT);
  }
}

TEST_CASE("a schedule that a team uses cannot be deleted", "[schedules]") {
  OrgFixture f;
  Schedules api(f);
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string id = api.MustCreate(admin, Office("Hours"));

  v1::CreateTeamRequest create;
  create.mutable_team()->set_name("Support");
  create.mutable_team()->set_schedule_id(id);
  v1::Team team;
  SB_REQUIRE_GRPC_OK(f.stub().CreateTeam(f.Ctx(admin).get(), create, &team));
  REQUIRE(team.schedule_id() == id);

  const Outcome refused = api.Delete(admin, id);
  CHECK(refused.code == grpc::FAILED_PRECONDITION);
  CHECK_THAT(refused.message, Catch::Contains("1 team"));
  CHECK(api.Get(admin, id).code == grpc::OK);

  v1::UpdateTeamRequest detach;
  detach.mutable_team()->set_id(team.id());
  detach.mutable_update_mask()->add_paths("schedule_id");
  SB_REQUIRE_GRPC_OK(f.stub().UpdateTeam(f.Ctx(admin).get(), detach, &team));
  CHECK(api.Delete(admin, id).code == grpc::OK);
  CHECK(api.Get(admin, id).code == grpc::NOT_FOUND);
}

TEST_CASE("agents read schedules but cannot change them", "[schedules]") {
  OrgFixture f;
  Schedules api(f);
  TenantInfo acme = f.CreateTenant("acme");
  const std::string& admin = acme.admin_token;
  const std::string id = api.MustCreate(admin, Office("Hours"));
  f.CreateUser(admin, "anna", {"agent"});
  f.CreateUser(admin, "henrik", {"head"});

  for (const char* login : {"anna", "henrik"}) {
    INFO(login);
    const std::string token = f.Token("acme", login);
    v1::Schedule s;
    CHECK(api.Get(token, id, &s).code == grpc::OK);
    CHECK(s.name() == "Hours");
    v1::ListSchedulesResponse list;
    REQUIRE(api.List(token, &list).code == grpc::OK);
    CHECK(list.total_size() == 1);
    v1::EvaluateScheduleResponse r;
    CHECK(api.Evaluate(token, id, "2024-12-25T10:00:00Z", &r).code == grpc::OK);
    CHECK(r.status() == v1::SCHEDULE_STATUS_HOLIDAY);

    const Outcome create = api.Create(token, Office(std::string("Mine ") + login));
    CHECK(create.code == grpc::PERMISSION_DENIED);
    CHECK_THAT(create.message, Catch::Contains("routing.manage"));
    s.set_name("Renamed");
    CHECK(api.Update(token, s, {"name"}).code == grpc::PERMISSION_DENIED);
    CHECK(api.Delete(token, id).code == grpc::PERMISSION_DENIED);
  }
  v1::Schedule unchanged;
  REQUIRE(api.Get(admin, id, &unchanged).code == grpc::OK);
  CHECK(unchanged.name() == "Hours");
  // Without a token nothing is readable.
  CHECK(api.Get("", id).code == grpc::UNAUTHENTICATED);
}

TEST_CASE("another tenant's schedules are not found", "[schedules]") {
  OrgFixture f;
  Schedules api(f);
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo globex = f.CreateTenant("globex");
  const std::string id = api.MustCreate(acme.admin_token, Office("Hours"));
  const std::string& intruder = globex.admin_token;

  CHECK(api.Get(intruder, id).code == grpc::NOT_FOUND);
  v1::Schedule change = Office("Taken over");
  change.set_id(id);
  CHECK(api.Update(intruder, change, {"name"}).code == grpc::NOT_FOUND);
  CHECK(api.Delete(intruder, id).code == grpc::NOT_FOUND);
  v1::EvaluateScheduleResponse r;
  CHECK(api.Evaluate(intruder, id, "2024-12-25T10:00:00Z", &r).code == grpc::NOT_FOUND);
  v1::ListSchedulesResponse list;
  REQUIRE(api.List(intruder, &list).code == grpc::OK);
  CHECK(list.total_size() == 0);
  // Naming the other tenant does not help a tenant admin.
  v1::GetScheduleRequest get;
  get.set_tenant_id(acme.id);
  get.set_schedule_id(id);
  v1::Schedule s;
  CHECK(Code(f.stub().GetSchedule(f.Ctx(intruder).get(), get, &s)) == grpc::NOT_FOUND);
  // Nor the service credential with the wrong tenant.
  get.set_tenant_id(globex.id);
  CHECK(Code(f.stub().GetSchedule(f.InternalCtx().get(), get, &s)) == grpc::NOT_FOUND);
  // A team of one tenant cannot take another tenant's schedule.
  v1::CreateTeamRequest team;
  team.mutable_team()->set_name("Support");
  team.mutable_team()->set_schedule_id(id);
  v1::Team out;
  CHECK(Code(f.stub().CreateTeam(f.Ctx(intruder).get(), team, &out)) == grpc::INVALID_ARGUMENT);
  REQUIRE(api.Get(acme.admin_token, id, &s).code == grpc::OK);
  CHECK(s.name() == "Hours");
}

}  // namespace
}  // namespace sb::org::test
