// Working-hour schedule costs on one thread, for a cached CompiledSchedule of a realistic office:
// Europe/Budapest, two ranges each weekday (08:00-12:00, 12:30-17:00), and ten holidays (eight
// every_year, two one-off). Instants are 1M random seconds spread over 2024 (both DST changes
// included), visited in random order so that neither the branch predictor nor the caches see a
// friendlier pattern than a router evaluating calls would.
//
//   schedule_bench [--seconds=2]
//
// Prints operations per CPU second of one thread (the rate of one core, whatever else runs on the
// machine) and nanoseconds per operation for IsOpen, IsOpen over the same instants in time order,
// NextChange, and Compile.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "libs/schedule/compiled_schedule.h"
#include "tests/support/bench_timing.h"

namespace {

namespace v1 = ::switchboard::org::v1;
using sb::schedule::CompiledSchedule;
using sb::testing::DoNotOptimize;
using sb::testing::OpsPerSecond;

struct Result {
  std::string operation;
  double ops_per_second = 0;
  std::string note;
};

// IsOpen takes nanoseconds: read the clock once per 4096 calls.
constexpr int kBatch = 4096;

void SetTime(switchboard::common::v1::TimeOfDay* t, int hours, int minutes) {
  t->set_hours(hours);
  t->set_minutes(minutes);
}

v1::Schedule Office() {
  v1::Schedule s;
  s.set_name("Budapest office");
  s.set_time_zone("Europe/Budapest");
  for (int day = v1::DAY_OF_WEEK_MONDAY; day <= v1::DAY_OF_WEEK_FRIDAY; ++day) {
    for (auto [sh, sm, eh, em] : {std::array{8, 0, 12, 0}, std::array{12, 30, 17, 0}}) {
      v1::WeeklyRange* r = s.add_weekly_ranges();
      r->set_day(static_cast<v1::DayOfWeek>(day));
      SetTime(r->mutable_start(), sh, sm);
      SetTime(r->mutable_end(), eh, em);
    }
  }
  struct Holiday {
    int year, month, day;
    const char* name;
    bool every_year;
  };
  for (const Holiday& h : std::vector<Holiday>{{2000, 1, 1, "New Year's Day", true},
                                               {2000, 3, 15, "National Day", true},
                                               {2024, 3, 29, "Good Friday", false},
                                               {2024, 4, 1, "Easter Monday", false},
                                               {2000, 5, 1, "Labour Day", true},
                                               {2000, 8, 20, "State Foundation Day", true},
                                               {2000, 10, 23, "Republic Day", true},
                                               {2000, 11, 1, "All Saints' Day", true},
                                               {2000, 12, 25, "Christmas Day", true},
                                               {2000, 12, 26, "Boxing Day", true}}) {
    v1::ScheduleException* e = s.add_exceptions();
    e->mutable_date()->set_year(h.year);
    e->mutable_date()->set_month(h.month);
    e->mutable_date()->set_day(h.day);
    e->set_type(v1::ScheduleException::TYPE_HOLIDAY);
    e->set_name(h.name);
    e->set_every_year(h.every_year);
  }
  return s;
}

CompiledSchedule MustCompile(const v1::Schedule& s) {
  absl::StatusOr<CompiledSchedule> c = CompiledSchedule::Compile(s);
  if (!c.ok()) {
    std::fprintf(stderr, "compile failed: %s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(c);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.substr(0, 10) == "--seconds=" &&
        absl::SimpleAtod(std::string(arg.substr(10)), &seconds) && seconds > 0) {
      continue;
    }
    std::fprintf(stderr, "usage: schedule_bench [--seconds=2]\n");
    return 2;
  }

  const v1::Schedule proto = Office();
  const CompiledSchedule schedule = MustCompile(proto);

  // 2024-01-01T00:00:00Z .. 2025-01-01T00:00:00Z.
  constexpr int64_t kFrom = 1704067200;
  constexpr int64_t kUntil = 1735689600;
  constexpr size_t kInstants = size_t{1} << 20;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> second(kFrom, kUntil - 1);
  std::vector<absl::Time> instants(kInstants);
  for (absl::Time& t : instants) t = absl::FromUnixSeconds(second(rng));
  std::vector<absl::Time> ordered = instants;
  std::sort(ordered.begin(), ordered.end());

  // How much of the year is open, as a sanity check of the work done.
  size_t open = 0;
  for (absl::Time t : instants) open += schedule.IsOpen(t).status == v1::SCHEDULE_STATUS_OPEN;

  // Each operation's result feeds its success check (and DoNotOptimize), so none is dropped.
  std::vector<Result> results;
  size_t i = 0;
  auto is_open = [&](const std::vector<absl::Time>& at) {
    return [&] {
      const CompiledSchedule::State s = schedule.IsOpen(at[i++ & (kInstants - 1)]);
      DoNotOptimize(s.exception_name.size());
      return s.status != v1::SCHEDULE_STATUS_UNSPECIFIED;
    };
  };
  results.push_back({"IsOpen (random instants in 2024)",
                     OpsPerSecond(seconds, is_open(instants), kBatch), "target 10M/s"});
  results.push_back({"IsOpen (same instants in time order)",
                     OpsPerSecond(seconds, is_open(ordered), kBatch), ""});
  results.push_back({"NextChange (random instants in 2024)",
                     OpsPerSecond(seconds,
                                  [&] {
                                    const auto next =
                                        schedule.NextChange(instants[i++ & (kInstants - 1)]);
                                    if (next) DoNotOptimize(next->at);
                                    return next.has_value();
                                  }),
                     ""});
  results.push_back(
      {"Compile", OpsPerSecond(seconds / 4, [&] { return CompiledSchedule::Compile(proto).ok(); }),
       "validation, tables, 1970-2100 offsets"});

  std::printf(
      "schedule_bench: Europe/Budapest, 10 weekly ranges, 10 holidays; %.1f%% of 2024 open\n",
      100.0 * static_cast<double>(open) / kInstants);
  std::printf("%-40s %16s %10s  %s\n", "operation (one thread)", "ops/s", "ns/op", "note");
  for (const Result& r : results) {
    std::printf("%-40s %16.0f %10.1f  %s\n", r.operation.c_str(), r.ops_per_second,
                1e9 / r.ops_per_second, r.note.c_str());
  }
  return 0;
}
