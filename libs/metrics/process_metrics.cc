#include "libs/metrics/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "libs/common/status_macros.h"

namespace sb::metrics {
namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<double> ParseNumber(std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

double TicksPerSecond() { return static_cast<double>(::sysconf(_SC_CLK_TCK)); }
double PageSize() { return static_cast<double>(::sysconf(_SC_PAGESIZE)); }

absl::StatusOr<ProcStat> ReadSelfStat() {
  std::optional<std::string> text = ReadFile("/proc/self/stat");
  if (!text) return absl::UnavailableError("cannot read /proc/self/stat");
  return ParseProcStat(*text, TicksPerSecond(), PageSize());
}

// Seconds since the epoch at which the system booted ("btime" in /proc/stat).
absl::StatusOr<double> ReadBootTime() {
  std::optional<std::string> text = ReadFile("/proc/stat");
  if (!text) return absl::UnavailableError("cannot read /proc/stat");
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("btime ", 0) == 0) {
      if (std::optional<double> btime = ParseNumber(line.substr(6))) return *btime;
    }
  }
  return absl::UnavailableError("no btime line in /proc/stat");
}

double OpenFds() {
  std::error_code ec;
  double count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++count;
  }
  return ec ? std::nan("") : count;
}

double MaxFds() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::nan("");
  if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<double>::infinity();
  return static_cast<double>(limit.rlim_cur);
}

// Reads one field of /proc/self/stat per scrape call; NaN when it cannot be read.
std::function<double()> StatField(double ProcStat::*field) {
  return [field] {
    absl::StatusOr<ProcStat> stat = ReadSelfStat();
    return stat.ok() ? (*stat).*field : std::nan("");
  };
}

}  // namespace

absl::StatusOr<ProcStat> ParseProcStat(std::string_view text, double ticks_per_second,
                                       double page_size) {
  const size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) {
    return absl::InvalidArgumentError("/proc stat text has no command name");
  }
  // Fields from 3 (state) on, separated by single spaces.
  std::vector<std::string_view> fields;
  std::string_view rest = text.substr(paren + 1);
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = std::min(rest.find_first_of(" \n"), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  // Field n of proc(5) (1-based) is fields[n - 3].
  const auto field = [&](size_t n) -> std::optional<double> {
    if (n - 3 >= fields.size()) return std::nullopt;
    return ParseNumber(fields[n - 3]);
  };
  const std::optional<double> utime = field(14), stime = field(15), threads = field(20),
                              start = field(22), vsize = field(23), rss = field(24);
  if (!utime || !stime || !threads || !start || !vsize || !rss) {
    return absl::InvalidArgumentError("/proc stat text has too few or non-numeric fields");
  }
  ProcStat stat;
  stat.cpu_seconds = (*utime + *stime) / ticks_per_second;
  stat.threads = *threads;
  stat.start_ticks = *start;
  stat.virtual_bytes = *vsize;
  stat.resident_bytes = *rss * page_size;
  return stat;
}

absl::Status RegisterProcessMetrics(Registry& registry) {
  SB_ASSIGN_OR_RETURN(const ProcStat stat, ReadSelfStat());
  SB_ASSIGN_OR_RETURN(const double boot_time, ReadBootTime());
  // The start time does not change: compute it once.
  const double start_time = boot_time + stat.start_ticks / TicksPerSecond();

  SB_RETURN_IF_ERROR(registry.AddCallbackCounter("process_cpu_seconds_total",
                                                 "Total user and system CPU time spent in seconds.",
                                                 StatField(&ProcStat::cpu_seconds)));
  SB_RETURN_IF_ERROR(registry.AddCallbackGauge("process_resident_memory_bytes",
                                               "Resident memory size in bytes.",
                                               StatField(&ProcStat::resident_bytes)));
  SB_RETURN_IF_ERROR(registry.AddCallbackGauge("process_virtual_memory_bytes",
                                               "Virtual memory size in bytes.",
                                               StatField(&ProcStat::virtual_bytes)));
  SB_RETURN_IF_ERROR(registry.AddCallbackGauge("process_threads", "Number of OS threads.",
                                               StatField(&ProcStat::threads)));
  SB_RETURN_IF_ERROR(
      registry.AddCallbackGauge("process_open_fds", "Number of open file descriptors.", &OpenFds));
  SB_RETURN_IF_ERROR(registry.AddCallbackGauge(
      "process_max_fds", "Maximum number of open file descriptors.", &MaxFds));
  SB_RETURN_IF_ERROR(registry.AddCallbackGauge(
      "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      [start_time] { return start_time; }));
  return absl::OkStatus();
}

absl::Status RegisterBuildInfo(Registry& registry, std::string_view version) {
  SB_ASSIGN_OR_RETURN(GaugeFamily * family,
                      registry.AddGauge("switchboard_build_info",
                                        "Switchboard build; the value is always 1.", {"version"}));
  std::string existing;
  family->AppendSamples(existing);
  if (!existing.empty()) {
    return absl::AlreadyExistsError("switchboard_build_info is already set in this registry");
  }
  family->WithLabels({version}).Set(1);
  return absl::OkStatus();
}

}  // namespace sb::metrics
