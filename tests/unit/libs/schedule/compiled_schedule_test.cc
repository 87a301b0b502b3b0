// CompiledSchedule: IsOpen and NextChange over ranges, midnight, DST days in Europe/Budapest and
// America/New_York, and exceptions. Expected instants are worked out by hand in UTC:
//   Europe/Budapest   CET +01:00, CEST +02:00; 2024-03-31 01:00Z (02:00 -> 03:00 local),
//                     2024-10-27 01:00Z (03:00 -> 02:00 local).
//   America/New_York  EST -05:00, EDT -04:00; 2024-03-10 07:00Z (02:00 -> 03:00 local),
//                     2024-11-03 06:00Z (02:00 -> 01:00 local).

#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "absl/time/civil_time.h"
#include "libs/schedule/compiled_schedule.h"
#include "tests/support/schedule_builders.h"

namespace sb::schedule {
namespace {

using namespace sb::schedule::testing;  // NOLINT: builders

constexpr auto kOpen = v1::SCHEDULE_STATUS_OPEN;
constexpr auto kClosed = v1::SCHEDULE_STATUS_CLOSED;
constexpr auto kHoliday = v1::SCHEDULE_STATUS_HOLIDAY;

std::string Show(const CompiledSchedule::State& s) {
  std::string out = v1::ScheduleStatus_Name(s.status).substr(16);  // after SCHEDULE_STATUS_
  if (!s.exception_name.empty()) out += " " + std::string(s.exception_name);
  return out;
}

// "OPEN", "HOLIDAY Christmas Day", ...
std::string StateAt(const CompiledSchedule& c, const std::string& t) {
  return Show(c.IsOpen(At(t)));
}

// "2024-03-31T01:00:00Z OPEN", or "never".
std::string NextAfter(const CompiledSchedule& c, absl::Time t) {
  const std::optional<CompiledSchedule::Change> next = c.NextChange(t);
  if (!next) return "never";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ ", next->at, absl::UTCTimeZone()) + Show(next->state);
}
std::string NextAfter(const CompiledSchedule& c, const std::string& t) {
  return NextAfter(c, At(t));
}

TEST_CASE("CompiledSchedule is open in each range of a day", "[schedule]") {
  // January: Budapest is at +01:00.
  const CompiledSchedule c =
      MustCompile(Weekdays("Europe/Budapest", {{{9, 0}, {12, 0}}, {{13, 0}, {17, 0}}}));
  // 2024-01-08 is a Monday.
  CHECK(StateAt(c, "2024-01-08T07:59:59Z") == "CLOSED");
  CHECK(StateAt(c, "2024-01-08T08:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-08T10:59:59Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-08T11:00:00Z") == "CLOSED");
  CHECK(StateAt(c, "2024-01-08T11:30:00Z") == "CLOSED");
  CHECK(StateAt(c, "2024-01-08T12:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-08T15:59:59Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-08T16:00:00Z") == "CLOSED");
  CHECK(StateAt(c, "2024-01-13T10:00:00Z") == "CLOSED");  // Saturday
  // Judged by the second an instant falls in.
  CHECK(c.IsOpen(At("2024-01-08T08:00:00Z") - absl::Nanoseconds(1)).status == kClosed);
  CHECK(c.IsOpen(At("2024-01-08T08:00:00Z") + absl::Milliseconds(999)).status == kOpen);

  CHECK(NextAfter(c, "2024-01-08T06:00:00Z") == "2024-01-08T08:00:00Z OPEN");
  CHECK(NextAfter(c, "2024-01-08T08:00:00Z") == "2024-01-08T11:00:00Z CLOSED");
  CHECK(NextAfter(c, "2024-01-08T11:00:00Z") == "2024-01-08T12:00:00Z OPEN");
  CHECK(NextAfter(c, "2024-01-08T12:00:00Z") == "2024-01-08T16:00:00Z CLOSED");
  CHECK(NextAfter(c, "2024-01-08T16:00:00Z") == "2024-01-09T08:00:00Z OPEN");
  // Friday evening to Monday morning.
  CHECK(NextAfter(c, "2024-01-12T16:00:00Z") == "2024-01-15T08:00:00Z OPEN");
  CHECK(NextAfter(c, At("2024-01-08T08:00:00Z") - absl::Milliseconds(1)) ==
        "2024-01-08T08:00:00Z OPEN");
}

TEST_CASE("CompiledSchedule runs a range past midnight into the next day", "[schedule]") {
  const CompiledSchedule c = MustCompile(
      Weekly("Europe/Budapest", {Range(kFri, {22, 0}, {6, 0}), Range(kSun, {22, 0}, {6, 0})}));
  // Friday 2024-01-05 22:00 local is 21:00Z; Saturday 06:00 local is 05:00Z.
  CHECK(StateAt(c, "2024-01-05T20:59:59Z") == "CLOSED");
  CHECK(StateAt(c, "2024-01-05T21:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-05T23:00:00Z") == "OPEN");  // Saturday 00:00 local
  CHECK(StateAt(c, "2024-01-06T04:59:59Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-06T05:00:00Z") == "CLOSED");
  CHECK(NextAfter(c, "2024-01-05T12:00:00Z") == "2024-01-05T21:00:00Z OPEN");
  // Midnight inside the range is no change.
  CHECK(NextAfter(c, "2024-01-05T21:30:00Z") == "2024-01-06T05:00:00Z CLOSED");
  // Sunday night runs into Monday.
  CHECK(NextAfter(c, "2024-01-06T05:00:00Z") == "2024-01-07T21:00:00Z OPEN");
  CHECK(StateAt(c, "2024-01-08T02:00:00Z") == "OPEN");  // Monday 03:00 local
  CHECK(StateAt(c, "2024-01-08T05:00:00Z") == "CLOSED");
  CHECK(NextAfter(c, "2024-01-07T21:00:00Z") == "2024-01-08T05:00:00Z CLOSED");
  CHECK(NextAfter(c, "2024-01-08T05:00:00Z") == "2024-01-12T21:00:00Z OPEN");
}

TEST_CASE("CompiledSchedule treats 24:00 and 00:00 ends as midnight", "[schedule]") {
  const CompiledSchedule c =
      MustCompile(Weekly("UTC", {Range(kMon, {18, 0}, {24, 0}), Range(kTue, {0, 0}, {2, 0}),
                                 Range(kWed, {0, 0}, {24, 0}), Range(kFri, {22, 0}, {0, 0})}));
  // 2024-01-01 is a Monday.
  CHECK(StateAt(c, "2024-01-01T23:59:59Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-02T00:00:00Z") == "OPEN");
  CHECK(NextAfter(c, "2024-01-01T19:00:00Z") == "2024-01-02T02:00:00Z CLOSED");
  CHECK(StateAt(c, "2024-01-03T00:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-03T23:59:59Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-04T00:00:00Z") == "CLOSED");
  CHECK(NextAfter(c, "2024-01-02T02:00:00Z") == "2024-01-03T00:00:00Z OPEN");
  CHECK(NextAfter(c, "2024-01-03T00:00:00Z") == "2024-01-04T00:00:00Z CLOSED");
  // 22:00-00:00 ends at midnight and gives Saturday nothing.
  CHECK(StateAt(c, "2024-01-05T23:59:59Z") == "OPEN");
  CHECK(StateAt(c, "2024-01-06T00:00:00Z") == "CLOSED");
}

TEST_CASE("CompiledSchedule on the spring-forward day in Europe/Budapest", "[schedule][dst]") {
  SECTION("a range that starts in the skipped hour opens at the transition") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSun, {2, 30}, {4, 0})}));
    CHECK(StateAt(c, "2024-03-31T00:59:59Z") == "CLOSED");  // 01:59:59 CET
    CHECK(StateAt(c, "2024-03-31T01:00:00Z") == "OPEN");    // 03:00:00 CEST
    CHECK(StateAt(c, "2024-03-31T01:59:59Z") == "OPEN");
    CHECK(StateAt(c, "2024-03-31T02:00:00Z") == "CLOSED");  // 04:00 CEST
    CHECK(NextAfter(c, "2024-03-30T23:00:00Z") == "2024-03-31T01:00:00Z OPEN");
    CHECK(NextAfter(c, "2024-03-31T00:59:59Z") == "2024-03-31T01:00:00Z OPEN");
    CHECK(NextAfter(c, "2024-03-31T01:00:00Z") == "2024-03-31T02:00:00Z CLOSED");
    // The Sunday before, in winter time: 02:30 CET is 01:30Z.
    CHECK(NextAfter(c, "2024-03-24T00:00:00Z") == "2024-03-24T01:30:00Z OPEN");
  }
  SECTION("a range inside the skipped hour never opens that day") {
    const CompiledSchedule c = MustCompile(
        Weekly("Europe/Budapest", {Range(kSun, {2, 15}, {2, 45}), Range(kSun, {10, 0}, {11, 0})}));
    for (absl::Time t = At("2024-03-31T00:00:00Z"); t < At("2024-03-31T02:00:00Z");
         t += absl::Seconds(15)) {
      REQUIRE(c.IsOpen(t).status == kClosed);
    }
    CHECK(NextAfter(c, "2024-03-30T22:00:00Z") == "2024-03-31T08:00:00Z OPEN");  // 10:00 CEST
  }
  SECTION("a range that ends where the skipped hour begins") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSun, {1, 0}, {2, 0})}));
    CHECK(NextAfter(c, "2024-03-30T23:30:00Z") == "2024-03-31T00:00:00Z OPEN");  // 01:00 CET
    CHECK(NextAfter(c, "2024-03-31T00:00:00Z") == "2024-03-31T01:00:00Z CLOSED");
    CHECK(StateAt(c, "2024-03-31T00:59:59Z") == "OPEN");
    CHECK(StateAt(c, "2024-03-31T01:00:00Z") == "CLOSED");
  }
  SECTION("a night range across the transition is an hour shorter") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSat, {22, 0}, {6, 0})}));
    CHECK(NextAfter(c, "2024-03-30T12:00:00Z") == "2024-03-30T21:00:00Z OPEN");  // 22:00 CET
    CHECK(StateAt(c, "2024-03-31T00:59:59Z") == "OPEN");
    CHECK(StateAt(c, "2024-03-31T01:00:00Z") == "OPEN");
    CHECK(NextAfter(c, "2024-03-30T21:00:00Z") == "2024-03-31T04:00:00Z CLOSED");  // 06:00 CEST
  }
  SECTION("office hours around the change") {
    const CompiledSchedule c = MustCompile(Weekdays("Europe/Budapest", {{{9, 0}, {17, 0}}}));
    CHECK(NextAfter(c, "2024-03-29T16:00:00Z") == "2024-04-01T07:00:00Z OPEN");  // Mon 09:00 CEST
    CHECK(StateAt(c, "2024-04-01T06:59:59Z") == "CLOSED");
    CHECK(StateAt(c, "2024-04-01T07:00:00Z") == "OPEN");
    CHECK(NextAfter(c, "2024-04-01T07:00:00Z") == "2024-04-01T15:00:00Z CLOSED");
  }
}

TEST_CASE("CompiledSchedule on the fall-back day in Europe/Budapest", "[schedule][dst]") {
  SECTION("a range in the repeated hour is open twice") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSun, {2, 15}, {2, 45})}));
    CHECK(StateAt(c, "2024-10-27T00:14:59Z") == "CLOSED");
    CHECK(StateAt(c, "2024-10-27T00:15:00Z") == "OPEN");  // 02:15 CEST
    CHECK(StateAt(c, "2024-10-27T00:45:00Z") == "CLOSED");
    CHECK(StateAt(c, "2024-10-27T01:15:00Z") == "OPEN");  // 02:15 CET
    CHECK(StateAt(c, "2024-10-27T01:44:59Z") == "OPEN");
    CHECK(StateAt(c, "2024-10-27T01:45:00Z") == "CLOSED");
    CHECK(NextAfter(c, "2024-10-27T00:00:00Z") == "2024-10-27T00:15:00Z OPEN");
    CHECK(NextAfter(c, "2024-10-27T00:15:00Z") == "2024-10-27T00:45:00Z CLOSED");
    CHECK(NextAfter(c, "2024-10-27T00:45:00Z") == "2024-10-27T01:15:00Z OPEN");
    CHECK(NextAfter(c, "2024-10-27T01:15:00Z") == "2024-10-27T01:45:00Z CLOSED");
    CHECK(NextAfter(c, "2024-10-27T01:45:00Z") == "2024-11-03T01:15:00Z OPEN");
  }
  SECTION("a range that ends where the hour repeats closes at the transition") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSun, {2, 30}, {3, 0})}));
    CHECK(NextAfter(c, "2024-10-27T00:00:00Z") == "2024-10-27T00:30:00Z OPEN");  // 02:30 CEST
    CHECK(NextAfter(c, "2024-10-27T00:30:00Z") == "2024-10-27T01:00:00Z CLOSED");
    CHECK(NextAfter(c, "2024-10-27T01:00:00Z") == "2024-10-27T01:30:00Z OPEN");  // 02:30 CET
    CHECK(NextAfter(c, "2024-10-27T01:30:00Z") == "2024-10-27T02:00:00Z CLOSED");
  }
  SECTION("a gap before the repeated hour reopens at the transition") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSun, {1, 0}, {2, 30})}));
    CHECK(StateAt(c, "2024-10-26T23:00:00Z") == "OPEN");  // 01:00 CEST
    CHECK(NextAfter(c, "2024-10-26T23:00:00Z") == "2024-10-27T00:30:00Z CLOSED");
    CHECK(NextAfter(c, "2024-10-27T00:30:00Z") == "2024-10-27T01:00:00Z OPEN");  // 02:00 CET
    CHECK(NextAfter(c, "2024-10-27T01:00:00Z") == "2024-10-27T01:30:00Z CLOSED");
  }
  SECTION("a night range across the transition is an hour longer") {
    const CompiledSchedule c =
        MustCompile(Weekly("Europe/Budapest", {Range(kSat, {22, 0}, {6, 0})}));
    CHECK(NextAfter(c, "2024-10-26T12:00:00Z") == "2024-10-26T20:00:00Z OPEN");    // 22:00 CEST
    CHECK(NextAfter(c, "2024-10-26T20:00:00Z") == "2024-10-27T05:00:00Z CLOSED");  // 06:00 CET
  }
}

TEST_CASE("CompiledSchedule on DST days in America/New_York", "[schedule][dst]") {
  SECTION("spring forward on 2024-03-10") {
    const CompiledSchedule c = MustCompile(
        Weekly("America/New_York", {Range(kSun, {2, 30}, {4, 0}), Range(kSat, {22, 0}, {2, 15})}));
    // Saturday 22:00 EST is 03:00Z; the range would end at 02:15 local, which does not exist:
    // it ends at the transition (02:00 EST = 07:00Z), and the next opens at once (03:00 EDT).
    CHECK(NextAfter(c, "2024-03-09T12:00:00Z") == "2024-03-10T03:00:00Z OPEN");
    CHECK(StateAt(c, "2024-03-10T06:59:59Z") == "OPEN");
    CHECK(StateAt(c, "2024-03-10T07:00:00Z") == "OPEN");  // 03:00 EDT, in 02:30-04:00
    CHECK(NextAfter(c, "2024-03-10T03:00:00Z") == "2024-03-10T08:00:00Z CLOSED");  // 04:00 EDT
  }
  SECTION("a range in the skipped hour opens at the transition") {
    const CompiledSchedule c =
        MustCompile(Weekly("America/New_York", {Range(kSun, {2, 30}, {4, 0})}));
    CHECK(StateAt(c, "2024-03-10T06:59:59Z") == "CLOSED");  // 01:59:59 EST
    CHECK(NextAfter(c, "2024-03-10T05:00:00Z") == "2024-03-10T07:00:00Z OPEN");
    CHECK(NextAfter(c, "2024-03-10T07:00:00Z") == "2024-03-10T08:00:00Z CLOSED");
  }
  SECTION("fall back on 2024-11-03") {
    const CompiledSchedule c =
        MustCompile(Weekly("America/New_York", {Range(kSun, {1, 15}, {1, 45})}));
    CHECK(NextAfter(c, "2024-11-03T04:00:00Z") == "2024-11-03T05:15:00Z OPEN");  // 01:15 EDT
    CHECK(NextAfter(c, "2024-11-03T05:15:00Z") == "2024-11-03T05:45:00Z CLOSED");
    CHECK(NextAfter(c, "2024-11-03T05:45:00Z") == "2024-11-03T06:15:00Z OPEN");  // 01:15 EST
    CHECK(NextAfter(c, "2024-11-03T06:15:00Z") == "2024-11-03T06:45:00Z CLOSED");
    CHECK(StateAt(c, "2024-11-03T06:00:00Z") == "CLOSED");  // 01:00 EST
  }
  SECTION("office hours around the change") {
    const CompiledSchedule c = MustCompile(Weekdays("America/New_York", {{{9, 0}, {17, 0}}}));
    CHECK(NextAfter(c, "2024-11-01T21:00:00Z") == "2024-11-04T14:00:00Z OPEN");  // Mon 09:00 EST
    CHECK(NextAfter(c, "2024-03-08T22:00:00Z") == "2024-03-11T13:00:00Z OPEN");  // Mon 09:00 EDT
    CHECK(StateAt(c, "2024-03-11T12:59:59Z") == "CLOSED");
    CHECK(StateAt(c, "2024-03-11T13:00:00Z") == "OPEN");
  }
}

v1::Schedule ChristmasSchedule() {
  v1::Schedule s = Weekdays("Europe/Budapest", {{{9, 0}, {17, 0}}});
  AddException(s, 2020, 12, 25, v1::ScheduleException::TYPE_HOLIDAY, "Christmas Day", true);
  AddSlot(AddException(s, 2024, 12, 24, v1::ScheduleException::TYPE_SPECIAL_HOURS, "Christmas Eve"),
          {9, 0}, {12, 0});
  AddException(s, 2024, 12, 27, v1::ScheduleException::TYPE_CLOSED, "Inventory");
  AddSlot(
      AddException(s, 2026, 12, 25, v1::ScheduleException::TYPE_SPECIAL_HOURS, "Christmas 2026"),
      {10, 0}, {12, 0});
  AddException(s, 2024, 2, 29, v1::ScheduleException::TYPE_HOLIDAY, "Leap day", true);
  return s;
}

TEST_CASE("CompiledSchedule applies holidays closures and special hours", "[schedule]") {
  const CompiledSchedule c = MustCompile(ChristmasSchedule());
  // 2024-12-25 is a Wednesday; every_year from 2020 on, not before.
  CHECK(StateAt(c, "2024-12-25T09:00:00Z") == "HOLIDAY Christmas Day");
  CHECK(StateAt(c, "2024-12-24T23:00:00Z") == "HOLIDAY Christmas Day");  // 00:00 local
  CHECK(StateAt(c, "2025-12-25T09:00:00Z") == "HOLIDAY Christmas Day");
  CHECK(StateAt(c, "2019-12-25T09:00:00Z") == "OPEN");
  // A one-off on the same date wins over the yearly one.
  CHECK(StateAt(c, "2026-12-25T09:30:00Z") == "OPEN Christmas 2026");  // 10:30 local
  CHECK(StateAt(c, "2026-12-25T08:30:00Z") == "CLOSED Christmas 2026");
  // Special hours: open only in their slots; the name holds all day.
  CHECK(StateAt(c, "2024-12-24T10:00:00Z") == "OPEN Christmas Eve");
  CHECK(StateAt(c, "2024-12-24T12:00:00Z") == "CLOSED Christmas Eve");
  CHECK(StateAt(c, "2024-12-27T09:00:00Z") == "CLOSED Inventory");
  // Leap-day holiday: only in leap years.
  CHECK(StateAt(c, "2028-02-29T09:00:00Z") == "HOLIDAY Leap day");
  CHECK(StateAt(c, "2027-02-26T09:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2027-03-01T09:00:00Z") == "OPEN");

  CHECK(NextAfter(c, "2024-12-24T10:00:00Z") == "2024-12-24T11:00:00Z CLOSED Christmas Eve");
  CHECK(NextAfter(c, "2024-12-24T11:00:00Z") == "2024-12-24T23:00:00Z HOLIDAY Christmas Day");
  CHECK(NextAfter(c, "2024-12-25T09:00:00Z") == "2024-12-25T23:00:00Z CLOSED");
  CHECK(NextAfter(c, "2024-12-25T23:00:00Z") == "2024-12-26T08:00:00Z OPEN");
  // Thursday evening, the CLOSED Friday (same status, no change), the weekend, Monday.
  CHECK(NextAfter(c, "2024-12-26T16:00:00Z") == "2024-12-30T08:00:00Z OPEN");
}

TEST_CASE("CompiledSchedule lets an exception govern the morning of a night range", "[schedule]") {
  v1::Schedule s = Weekly("Europe/Budapest", {Range(kTue, {22, 0}, {6, 0})});
  AddException(s, 2024, 12, 25, v1::ScheduleException::TYPE_HOLIDAY, "Christmas Day");
  const CompiledSchedule c = MustCompile(s);
  CHECK(StateAt(c, "2024-12-24T22:59:59Z") == "OPEN");  // Tuesday 23:59:59 local
  CHECK(StateAt(c, "2024-12-24T23:00:00Z") == "HOLIDAY Christmas Day");
  CHECK(NextAfter(c, "2024-12-24T21:00:00Z") == "2024-12-24T23:00:00Z HOLIDAY Christmas Day");
  CHECK(NextAfter(c, "2024-12-24T23:00:00Z") == "2024-12-25T23:00:00Z CLOSED");
  // The week after, the range runs to Wednesday 06:00 as usual.
  CHECK(NextAfter(c, "2024-12-31T21:00:00Z") == "2025-01-01T05:00:00Z CLOSED");
}

TEST_CASE("CompiledSchedule never changes when always open or never open", "[schedule]") {
  std::vector<v1::WeeklyRange> all_week;
  for (v1::DayOfWeek d : {kMon, kTue, kWed, kThu, kFri, kSat, kSun}) {
    all_week.push_back(Range(d, {0, 0}, {24, 0}));
  }
  const CompiledSchedule open = MustCompile(Weekly("Europe/Budapest", all_week));
  CHECK(StateAt(open, "2024-03-31T01:00:00Z") == "OPEN");
  CHECK(NextAfter(open, "2024-03-30T12:00:00Z") == "never");
  CHECK(NextAfter(open, "2024-10-27T00:30:00Z") == "never");

  const CompiledSchedule closed = MustCompile(Weekly("Europe/Budapest", {}));
  CHECK(StateAt(closed, "2024-06-01T12:00:00Z") == "CLOSED");
  CHECK(NextAfter(closed, "2024-06-01T12:00:00Z") == "never");

  // A holiday within the horizon is a change; one beyond it is not seen.
  v1::Schedule s = Weekly("Europe/Budapest", all_week);
  AddException(s, 2024, 12, 25, v1::ScheduleException::TYPE_HOLIDAY, "Christmas Day");
  const CompiledSchedule holiday = MustCompile(s);
  CHECK(NextAfter(holiday, "2024-06-01T12:00:00Z") == "2024-12-24T23:00:00Z HOLIDAY Christmas Day");
  CHECK(NextAfter(holiday, "2024-12-24T23:00:00Z") == "2024-12-25T23:00:00Z OPEN");
  CHECK(NextAfter(holiday, "2023-06-01T12:00:00Z") == "never");  // 573 days ahead

  CHECK(!open.NextChange(absl::InfiniteFuture()).has_value());
  CHECK(open.IsOpen(absl::InfiniteFuture()).status == kOpen);
  CHECK(open.IsOpen(absl::InfinitePast()).status == kOpen);
}

TEST_CASE("CompiledSchedule is exact outside the cached window of offsets", "[schedule]") {
  // The window is 1970-2100 UTC; before and after it the time-zone library answers.
  v1::Schedule s = Weekdays("America/New_York", {{{9, 0}, {17, 0}}});
  AddException(s, 1900, 1, 1, v1::ScheduleException::TYPE_HOLIDAY, "New Year", true);
  AddException(s, 2150, 7, 2, v1::ScheduleException::TYPE_CLOSED, "Far closure");
  const CompiledSchedule c = MustCompile(s);
  CHECK(StateAt(c, "1965-07-01T12:59:59Z") == "CLOSED");  // Thursday, EDT
  CHECK(StateAt(c, "1965-07-01T13:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2150-07-01T12:59:59Z") == "CLOSED");  // Wednesday, EDT
  CHECK(StateAt(c, "2150-07-01T13:00:00Z") == "OPEN");
  CHECK(StateAt(c, "2150-07-02T14:00:00Z") == "CLOSED Far closure");
  CHECK(StateAt(c, "1950-01-01T15:00:00Z") == "HOLIDAY New Year");  // a Sunday
  CHECK(StateAt(c, "2150-01-01T15:00:00Z") == "HOLIDAY New Year");
  CHECK(StateAt(c, "2099-12-31T15:00:00Z") == "OPEN");
  // Across the window's edges: 1970-01-01 00:00Z is 1969-12-31 19:00 EST.
  CHECK(StateAt(c, "1970-01-01T04:59:59Z") == "CLOSED");
  CHECK(StateAt(c, "1970-01-01T05:00:00Z") == "HOLIDAY New Year");
  CHECK(NextAfter(c, "1969-12-31T22:00:00Z") == "1970-01-01T05:00:00Z HOLIDAY New Year");
  CHECK(NextAfter(c, "2099-12-31T22:00:00Z") == "2100-01-01T05:00:00Z HOLIDAY New Year");
  CHECK(NextAfter(c, "2100-01-01T05:00:00Z") == "2100-01-02T05:00:00Z CLOSED");  // Saturday
}

TEST_CASE("FormatLocalTime writes ISO 8601 with the offset", "[schedule]") {
  absl::TimeZone budapest;
  absl::TimeZone new_york;
  REQUIRE(absl::LoadTimeZone("Europe/Budapest", &budapest));
  REQUIRE(absl::LoadTimeZone("America/New_York", &new_york));
  CHECK(FormatLocalTime(At("2024-03-31T00:30:00Z"), budapest) == "2024-03-31T01:30:00+01:00");
  CHECK(FormatLocalTime(At("2024-03-31T01:30:00Z"), budapest) == "2024-03-31T03:30:00+02:00");
  CHECK(FormatLocalTime(At("2024-11-03T05:30:00Z"), new_york) == "2024-11-03T01:30:00-04:00");
  CHECK(FormatLocalTime(At("2024-11-03T06:30:00.750Z"), new_york) == "2024-11-03T01:30:00-05:00");
  CHECK(FormatLocalTime(At("2024-01-01T00:00:00Z"), absl::UTCTimeZone()) ==
        "2024-01-01T00:00:00+00:00");
}

// --- Property checks against a plain reference evaluation ---

// The status at `t` computed the slow, obvious way: the time-zone library's civil time, then the
// exception of that date or the weekly ranges (the day's own and the previous day's overnight).
v1::ScheduleStatus Reference(const v1::Schedule& s, const absl::TimeZone& tz, absl::Time t) {
  const absl::CivilSecond cs = tz.At(t).cs;
  const absl::CivilDay day(cs);
  const int second = static_cast<int>(cs - absl::CivilSecond(day));
  auto in = [&](const cv1::TimeOfDay& a, const cv1::TimeOfDay& b) {
    return second >= internal::SecondsOfDay(a) && second < internal::SecondsOfDay(b);
  };
  auto apply = [&](const v1::ScheduleException& e) {
    for (const v1::TimeSlot& slot : e.hours()) {
      if (in(slot.start(), slot.end())) return kOpen;
    }
    return e.type() == v1::ScheduleException::TYPE_HOLIDAY ? kHoliday : kClosed;
  };
  for (const auto& e : s.exceptions()) {
    if (!e.every_year() && e.date().year() == day.year() && e.date().month() == day.month() &&
        e.date().day() == day.day()) {
      return apply(e);
    }
  }
  for (const auto& e : s.exceptions()) {
    if (e.every_year() && e.date().month() == day.month() && e.date().day() == day.day() &&
        day.year() >= e.date().year()) {
      return apply(e);
    }
  }
  const int weekday = static_cast<int>(absl::GetWeekday(day)) + 1;  // absl: Monday = 0
  const int yesterday = weekday == 1 ? 7 : weekday - 1;
  for (const auto& r : s.weekly_ranges()) {
    const int start = internal::SecondsOfDay(r.start());
    const int end = internal::SecondsOfDay(r.end());
    if (r.day() == weekday && second >= start && (end <= start || second < end)) return kOpen;
    if (r.day() == yesterday && end <= start && second < end) return kOpen;
  }
  return kClosed;
}

// A random valid schedule: per day up to 3 ranges on a 15-minute grid, sometimes one overnight
// range, and a few exceptions in 2023-2026.
v1::Schedule RandomSchedule(std::mt19937& rng, const std::string& zone) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  v1::Schedule s = Weekly(zone, {});
  for (int d = 1; d <= 7; ++d) {
    int at = 120 + pick(0, 8) * 15;  // minutes; 00:00-02:00 is left for overnight ranges
    const int ranges = pick(0, 3);
    for (int i = 0; i < ranges && at < 20 * 60; ++i) {
      const int start = at + pick(0, 16) * 15;
      const int end = std::min(start + pick(1, 24) * 15, 22 * 60);
      if (end <= start) break;
      *s.add_weekly_ranges() =
          Range(static_cast<v1::DayOfWeek>(d), {start / 60, start % 60}, {end / 60, end % 60});
      at = end + pick(0, 4) * 15;
    }
    // Overnight from 22:00 or later to midnight or into the next day's first two hours.
    if (pick(0, 3) == 0) {
      *s.add_weekly_ranges() = Range(static_cast<v1::DayOfWeek>(d), {22, 15 * pick(0, 3)},
                                     {pick(0, 1), 15 * pick(0, 3)});
    }
  }
  for (int i = 0; i < 6; ++i) {
    const int type = pick(1, 3);
    v1::ScheduleException* e =
        AddException(s, pick(2023, 2026), pick(1, 12), pick(1, 28),
                     static_cast<v1::ScheduleException::Type>(type), "x", pick(0, 1) == 1);
    if (type == v1::ScheduleException::TYPE_SPECIAL_HOURS) {
      const int start = pick(0, 80) * 15;
      AddSlot(e, {start / 60, start % 60}, {start / 60 + 1, start % 60});
    }
  }
  return s;
}

TEST_CASE("CompiledSchedule agrees with a plain evaluation at random instants", "[schedule]") {
  std::mt19937 rng(20240331);
  for (const char* zone :
       {"Europe/Budapest", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"}) {
    absl::TimeZone tz;
    REQUIRE(absl::LoadTimeZone(zone, &tz));
    int compiled = 0;
    for (int n = 0; n < 20; ++n) {
      const v1::Schedule s = RandomSchedule(rng, zone);
      absl::StatusOr<CompiledSchedule> c = CompiledSchedule::Compile(s);
      if (!c.ok()) continue;  // random exceptions may collide on a date
      ++compiled;
      // Mostly 2023-2027; some before and after the cached window of offsets.
      std::uniform_int_distribution<int64_t> near(1672531200, 1830297600);
      std::uniform_int_distribution<int64_t> far(-2208988800, 7258118400);  // 1900..2200
      for (int i = 0; i < 2000; ++i) {
        const absl::Time t = absl::FromUnixSeconds(i % 10 == 0 ? far(rng) : near(rng));
        const v1::ScheduleStatus want = Reference(s, tz, t);
        if (c->IsOpen(t).status != want) {
          FAIL(zone << " at " << absl::FormatTime(t) << ": " << s.DebugString());
        }
      }
    }
    CHECK(compiled >= 15);
  }
}

TEST_CASE("CompiledSchedule NextChange finds the first change", "[schedule]") {
  // The change is a real one, and the minute grid before it (plus the DST transitions, where
  // changes off the grid happen) shows no earlier one.
  std::mt19937 rng(20241027);
  for (const char* zone : {"Europe/Budapest", "America/New_York", "Australia/Lord_Howe"}) {
    absl::TimeZone tz;
    REQUIRE(absl::LoadTimeZone(zone, &tz));
    int changes = 0;
    for (int n = 0; n < 10; ++n) {
      const v1::Schedule s = RandomSchedule(rng, zone);
      absl::StatusOr<CompiledSchedule> c = CompiledSchedule::Compile(s);
      if (!c.ok()) continue;
      std::uniform_int_distribution<int64_t> near(1672531200, 1830297600);
      for (int i = 0; i < 40; ++i) {
        const absl::Time t = absl::FromUnixSeconds(near(rng));
        const v1::ScheduleStatus now = c->IsOpen(t).status;
        const std::optional<CompiledSchedule::Change> next = c->NextChange(t);
        if (!next) continue;  // e.g. a schedule without ranges
        ++changes;
        INFO(zone << " from " << absl::FormatTime(t) << " to " << absl::FormatTime(next->at));
        REQUIRE(next->at > t);
        REQUIRE(next->state.status != now);
        REQUIRE(c->IsOpen(next->at).status == next->state.status);
        REQUIRE(c->IsOpen(next->at - absl::Seconds(1)).status == now);
        absl::Time probe = absl::FromUnixSeconds((absl::ToUnixSeconds(t) / 60 + 1) * 60);
        for (; probe < next->at; probe += absl::Minutes(1)) {
          if (c->IsOpen(probe).status != now)
            FAIL("changed earlier, at " << absl::FormatTime(probe));
        }
        absl::TimeZone::CivilTransition tr;
        for (absl::Time u = t; tz.NextTransition(u, &tr);) {
          u = tz.At(tr.to).trans;
          if (u >= next->at) break;
          REQUIRE(c->IsOpen(u).status == now);
        }
      }
    }
    CHECK(changes >= 300);
  }
}

}  // namespace
}  // namespace sb::schedule
