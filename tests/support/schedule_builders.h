#pragma once

// Builders for working-hour schedules (switchboard.org.v1.Schedule) in the schedule unit tests
// and the org integration tests.

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "libs/schedule/compiled_schedule.h"

namespace sb::schedule::testing {

namespace cv1 = ::switchboard::common::v1;

constexpr v1::DayOfWeek kMon = v1::DAY_OF_WEEK_MONDAY;
constexpr v1::DayOfWeek kTue = v1::DAY_OF_WEEK_TUESDAY;
constexpr v1::DayOfWeek kWed = v1::DAY_OF_WEEK_WEDNESDAY;
constexpr v1::DayOfWeek kThu = v1::DAY_OF_WEEK_THURSDAY;
constexpr v1::DayOfWeek kFri = v1::DAY_OF_WEEK_FRIDAY;
constexpr v1::DayOfWeek kSat = v1::DAY_OF_WEEK_SATURDAY;
constexpr v1::DayOfWeek kSun = v1::DAY_OF_WEEK_SUNDAY;

inline cv1::TimeOfDay Tod(int hours, int minutes = 0, int seconds = 0) {
  cv1::TimeOfDay t;
  t.set_hours(hours);
  t.set_minutes(minutes);
  t.set_seconds(seconds);
  return t;
}

// A weekly range from start to end, each as {hours, minutes}.
inline v1::WeeklyRange Range(v1::DayOfWeek day, std::pair<int, int> start,
                             std::pair<int, int> end) {
  v1::WeeklyRange r;
  r.set_day(day);
  *r.mutable_start() = Tod(start.first, start.second);
  *r.mutable_end() = Tod(end.first, end.second);
  return r;
}

inline v1::Schedule Weekly(std::string zone, std::vector<v1::WeeklyRange> ranges) {
  v1::Schedule s;
  s.set_name("Test hours");
  s.set_time_zone(std::move(zone));
  for (auto& r : ranges) *s.add_weekly_ranges() = std::move(r);
  return s;
}

// Monday to Friday in each of `ranges` ({start, end} pairs of {hours, minutes}).
inline v1::Schedule Weekdays(
    std::string zone, std::vector<std::pair<std::pair<int, int>, std::pair<int, int>>> ranges) {
  std::vector<v1::WeeklyRange> all;
  for (v1::DayOfWeek d : {kMon, kTue, kWed, kThu, kFri}) {
    for (const auto& [start, end] : ranges) all.push_back(Range(d, start, end));
  }
  return Weekly(std::move(zone), std::move(all));
}

inline v1::ScheduleException* AddException(v1::Schedule& s, int year, int month, int day,
                                           v1::ScheduleException::Type type, std::string name,
                                           bool every_year = false) {
  v1::ScheduleException* e = s.add_exceptions();
  e->mutable_date()->set_year(year);
  e->mutable_date()->set_month(month);
  e->mutable_date()->set_day(day);
  e->set_type(type);
  e->set_name(std::move(name));
  e->set_every_year(every_year);
  return e;
}

inline void AddSlot(v1::ScheduleException* e, std::pair<int, int> start, std::pair<int, int> end) {
  v1::TimeSlot* slot = e->add_hours();
  *slot->mutable_start() = Tod(start.first, start.second);
  *slot->mutable_end() = Tod(end.first, end.second);
}

// An instant written in RFC 3339 ("2024-03-31T01:00:00Z").
inline absl::Time At(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err))
    FAIL("bad time " << text << ": " << err);
  return t;
}

inline CompiledSchedule MustCompile(const v1::Schedule& s) {
  absl::StatusOr<CompiledSchedule> c = CompiledSchedule::Compile(s);
  if (!c.ok()) FAIL(c.status().ToString());
  return *std::move(c);
}

}  // namespace sb::schedule::testing
