// ValidateSchedule: every rejection is InvalidArgument naming its field and reason.

#include <catch2/catch.hpp>

#include <string>

#include "libs/app/rpc_errors.h"
#include "libs/schedule/schedule_validation.h"
#include "switchboard/common/v1/errors.pb.h"
#include "tests/support/schedule_builders.h"

namespace sb::schedule {
namespace {

using namespace sb::schedule::testing;  // NOLINT: builders
using Type = v1::ScheduleException;

// "field REASON" of an InvalidArgument, "OK", or the status text for anything else.
std::string Violation(const v1::Schedule& s) {
  const absl::Status status = ValidateSchedule(s, "schedule");
  if (status.ok()) return "OK";
  if (status.code() != absl::StatusCode::kInvalidArgument) return status.ToString();
  ::switchboard::common::v1::ErrorDetails details;
  const auto payload = status.GetPayload(app::kErrorDetailsPayloadUrl);
  if (!payload || !details.ParseFromString(std::string(*payload)) || details.details_size() != 1 ||
      !details.details(0).has_field_violation()) {
    return "no field violation: " + status.ToString();
  }
  const auto& v = details.details(0).field_violation();
  // The message starts with the field too.
  if (status.message().substr(0, v.field().size()) != v.field()) return status.ToString();
  return v.field() + " " + v.reason();
}

v1::Schedule Office() {
  return Weekdays("Europe/Budapest", {{{9, 0}, {12, 0}}, {{13, 0}, {17, 0}}});
}

TEST_CASE("ValidateSchedule accepts realistic schedules", "[schedule]") {
  CHECK(Violation(Office()) == "OK");
  CHECK(Violation(Weekly("UTC", {})) == "OK");
  // Touching ranges, 24:00, overnight ranges that touch the next day's first one.
  CHECK(Violation(
            Weekly("America/New_York", {Range(kMon, {9, 0}, {12, 0}), Range(kMon, {12, 0}, {24, 0}),
                                        Range(kSun, {22, 0}, {6, 0}), Range(kMon, {6, 0}, {9, 0}),
                                        Range(kSat, {0, 0}, {24, 0})})) == "OK");
  v1::Schedule s = Office();
  AddException(s, 2024, 12, 25, Type::TYPE_HOLIDAY, "Christmas Day", true);
  AddException(s, 2024, 12, 25, Type::TYPE_CLOSED, "One-off on the same date");
  AddSlot(AddException(s, 2024, 12, 24, Type::TYPE_SPECIAL_HOURS, "Christmas Eve"), {9, 0},
          {12, 0});
  AddException(s, 2024, 2, 29, Type::TYPE_HOLIDAY, "Leap day", true);
  CHECK(Violation(s) == "OK");
}

TEST_CASE("ValidateSchedule names the time zone", "[schedule]") {
  CHECK(Violation(Weekly("", {})) == "schedule.time_zone REQUIRED");
  CHECK(Violation(Weekly("Europe/Atlantis", {})) == "schedule.time_zone UNKNOWN_TIME_ZONE");
  CHECK(Violation(Weekly("localtime", {})) == "schedule.time_zone UNKNOWN_TIME_ZONE");
  // Another prefix (e.g. an unsaved schedule in another message).
  CHECK(ValidateSchedule(Weekly("Mars/Olympus", {}), "").message().substr(0, 10) == "time_zone:");
}

TEST_CASE("ValidateSchedule names bad days and times", "[schedule]") {
  auto one = [](v1::WeeklyRange r) {
    return Violation(Weekly("UTC", {Range(kMon, {8, 0}, {9, 0}), r}));
  };
  CHECK(one(Range(v1::DAY_OF_WEEK_UNSPECIFIED, {9, 0}, {10, 0})) ==
        "schedule.weekly_ranges[1].day REQUIRED");
  CHECK(one(Range(static_cast<v1::DayOfWeek>(8), {9, 0}, {10, 0})) ==
        "schedule.weekly_ranges[1].day INVALID_DAY");
  CHECK(one(Range(kTue, {25, 0}, {26, 0})) == "schedule.weekly_ranges[1].start INVALID_TIME");
  CHECK(one(Range(kTue, {-1, 0}, {10, 0})) == "schedule.weekly_ranges[1].start INVALID_TIME");
  CHECK(one(Range(kTue, {9, 60}, {10, 0})) == "schedule.weekly_ranges[1].start INVALID_TIME");
  CHECK(one(Range(kTue, {24, 0}, {10, 0})) == "schedule.weekly_ranges[1].start INVALID_TIME");
  CHECK(one(Range(kTue, {9, 0}, {24, 30})) == "schedule.weekly_ranges[1].end INVALID_TIME");
  CHECK(one(Range(kTue, {9, 0}, {10, -5})) == "schedule.weekly_ranges[1].end INVALID_TIME");
  CHECK(one(Range(kTue, {9, 0}, {9, 0})) == "schedule.weekly_ranges[1].end EMPTY_RANGE");
  CHECK(one(Range(kTue, {0, 0}, {0, 0})) == "schedule.weekly_ranges[1].end EMPTY_RANGE");
  v1::WeeklyRange seconds = Range(kTue, {9, 0}, {10, 0});
  seconds.mutable_end()->set_seconds(60);
  CHECK(one(seconds) == "schedule.weekly_ranges[1].end INVALID_TIME");
  seconds.mutable_end()->set_seconds(59);
  CHECK(one(seconds) == "OK");
}

TEST_CASE("ValidateSchedule refuses overlapping ranges", "[schedule]") {
  CHECK(Violation(Weekly("UTC", {Range(kMon, {9, 0}, {12, 0}), Range(kMon, {11, 0}, {13, 0})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  // Contained in an earlier, longer range (not only the previous one).
  CHECK(Violation(Weekly("UTC", {Range(kMon, {8, 0}, {18, 0}), Range(kMon, {9, 0}, {10, 0}),
                                 Range(kMon, {12, 0}, {13, 0})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  CHECK(Violation(Weekly("UTC", {Range(kTue, {9, 0}, {10, 0}), Range(kTue, {9, 0}, {10, 0})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  // The morning part of an overnight range overlaps the next day's early range, Sunday into
  // Monday included.
  CHECK(Violation(Weekly("UTC", {Range(kMon, {5, 0}, {9, 0}), Range(kSun, {22, 0}, {6, 0})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  CHECK(Violation(Weekly("UTC", {Range(kWed, {20, 0}, {3, 0}), Range(kWed, {23, 0}, {23, 30})})) ==
        "schedule.weekly_ranges[1] OVERLAPPING_RANGES");
  // The first range in input order that clashes with an earlier one is named.
  CHECK(Violation(Weekly("UTC", {Range(kFri, {9, 0}, {10, 0}), Range(kThu, {9, 0}, {10, 0}),
                                 Range(kThu, {9, 30}, {11, 0}), Range(kFri, {9, 30}, {9, 45})})) ==
        "schedule.weekly_ranges[2] OVERLAPPING_RANGES");
  const absl::Status status = ValidateSchedule(
      Weekly("UTC", {Range(kSun, {22, 0}, {6, 0}), Range(kMon, {5, 0}, {9, 0})}), "schedule");
  CHECK(std::string(status.message()) ==
        "schedule.weekly_ranges[1]: overlaps weekly_ranges[0] (Sunday 22:00-06:00) on Monday");
}

TEST_CASE("ValidateSchedule names bad exceptions", "[schedule]") {
  auto with = [](auto add) {
    v1::Schedule s = Office();
    AddException(s, 2024, 1, 1, Type::TYPE_HOLIDAY, "New Year");
    add(s);
    return Violation(s);
  };
  CHECK(with([](v1::Schedule& s) { AddException(s, 2024, 2, 30, Type::TYPE_HOLIDAY, "x"); }) ==
        "schedule.exceptions[1].date INVALID_DATE");
  CHECK(with([](v1::Schedule& s) { AddException(s, 2023, 2, 29, Type::TYPE_HOLIDAY, "x"); }) ==
        "schedule.exceptions[1].date INVALID_DATE");
  CHECK(with([](v1::Schedule& s) { AddException(s, 2024, 13, 1, Type::TYPE_HOLIDAY, "x"); }) ==
        "schedule.exceptions[1].date INVALID_DATE");
  CHECK(with([](v1::Schedule& s) { AddException(s, 0, 5, 1, Type::TYPE_HOLIDAY, "x"); }) ==
        "schedule.exceptions[1].date INVALID_DATE");
  CHECK(with([](v1::Schedule& s) {
          AddException(s, 2024, 5, 1, Type::TYPE_HOLIDAY, "x")->clear_date();
        }) == "schedule.exceptions[1].date REQUIRED");
  CHECK(with([](v1::Schedule& s) { AddException(s, 2024, 5, 1, Type::TYPE_UNSPECIFIED, "x"); }) ==
        "schedule.exceptions[1].type REQUIRED");
  CHECK(with([](v1::Schedule& s) {
          AddException(s, 2024, 5, 1, static_cast<Type::Type>(9), "x");
        }) == "schedule.exceptions[1].type INVALID_TYPE");
  CHECK(with([](v1::Schedule& s) {
          AddException(s, 2024, 5, 1, Type::TYPE_HOLIDAY, std::string(201, 'x'));
        }) == "schedule.exceptions[1].name TOO_LONG");
  CHECK(with([](v1::Schedule& s) { AddException(s, 2024, 1, 1, Type::TYPE_CLOSED, "again"); }) ==
        "schedule.exceptions[1].date DUPLICATE_DATE");
  CHECK(with([](v1::Schedule& s) {
          AddException(s, 2020, 12, 25, Type::TYPE_HOLIDAY, "a", true);
          AddException(s, 2023, 12, 25, Type::TYPE_HOLIDAY, "b", true);
        }) == "schedule.exceptions[2].date DUPLICATE_DATE");
}

TEST_CASE("ValidateSchedule checks special hours", "[schedule]") {
  auto special = [](std::vector<std::pair<std::pair<int, int>, std::pair<int, int>>> slots,
                    Type::Type type = Type::TYPE_SPECIAL_HOURS) {
    v1::Schedule s = Office();
    v1::ScheduleException* e = AddException(s, 2024, 12, 24, type, "Christmas Eve");
    for (const auto& [start, end] : slots) AddSlot(e, start, end);
    return Violation(s);
  };
  CHECK(special({{{9, 0}, {12, 0}}, {{14, 0}, {24, 0}}}) == "OK");
  CHECK(special({}) == "schedule.exceptions[0].hours REQUIRED");
  CHECK(special({{{9, 0}, {12, 0}}, {{11, 0}, {13, 0}}}) ==
        "schedule.exceptions[0].hours[1] OVERLAPPING_RANGES");
  CHECK(special({{{12, 0}, {13, 0}}, {{8, 0}, {18, 0}}}) ==
        "schedule.exceptions[0].hours[1] OVERLAPPING_RANGES");
  CHECK(special({{{22, 0}, {2, 0}}}) == "schedule.exceptions[0].hours[0].end EMPTY_RANGE");
  CHECK(special({{{9, 0}, {9, 0}}}) == "schedule.exceptions[0].hours[0].end EMPTY_RANGE");
  CHECK(special({{{9, 0}, {12, 0}}, {{24, 0}, {24, 0}}}) ==
        "schedule.exceptions[0].hours[1].start INVALID_TIME");
  CHECK(special({{{9, 0}, {25, 0}}}) == "schedule.exceptions[0].hours[0].end INVALID_TIME");
  CHECK(special({{{9, 0}, {12, 0}}}, Type::TYPE_HOLIDAY) ==
        "schedule.exceptions[0].hours HOURS_NOT_ALLOWED");
  CHECK(special({{{9, 0}, {12, 0}}}, Type::TYPE_CLOSED) ==
        "schedule.exceptions[0].hours HOURS_NOT_ALLOWED");
  std::vector<std::pair<std::pair<int, int>, std::pair<int, int>>> many;
  for (int h = 0; h < 21; ++h) many.push_back({{h, 0}, {h, 30}});
  CHECK(special(many) == "schedule.exceptions[0].hours TOO_MANY");
}

TEST_CASE("ValidateSchedule limits ranges and exceptions", "[schedule]") {
  v1::Schedule s = Weekly("UTC", {});
  for (int i = 0; i < kMaxWeeklyRanges; ++i) {
    *s.add_weekly_ranges() = Range(static_cast<v1::DayOfWeek>(i % 7 + 1), {i / 7, 0}, {i / 7, 30});
  }
  CHECK(Violation(s) == "OK");
  *s.add_weekly_ranges() = Range(kSun, {23, 0}, {23, 30});
  CHECK(Violation(s) == "schedule.weekly_ranges TOO_MANY");

  v1::Schedule e = Weekly("UTC", {});
  for (int i = 0; i < kMaxExceptions; ++i) {
    AddException(e, 2000 + i, 1, 1, Type::TYPE_HOLIDAY, "x");
  }
  CHECK(Violation(e) == "OK");
  AddException(e, 1999, 1, 1, Type::TYPE_HOLIDAY, "x");
  CHECK(Violation(e) == "schedule.exceptions TOO_MANY");
}

}  // namespace
}  // namespace sb::schedule
