#include "libs/metrics/process_metrics.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "libs/metrics/registry.h"

namespace sb::metrics {
namespace {

// The value of the unlabelled sample `name` in exposition text, if present.
std::optional<double> SampleValue(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::strtod(line.c_str() + name.size() + 1, nullptr);
  }
  return std::nullopt;
}

TEST_CASE("Process metrics are read from /proc when rendered", "[metrics]") {
  Registry registry;
  REQUIRE(RegisterProcessMetrics(registry).ok());
  const std::string text = registry.Render();
  INFO(text);

  const auto value = [&](const std::string& name) {
    const std::optional<double> v = SampleValue(text, name);
    REQUIRE(v.has_value());
    return *v;
  };
  CHECK(value("process_cpu_seconds_total") >= 0);
  CHECK(value("process_resident_memory_bytes") > 0);
  CHECK(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
  CHECK(value("process_open_fds") >= 3);  // stdin, stdout, stderr at least
  CHECK(value("process_max_fds") >= value("process_open_fds"));
  CHECK(value("process_threads") >= 1);
  const double start = value("process_start_time_seconds");
  CHECK(start > 1.5e9);  // after 2017
  CHECK(start <= static_cast<double>(std::time(nullptr)) + 1);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  CHECK(text.find("# TYPE process_open_fds gauge\n") != std::string::npos);

  CHECK(RegisterProcessMetrics(registry).code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("ParseProcStat counts fields after the last parenthesis", "[metrics]") {
  // A command name with spaces and ')' must not shift the fields.
  const std::string stat =
      "4242 (evil) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 "
      "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  const absl::StatusOr<ProcStat> parsed = ParseProcStat(stat, 100, 4096);
  REQUIRE(parsed.ok());
  CHECK(parsed->cpu_seconds == 3.0);  // (250 + 50) / 100
  CHECK(parsed->threads == 7);
  CHECK(parsed->start_ticks == 12345);
  CHECK(parsed->virtual_bytes == 104857600);
  CHECK(parsed->resident_bytes == 2560.0 * 4096);

  CHECK(ParseProcStat("garbage", 100, 4096).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ParseProcStat("1 (x) S 1 2 3", 100, 4096).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Build info is a gauge of 1 labelled with the version", "[metrics]") {
  Registry registry;
  REQUIRE(RegisterBuildInfo(registry, "1.2.3").ok());
  CHECK(registry.Render() ==
        "# HELP switchboard_build_info Switchboard build; the value is always 1.\n"
        "# TYPE switchboard_build_info gauge\n"
        "switchboard_build_info{version=\"1.2.3\"} 1\n");
  CHECK(RegisterBuildInfo(registry, "2.0.0").code() == absl::StatusCode::kAlreadyExists);
  CHECK(registry.Render().find("2.0.0") == std::string::npos);
}

}  // namespace
}  // namespace sb::metrics
