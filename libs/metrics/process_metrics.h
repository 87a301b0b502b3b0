#pragma once

// The standard process metrics every Prometheus client exports, read from /proc at scrape time,
// and the build-info gauge. Called once by the process wiring with its Registry.
//
// Thread-safety: the registration functions are as thread-safe as Registry; the metrics they add
// may be rendered from any thread.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/metrics/registry.h"

namespace sb::metrics {

// Adds process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds and process_threads, each read
// from /proc/self (and getrlimit) when the registry is rendered; a value that cannot be read at
// that moment renders as NaN.
// Returns Unavailable when /proc/self/stat cannot be read now (not Linux, /proc not mounted), or
// AlreadyExists when these metrics are already in `registry`.
absl::Status RegisterProcessMetrics(Registry& registry);

// Adds the gauge switchboard_build_info{version="<version>"} 1, to join other series on.
// Call once per registry: a second call is AlreadyExists, whatever the version.
absl::Status RegisterBuildInfo(Registry& registry, std::string_view version);

// The fields of /proc/<pid>/stat that the process metrics use, in base units.
struct ProcStat {
  double cpu_seconds = 0;     // utime + stime
  double threads = 0;         // num_threads
  double start_ticks = 0;     // starttime, clock ticks after boot
  double virtual_bytes = 0;   // vsize
  double resident_bytes = 0;  // rss pages * page size
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold spaces and ')', so
// fields are counted from the last ')'. `ticks_per_second` and `page_size` come from sysconf.
// Returns InvalidArgument when the text is not in that format.
absl::StatusOr<ProcStat> ParseProcStat(std::string_view text, double ticks_per_second,
                                       double page_size);

}  // namespace sb::metrics
