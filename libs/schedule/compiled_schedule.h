#pragma once

// CompiledSchedule: a working-hour schedule (switchboard.org.v1.Schedule) turned once into flat
// tables that answer "is it open at this instant?" without allocating and without calling into
// the time-zone library on the hot path, and "when does that next change?".
//
//   SB_ASSIGN_OR_RETURN(CompiledSchedule hours, CompiledSchedule::Compile(schedule));
//   CompiledSchedule::State now = hours.IsOpen(absl::Now());
//   if (now.status == v1::SCHEDULE_STATUS_HOLIDAY) ... now.exception_name ...
//   std::optional<CompiledSchedule::Change> next = hours.NextChange(absl::Now());
//
// Semantics (the rules of the schedule itself are in schedule_validation.h): ranges are wall
// clock. An instant is open when its local civil time in the schedule's zone falls in a range of
// its local date (or of that date's exception). Across DST this means:
//   - spring forward (Europe/Budapest 2024-03-31 02:00 -> 03:00): local times in the gap do not
//     exist, so no instant is open "at 02:30"; a range 02:30-04:00 opens at the transition
//     instant (01:00Z, local 03:00), and a range inside the gap never opens that day;
//   - fall back (2024-10-27 03:00 -> 02:00): the repeated hour's two instants map to the same
//     civil time, so a range 02:15-02:45 is open twice, 00:15Z-00:45Z and 01:15Z-01:45Z;
//   - so a range that contains a DST jump is longer or shorter in real time than its local
//     times say (00:00-06:00 lasts 7 hours on a fall-back day and 5 on a spring-forward day).
// Seconds are the resolution: an instant is judged by the local second it falls in.
//
// Status and statuses: OPEN inside a range; HOLIDAY all day on a HOLIDAY exception's date;
// CLOSED otherwise (outside ranges, CLOSED exceptions, outside SPECIAL_HOURS slots).
// exception_name is the name of the exception governing the instant's date ("" when the weekly
// pattern applies), for every status.
//
// Between 1970 and 2100 (the cached window) IsOpen is a few table look-ups: the zone's offset
// changes are a sorted table indexed by 48-day buckets, and a bitmap of local dates says which
// dates have an exception (only those go to the exception tables). Instants outside the window
// ask the time-zone library (slower, still exact).
//
// Thread-safe: immutable after Compile; any number of threads may call the const methods.
// Copyable and movable; string_views in returned States point into the object, so they are
// valid while it lives (and is not assigned to or moved from).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/schedule/schedule_validation.h"
#include "switchboard/org/v1/org_resources.pb.h"

namespace sb::schedule {

class CompiledSchedule {
 public:
  struct State {
    v1::ScheduleStatus status = v1::SCHEDULE_STATUS_CLOSED;
    // The exception governing the date, "" for the weekly pattern.
    std::string_view exception_name;
  };
  struct Change {
    // The first instant with the new status.
    absl::Time at;
    State state;
  };

  // NextChange looks this far ahead of its argument.
  static constexpr int kHorizonDays = 400;

  // Validates (ValidateSchedule with field prefix "schedule") and compiles. InvalidArgument
  // naming the field.
  static absl::StatusOr<CompiledSchedule> Compile(const v1::Schedule& schedule);

  // The state at `t`. Never allocates.
  State IsOpen(absl::Time t) const;

  // The first instant after `t` at which the status differs from IsOpen(t).status, with the
  // state from then on; nullopt when the status does not change within kHorizonDays of `t`
  // (always open, never open, or only changes further away) and for InfiniteFuture().
  // Status changes only: a CLOSED evening followed by a CLOSED exception date is no change.
  std::optional<Change> NextChange(absl::Time t) const;

  const absl::TimeZone& time_zone() const { return tz_; }

 private:
  // Seconds of the local day, [start, end), 0 <= start < end <= 86400.
  struct Interval {
    int32_t start;
    int32_t end;
  };
  // The open intervals of one local date.
  struct Plan {
    uint32_t first = 0;  // intervals_[first, last)
    uint32_t last = 0;
    v1::ScheduleStatus closed = v1::SCHEDULE_STATUS_CLOSED;  // outside the intervals
    int32_t name = -1;                                       // names_ index, -1: none
  };
  // An every_year exception on a month and day.
  struct Yearly {
    int64_t first_year = INT64_MAX;
    uint32_t plan = 0;
  };
  // The instants up to `until` (exclusive; Unix seconds) that share one UTC offset.
  struct Segment {
    int64_t until;
    int32_t offset;
  };

  CompiledSchedule() = default;

  uint32_t AddPlan(std::vector<Interval> intervals, v1::ScheduleStatus closed,
                   const std::string& name);
  void CacheOffsets();
  void MarkExceptionDays(const v1::Schedule& schedule);

  size_t SegmentIndex(int64_t unix_seconds) const;  // within the window
  int32_t OffsetAt(int64_t unix_seconds) const;
  Segment SegmentAt(int64_t unix_seconds) const;
  const Plan& PlanFor(int64_t local_day) const;
  const Plan& LookUpPlan(int64_t local_day) const;
  State StateIn(const Plan& plan, int32_t second_of_day) const;
  State StateAtLocal(int64_t local_seconds) const;
  // The first local second L, from < L < limit, where the status differs from `status`.
  std::optional<int64_t> NextLocalChange(int64_t from, v1::ScheduleStatus status,
                                         int64_t limit) const;

  absl::TimeZone tz_;
  std::vector<Interval> intervals_;
  std::vector<Plan> plans_;  // 0..6: Monday..Sunday, then one per exception
  std::vector<std::string> names_;
  absl::flat_hash_map<int64_t, uint32_t> dated_;  // local day number (1970-01-01 = 0) -> plan
  std::vector<Yearly> yearly_;                    // month * 32 + day; empty when none

  // Offset changes in [window_from_, window_until_): segment i starts at change_at_[i] with
  // change_offset_[i]; change_at_[0] == window_from_. bucket_[b] is the segment that holds
  // window_from_ + (b << kBucketShift).
  static constexpr int kBucketShift = 22;  // 48.5 days
  int64_t window_from_ = 0;
  int64_t window_until_ = 0;
  std::vector<int64_t> change_at_;
  std::vector<int32_t> change_offset_;
  std::vector<uint16_t> bucket_;
  // Bit d - first_marked_day_ (for d - first_marked_day_ < marked_days_): local day d has an
  // exception. Days outside are looked up. Empty when there are no exceptions.
  int64_t first_marked_day_ = 0;
  uint64_t marked_days_ = 0;
  std::vector<uint64_t> exception_days_;
};

// `t` in `tz` as ISO 8601 with the UTC offset, to the second: "2024-03-31T03:30:00+02:00".
std::string FormatLocalTime(absl::Time t, const absl::TimeZone& tz);

}  // namespace sb::schedule
