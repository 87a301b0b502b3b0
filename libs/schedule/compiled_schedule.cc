#include "libs/schedule/compiled_schedule.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "libs/common/status_macros.h"

namespace sb::schedule {
namespace {

constexpr int64_t kDay = kSecondsPerDay;
// Instants are clamped to about a million years either side of 1970 so that adding offsets and
// horizons never overflows.
constexpr int64_t kMaxSeconds = int64_t{1} << 45;
// The window of cached offsets: 1970-01-01 to 2100-01-01 UTC.
constexpr int64_t kWindowFrom = 0;
constexpr int64_t kWindowUntil = 4102444800;

// Whole seconds since the epoch, floored. absl::ToUnixSeconds is an out-of-line call into the
// shared Abseil library; this reads the seconds straight from absl::Time's representation (whole
// seconds and a never-negative fraction; the infinities hold the extreme seconds).
int64_t UnixSeconds(absl::Time t) {
  return std::clamp<int64_t>(absl::time_internal::GetRepHi(absl::time_internal::ToUnixDuration(t)),
                             -kMaxSeconds, kMaxSeconds);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// 0 = Monday for a day number (1970-01-01, day 0, was a Thursday).
int Weekday(int64_t day) {
  const int64_t w = (day + 3) % 7;
  return static_cast<int>(w < 0 ? w + 7 : w);
}

// The proleptic Gregorian date of a day number (H. Hinnant's civil_from_days): a few integer
// operations instead of a call into the civil-time library.
void CivilFromDays(int64_t z, int64_t* year, unsigned* month, unsigned* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = static_cast<int64_t>(yoe) + era * 400 + (*month <= 2 ? 1 : 0);
}

int64_t DayNumber(const ::switchboard::common::v1::Date& d) {
  return absl::CivilDay(d.year(), d.month(), d.day()) - absl::CivilDay(1970, 1, 1);
}

int64_t TransitionAt(const absl::TimeZone& tz, const absl::TimeZone::CivilTransition& tr) {
  return UnixSeconds(tz.At(tr.to).trans);
}

}  // namespace

absl::StatusOr<CompiledSchedule> CompiledSchedule::Compile(const v1::Schedule& schedule) {
  SB_RETURN_IF_ERROR(ValidateSchedule(schedule, "schedule"));
  CompiledSchedule c;
  if (!absl::LoadTimeZone(schedule.time_zone(), &c.tz_)) {
    return absl::InvalidArgumentError("schedule.time_zone: unknown IANA time zone");
  }
  const auto days = internal::WeeklyPieces(schedule.weekly_ranges());
  for (const auto& pieces : days) {
    std::vector<Interval> intervals;
    for (const internal::DayPiece& p : pieces) intervals.push_back({p.start, p.end});
    c.AddPlan(std::move(intervals), v1::SCHEDULE_STATUS_CLOSED, "");
  }
  for (const v1::ScheduleException& e : schedule.exceptions()) {
    std::vector<Interval> intervals;
    for (const v1::TimeSlot& slot : e.hours()) {
      intervals.push_back(
          {internal::SecondsOfDay(slot.start()), internal::SecondsOfDay(slot.end())});
    }
    std::sort(intervals.begin(), intervals.end(),
              [](const Interval& a, const Interval& b) { return a.start < b.start; });
    const uint32_t plan =
        c.AddPlan(std::move(intervals),
                  e.type() == v1::ScheduleException::TYPE_HOLIDAY ? v1::SCHEDULE_STATUS_HOLIDAY
                                                                  : v1::SCHEDULE_STATUS_CLOSED,
                  e.name());
    if (e.every_year()) {
      if (c.yearly_.empty()) c.yearly_.resize(13 * 32);
      c.yearly_[e.date().month() * 32 + e.date().day()] = {e.date().year(), plan};
    } else {
      c.dated_[DayNumber(e.date())] = plan;
    }
  }
  c.CacheOffsets();
  c.MarkExceptionDays(schedule);
  return c;
}

uint32_t CompiledSchedule::AddPlan(std::vector<Interval> intervals, v1::ScheduleStatus closed,
                                   const std::string& name) {
  Plan plan;
  plan.first = static_cast<uint32_t>(intervals_.size());
  // Sorted and non-overlapping (validated); ranges that touch become one.
  for (const Interval& iv : intervals) {
    if (intervals_.size() > plan.first && iv.start <= intervals_.back().end) {
      intervals_.back().end = std::max(intervals_.back().end, iv.end);
    } else {
      intervals_.push_back(iv);
    }
  }
  plan.last = static_cast<uint32_t>(intervals_.size());
  plan.closed = closed;
  if (!name.empty()) {
    plan.name = static_cast<int32_t>(names_.size());
    names_.push_back(name);
  }
  plans_.push_back(plan);
  return static_cast<uint32_t>(plans_.size() - 1);
}

void CompiledSchedule::CacheOffsets() {
  window_from_ = kWindowFrom;
  window_until_ = kWindowUntil;
  absl::Time t = absl::FromUnixSeconds(window_from_);
  change_at_.push_back(window_from_);
  change_offset_.push_back(tz_.At(t).offset);
  absl::TimeZone::CivilTransition tr;
  while (tz_.NextTransition(t, &tr)) {
    const int64_t at = TransitionAt(tz_, tr);
    if (at <= absl::ToUnixSeconds(t) || at >= window_until_) break;
    t = absl::FromUnixSeconds(at);
    const int32_t offset = tz_.At(t).offset;
    // Abbreviation-only changes keep the offset: no new segment.
    if (offset == change_offset_.back()) continue;
    // Bucket entries are 16 bits; no real zone comes near that many changes in the window.
    if (change_at_.size() == UINT16_MAX) {
      window_until_ = at;
      break;
    }
    change_at_.push_back(at);
    change_offset_.push_back(offset);
  }
  const int64_t buckets = ((window_until_ - window_from_) >> kBucketShift) + 1;
  bucket_.resize(static_cast<size_t>(buckets));
  size_t segment = 0;
  for (int64_t b = 0; b < buckets; ++b) {
    const int64_t start = window_from_ + (b << kBucketShift);
    while (segment + 1 < change_at_.size() && change_at_[segment + 1] <= start) ++segment;
    bucket_[static_cast<size_t>(b)] = static_cast<uint16_t>(segment);
  }
}

void CompiledSchedule::MarkExceptionDays(const v1::Schedule& schedule) {
  if (schedule.exceptions().empty()) return;
  // The window's local dates, with a day either side for the offsets.
  first_marked_day_ = FloorDiv(window_from_, kDay) - 1;
  const int64_t last_day = FloorDiv(window_until_, kDay) + 1;
  marked_days_ = static_cast<uint64_t>(last_day - first_marked_day_ + 1);
  exception_days_.assign(marked_days_ / 64 + 1, 0);
  auto mark = [&](int64_t day) {
    const auto bit = static_cast<uint64_t>(day - first_marked_day_);
    if (bit < marked_days_) exception_days_[bit >> 6] |= uint64_t{1} << (bit & 63);
  };
  const absl::CivilDay epoch(1970, 1, 1);
  const int64_t first_year = (epoch + first_marked_day_).year();
  const int64_t last_year = (epoch + last_day).year();
  for (const v1::ScheduleException& e : schedule.exceptions()) {
    if (!e.every_year()) {
      mark(DayNumber(e.date()));
      continue;
    }
    for (int64_t year = std::max<int64_t>(e.date().year(), first_year); year <= last_year; ++year) {
      const absl::CivilDay day(year, e.date().month(), e.date().day());
      if (day.day() != e.date().day()) continue;  // 29 February of a common year
      mark(day - epoch);
    }
  }
}

size_t CompiledSchedule::SegmentIndex(int64_t s) const {
  size_t i = bucket_[static_cast<size_t>((s - window_from_) >> kBucketShift)];
  while (i + 1 < change_at_.size() && change_at_[i + 1] <= s) ++i;
  return i;
}

int32_t CompiledSchedule::OffsetAt(int64_t s) const {
  if (s >= window_from_ && s < window_until_) return change_offset_[SegmentIndex(s)];
  return tz_.At(absl::FromUnixSeconds(s)).offset;
}

CompiledSchedule::Segment CompiledSchedule::SegmentAt(int64_t s) const {
  if (s >= window_from_ && s < window_until_) {
    const size_t i = SegmentIndex(s);
    return {i + 1 < change_at_.size() ? change_at_[i + 1] : window_until_, change_offset_[i]};
  }
  const absl::Time t = absl::FromUnixSeconds(s);
  Segment seg{kMaxSeconds, tz_.At(t).offset};
  absl::TimeZone::CivilTransition tr;
  if (tz_.NextTransition(t, &tr)) seg.until = std::max(TransitionAt(tz_, tr), s + 1);
  // The window's start bounds a segment before it, so that segments never straddle it.
  if (s < window_from_) seg.until = std::min(seg.until, window_from_);
  return seg;
}

const CompiledSchedule::Plan& CompiledSchedule::PlanFor(int64_t local_day) const {
  if (exception_days_.empty()) return plans_[Weekday(local_day)];
  const auto bit = static_cast<uint64_t>(local_day - first_marked_day_);
  if (bit < marked_days_ && ((exception_days_[bit >> 6] >> (bit & 63)) & 1) == 0) {
    return plans_[Weekday(local_day)];
  }
  return LookUpPlan(local_day);
}

const CompiledSchedule::Plan& CompiledSchedule::LookUpPlan(int64_t local_day) const {
  if (!dated_.empty()) {
    const auto it = dated_.find(local_day);
    if (it != dated_.end()) return plans_[it->second];
  }
  if (!yearly_.empty()) {
    int64_t year;
    unsigned month;
    unsigned day;
    CivilFromDays(local_day, &year, &month, &day);
    const Yearly& y = yearly_[month * 32 + day];
    if (year >= y.first_year) return plans_[y.plan];
  }
  return plans_[Weekday(local_day)];
}

CompiledSchedule::State CompiledSchedule::StateIn(const Plan& plan, int32_t second) const {
  State state;
  state.status = plan.closed;
  for (uint32_t i = plan.first; i < plan.last; ++i) {
    const Interval& iv = intervals_[i];
    if (second < iv.start) break;
    if (second < iv.end) {
      state.status = v1::SCHEDULE_STATUS_OPEN;
      break;
    }
  }
  if (plan.name >= 0) state.exception_name = names_[plan.name];
  return state;
}

CompiledSchedule::State CompiledSchedule::StateAtLocal(int64_t local) const {
  const int64_t day = FloorDiv(local, kDay);
  return StateIn(PlanFor(day), static_cast<int32_t>(local - day * kDay));
}

CompiledSchedule::State CompiledSchedule::IsOpen(absl::Time t) const {
  const int64_t s = UnixSeconds(t);
  return StateAtLocal(s + OffsetAt(s));
}

std::optional<int64_t> CompiledSchedule::NextLocalChange(int64_t from, v1::ScheduleStatus status,
                                                         int64_t limit) const {
  // The status is constant between a day's breakpoints: its midnight and its intervals' edges.
  for (int64_t day = FloorDiv(from, kDay);; ++day) {
    const int64_t base = day * kDay;
    if (base >= limit) return std::nullopt;
    const Plan& plan = PlanFor(day);
    auto check = [&](int32_t second) -> bool {
      const int64_t at = base + second;
      return at > from && at < limit && StateIn(plan, second).status != status;
    };
    if (check(0)) return base;
    for (uint32_t i = plan.first; i < plan.last; ++i) {
      const Interval& iv = intervals_[i];
      if (base + iv.start >= limit) return std::nullopt;
      if (check(iv.start)) return base + iv.start;
      // An end at 24:00 is the next day's midnight, checked with that day's plan.
      if (iv.end < kDay && check(iv.end)) return base + iv.end;
    }
  }
}

std::optional<CompiledSchedule::Change> CompiledSchedule::NextChange(absl::Time t) const {
  if (t == absl::InfiniteFuture()) return std::nullopt;
  const int64_t s = UnixSeconds(t);
  const int64_t horizon = s + int64_t{kHorizonDays} * kDay;
  Segment seg = SegmentAt(s);
  const v1::ScheduleStatus status = StateAtLocal(s + seg.offset).status;
  int64_t local_from = s + seg.offset;
  // Within a segment local time is the instant plus a constant offset, so the next change is the
  // next local breakpoint where the status differs; at a segment's end local time jumps (DST), and
  // the status right after the jump may differ too.
  while (true) {
    const int64_t until = std::min(seg.until, horizon);
    if (std::optional<int64_t> local = NextLocalChange(local_from, status, until + seg.offset)) {
      return Change{absl::FromUnixSeconds(*local - seg.offset), StateAtLocal(*local)};
    }
    if (until >= horizon) return std::nullopt;
    const Segment next = SegmentAt(until);
    const State after = StateAtLocal(until + next.offset);
    if (after.status != status) return Change{absl::FromUnixSeconds(until), after};
    local_from = until + next.offset;
    seg = next;
  }
}

std::string FormatLocalTime(absl::Time t, const absl::TimeZone& tz) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", t, tz);
}

}  // namespace sb::schedule
