#pragma once

// Validation of working-hour schedules (switchboard.org.v1.Schedule), and the rules that the
// validator and CompiledSchedule share.
//
// A schedule is wall-clock: its weekly ranges and exception hours are local civil times in the
// schedule's IANA time zone.
//   - A weekly range [start, end) belongs to its day; when end is not after start it runs past
//     midnight into the next day (Monday 22:00-06:00 is Monday 22:00-24:00 and Tuesday
//     00:00-06:00; Sunday's runs into Monday). 24:00 is allowed as an end only.
//   - Ranges may not overlap on any day, counting the morning part of the previous day's
//     past-midnight range. Ranges that only touch (09:00-12:00, 12:00-13:00) are fine.
//   - An exception governs its whole local date, 00:00 to 24:00, in place of the weekly pattern
//     (including the morning part of a range that started the evening before). HOLIDAY and
//     CLOSED close the date; SPECIAL_HOURS opens it only in its hours (slots within the date).
//   - An every_year exception repeats on its month and day from the year of its date on (a 29
//     February one only in leap years). A one-off exception on the same date takes precedence.
//
// Thread-safe (stateless).

#include <array>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "switchboard/org/v1/org_resources.pb.h"

namespace sb::schedule {

namespace v1 = ::switchboard::org::v1;

inline constexpr int kMaxWeeklyRanges = 100;
inline constexpr int kMaxExceptions = 500;
inline constexpr int kMaxSlotsPerException = 20;
inline constexpr int kMaxExceptionNameLength = 200;
inline constexpr int kSecondsPerDay = 86400;

// OK, or InvalidArgument with a FieldViolation naming the field below `field_prefix` ("schedule"
// gives "schedule.time_zone", "schedule.weekly_ranges[2].end", "schedule.exceptions[0].date").
// Reasons: REQUIRED, UNKNOWN_TIME_ZONE, TOO_MANY, INVALID_DAY, INVALID_TIME, EMPTY_RANGE,
// OVERLAPPING_RANGES, INVALID_DATE, INVALID_TYPE, HOURS_NOT_ALLOWED, DUPLICATE_DATE, TOO_LONG,
// INVALID_CHARACTERS. Name, description, id and timestamps are not checked (they are the
// service's business).
absl::Status ValidateSchedule(const v1::Schedule& schedule, std::string_view field_prefix);

namespace internal {

// Seconds since local midnight of a time of day (24:00 is 86400). Assumes a valid time.
int SecondsOfDay(const ::switchboard::common::v1::TimeOfDay& t);

// One day's part of a weekly range: [start, end) seconds of the day; `range` is the index of the
// weekly range it comes from.
struct DayPiece {
  int start = 0;
  int end = 0;
  int range = 0;
};

// The weekly ranges split into days (index 0 = Monday ... 6 = Sunday); past-midnight ranges
// give a piece to each of two days. Assumes valid ranges; each day's pieces are sorted by start.
std::array<std::vector<DayPiece>, 7> WeeklyPieces(
    const google::protobuf::RepeatedPtrField<v1::WeeklyRange>& ranges);

}  // namespace internal

}  // namespace sb::schedule
