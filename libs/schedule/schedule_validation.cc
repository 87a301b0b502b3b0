#include "libs/schedule/schedule_validation.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/status_macros.h"

namespace sb::schedule {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr const char* kDayNames[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};

std::string Clock(int seconds) {
  char buf[16];
  if (seconds % 60 == 0) {
    std::snprintf(buf, sizeof buf, "%02d:%02d", seconds / 3600, seconds / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60,
                  seconds % 60);
  }
  return buf;
}

// `is_end`: 24:00 is allowed (midnight at the end of the day).
absl::Status CheckTime(const cv1::TimeOfDay& t, bool is_end, const std::string& field) {
  if (t.hours() < 0 || t.hours() > 24 || t.minutes() < 0 || t.minutes() > 59 || t.seconds() < 0 ||
      t.seconds() > 59) {
    return app::FieldError(field, "INVALID_TIME", "hours must be 0..24, minutes and seconds 0..59");
  }
  if (t.hours() == 24 && (t.minutes() != 0 || t.seconds() != 0)) {
    return app::FieldError(field, "INVALID_TIME", "the latest time of day is 24:00");
  }
  if (t.hours() == 24 && !is_end) {
    return app::FieldError(field, "INVALID_TIME", "24:00 is allowed only as an end");
  }
  return absl::OkStatus();
}

// Checks start and end of a range or slot at `field` (".start"/".end" are appended).
absl::Status CheckTimes(const cv1::TimeOfDay& start, const cv1::TimeOfDay& end,
                        const std::string& field) {
  SB_RETURN_IF_ERROR(CheckTime(start, false, absl::StrCat(field, ".start")));
  return CheckTime(end, true, absl::StrCat(field, ".end"));
}

absl::Status CheckWeeklyRanges(const v1::Schedule& schedule, const std::string& base) {
  const auto& ranges = schedule.weekly_ranges();
  if (ranges.size() > kMaxWeeklyRanges) {
    return app::FieldError(absl::StrCat(base, "weekly_ranges"), "TOO_MANY",
                           absl::StrCat("at most ", kMaxWeeklyRanges, " ranges"));
  }
  for (int i = 0; i < ranges.size(); ++i) {
    const v1::WeeklyRange& r = ranges[i];
    const std::string field = absl::StrCat(base, "weekly_ranges[", i, "]");
    if (r.day() == v1::DAY_OF_WEEK_UNSPECIFIED) {
      return app::FieldError(absl::StrCat(field, ".day"), "REQUIRED", "is required");
    }
    if (!v1::DayOfWeek_IsValid(r.day())) {
      return app::FieldError(absl::StrCat(field, ".day"), "INVALID_DAY", "must be MONDAY..SUNDAY");
    }
    SB_RETURN_IF_ERROR(CheckTimes(r.start(), r.end(), field));
    if (internal::SecondsOfDay(r.start()) == internal::SecondsOfDay(r.end())) {
      return app::FieldError(absl::StrCat(field, ".end"), "EMPTY_RANGE",
                             "must differ from start (an end before the start runs past "
                             "midnight; 00:00-24:00 is the whole day)");
    }
  }
  // Of all overlapping pairs, name the range that comes first in the input among the later
  // members of each pair: the first one that clashes with something before it.
  const auto days = internal::WeeklyPieces(ranges);
  int worst = -1;
  int other = -1;
  int on_day = -1;
  for (int d = 0; d < 7; ++d) {
    int max_end = -1;
    int max_end_range = -1;
    for (const internal::DayPiece& p : days[d]) {
      if (p.start < max_end) {
        const int later = std::max(p.range, max_end_range);
        if (worst < 0 || later < worst) {
          worst = later;
          other = std::min(p.range, max_end_range);
          on_day = d;
        }
      }
      if (p.end > max_end) {
        max_end = p.end;
        max_end_range = p.range;
      }
    }
  }
  if (worst >= 0) {
    const v1::WeeklyRange& o = ranges[other];
    return app::FieldError(
        absl::StrCat(base, "weekly_ranges[", worst, "]"), "OVERLAPPING_RANGES",
        absl::StrCat("overlaps weekly_ranges[", other, "] (",
                     kDayNames[static_cast<int>(o.day()) - 1], " ",
                     Clock(internal::SecondsOfDay(o.start())), "-",
                     Clock(internal::SecondsOfDay(o.end())), ") on ", kDayNames[on_day]));
  }
  return absl::OkStatus();
}

bool ValidDate(const cv1::Date& d) {
  if (d.year() < 1 || d.year() > 9999 || d.month() < 1 || d.month() > 12 || d.day() < 1 ||
      d.day() > 31) {
    return false;
  }
  const absl::CivilDay day(d.year(), d.month(), d.day());
  return day.month() == d.month() && day.day() == d.day();
}

absl::Status CheckSlots(const v1::ScheduleException& e, const std::string& field) {
  const auto& slots = e.hours();
  if (slots.empty()) {
    return app::FieldError(absl::StrCat(field, ".hours"), "REQUIRED",
                           "SPECIAL_HOURS needs at least one time slot");
  }
  if (slots.size() > kMaxSlotsPerException) {
    return app::FieldError(absl::StrCat(field, ".hours"), "TOO_MANY",
                           absl::StrCat("at most ", kMaxSlotsPerException, " slots"));
  }
  // (start, end, index) sorted by start.
  std::vector<std::tuple<int, int, int>> sorted;
  for (int j = 0; j < slots.size(); ++j) {
    const std::string slot = absl::StrCat(field, ".hours[", j, "]");
    SB_RETURN_IF_ERROR(CheckTimes(slots[j].start(), slots[j].end(), slot));
    const int start = internal::SecondsOfDay(slots[j].start());
    const int end = internal::SecondsOfDay(slots[j].end());
    if (end <= start) {
      return app::FieldError(absl::StrCat(slot, ".end"), "EMPTY_RANGE",
                             "must be after start (special hours stay within their date; "
                             "24:00 is midnight at its end)");
    }
    sorted.emplace_back(start, end, j);
  }
  std::sort(sorted.begin(), sorted.end());
  int worst = -1;
  int other = -1;
  int max_end = -1;
  int max_end_slot = -1;
  for (const auto& [start, end, j] : sorted) {
    if (start < max_end) {
      const int later = std::max(j, max_end_slot);
      if (worst < 0 || later < worst) {
        worst = later;
        other = std::min(j, max_end_slot);
      }
    }
    if (end > max_end) {
      max_end = end;
      max_end_slot = j;
    }
  }
  if (worst >= 0) {
    return app::FieldError(absl::StrCat(field, ".hours[", worst, "]"), "OVERLAPPING_RANGES",
                           absl::StrCat("overlaps hours[", other, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckExceptions(const v1::Schedule& schedule, const std::string& base) {
  const auto& exceptions = schedule.exceptions();
  if (exceptions.size() > kMaxExceptions) {
    return app::FieldError(absl::StrCat(base, "exceptions"), "TOO_MANY",
                           absl::StrCat("at most ", kMaxExceptions, " exceptions"));
  }
  std::set<std::tuple<int, int, int>> one_off;  // (year, month, day)
  std::set<std::pair<int, int>> yearly;         // (month, day)
  for (int i = 0; i < exceptions.size(); ++i) {
    const v1::ScheduleException& e = exceptions[i];
    const std::string field = absl::StrCat(base, "exceptions[", i, "]");
    const std::string date_field = absl::StrCat(field, ".date");
    if (!e.has_date()) return app::FieldError(date_field, "REQUIRED", "is required");
    if (!ValidDate(e.date())) {
      return app::FieldError(date_field, "INVALID_DATE",
                             "must be a calendar date (year 1..9999, month 1..12, day of month)");
    }
    if (e.type() == v1::ScheduleException::TYPE_UNSPECIFIED) {
      return app::FieldError(absl::StrCat(field, ".type"), "REQUIRED", "is required");
    }
    if (!v1::ScheduleException::Type_IsValid(e.type())) {
      return app::FieldError(absl::StrCat(field, ".type"), "INVALID_TYPE",
                             "must be HOLIDAY, CLOSED or SPECIAL_HOURS");
    }
    SB_RETURN_IF_ERROR(
        app::ValidateText(e.name(), absl::StrCat(field, ".name"), kMaxExceptionNameLength));
    if (e.type() == v1::ScheduleException::TYPE_SPECIAL_HOURS) {
      SB_RETURN_IF_ERROR(CheckSlots(e, field));
    } else if (!e.hours().empty()) {
      return app::FieldError(absl::StrCat(field, ".hours"), "HOURS_NOT_ALLOWED",
                             "only SPECIAL_HOURS exceptions have hours");
    }
    const bool fresh =
        e.every_year() ? yearly.emplace(e.date().month(), e.date().day()).second
                       : one_off.emplace(e.date().year(), e.date().month(), e.date().day()).second;
    if (!fresh) {
      return app::FieldError(date_field, "DUPLICATE_DATE",
                             e.every_year()
                                 ? "another every_year exception has the same month and day"
                                 : "another exception has the same date");
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal {

int SecondsOfDay(const cv1::TimeOfDay& t) {
  return t.hours() * 3600 + t.minutes() * 60 + t.seconds();
}

std::array<std::vector<DayPiece>, 7> WeeklyPieces(
    const google::protobuf::RepeatedPtrField<v1::WeeklyRange>& ranges) {
  std::array<std::vector<DayPiece>, 7> days;
  for (int i = 0; i < ranges.size(); ++i) {
    const int d = static_cast<int>(ranges[i].day()) - 1;
    const int start = SecondsOfDay(ranges[i].start());
    const int end = SecondsOfDay(ranges[i].end());
    if (end > start) {
      days[d].push_back({start, end, i});
    } else {
      // Past midnight: the evening on its day, the morning (if any) on the next.
      days[d].push_back({start, kSecondsPerDay, i});
      if (end > 0) days[(d + 1) % 7].push_back({0, end, i});
    }
  }
  for (auto& pieces : days) {
    std::sort(pieces.begin(), pieces.end(), [](const DayPiece& a, const DayPiece& b) {
      return std::tie(a.start, a.end, a.range) < std::tie(b.start, b.end, b.range);
    });
  }
  return days;
}

}  // namespace internal

absl::Status ValidateSchedule(const v1::Schedule& schedule, std::string_view field_prefix) {
  const std::string base = field_prefix.empty() ? "" : absl::StrCat(std::string(field_prefix), ".");
  const std::string tz_field = absl::StrCat(base, "time_zone");
  SB_RETURN_IF_ERROR(app::ValidateTimeZone(schedule.time_zone(), tz_field));
  // "localtime" is whatever zone the machine runs in: not a place a schedule can name.
  if (schedule.time_zone() == "localtime") {
    return app::FieldError(tz_field, "UNKNOWN_TIME_ZONE",
                           "name an IANA time zone (e.g. Europe/Budapest)");
  }
  SB_RETURN_IF_ERROR(CheckWeeklyRanges(schedule, base));
  return CheckExceptions(schedule, base);
}

}  // namespace sb::schedule
