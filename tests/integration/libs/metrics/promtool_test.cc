// Renders a registry with every kind of metric and has Prometheus' own promtool parse and lint it.

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>

#include "absl/time/time.h"
#include "libs/metrics/histogram.h"
#include "libs/metrics/process_metrics.h"
#include "libs/metrics/registry.h"
#include "libs/testing/child_process.h"

namespace sb::metrics {
namespace {

// Runs `promtool check metrics` with `text` on stdin; returns its exit code and combined output.
// testing::RunCommand is meant for exactly this, but its shell wrapper currently loses the
// command's first word (it runs `shift 2` where only "$1" is to be shifted), so this runs the
// same wrapper correctly until that is fixed.
testing::CommandResult CheckMetrics(const std::string& text) {
  testing::TempDir dir;
  const std::string in_path = dir.path() + "/metrics.txt";
  const std::string out_path = dir.path() + "/out";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << text;
    REQUIRE(in.good());
  }
  absl::StatusOr<testing::ChildProcess> child = testing::ChildProcess::Start(
      {.argv = {"/bin/sh", "-c", "exec promtool check metrics <\"$0\" >\"$1\" 2>&1", in_path,
                out_path}});
  REQUIRE(child.ok());
  absl::StatusOr<int> exit_code = child->Wait(absl::Minutes(2));
  REQUIRE(exit_code.ok());
  std::ifstream out(out_path, std::ios::binary);
  return {*exit_code, std::string(std::istreambuf_iterator<char>(out), {})};
}

TEST_CASE("promtool accepts every metric type without lint problems", "[metrics]") {
  Registry registry;
  CounterFamily* requests =
      registry.AddCounter("sb_http_requests_total", "HTTP requests served.", {"method", "code"})
          .value();
  requests->WithLabels({"GET", "200"}).Inc(41);
  requests->WithLabels({"POST", "503"}).Inc(0.5);
  REQUIRE(registry.AddCounter("sb_calls_rejected_total", "Calls rejected.").ok());

  GaugeFamily* calls = registry.AddGauge("sb_calls_in_progress", "Calls in progress.").value();
  calls->WithLabels({}).Set(12);
  GaugeFamily* trunks =
      registry
          .AddGauge("sb_trunk_up", "Whether a trunk answers OPTIONS.\nOne per \\ trunk.", {"trunk"})
          .value();
  trunks->WithLabels({"carrier \"a\"\nline two \\ end"}).Set(1);
  trunks->WithLabels({"carrier\xff"}).Set(0);
  GaugeFamily* extremes = registry.AddGauge("sb_test_extremes", "Odd values.", {"kind"}).value();
  extremes->WithLabels({"inf"}).Set(std::numeric_limits<double>::infinity());
  extremes->WithLabels({"minus_inf"}).Set(-std::numeric_limits<double>::infinity());
  extremes->WithLabels({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  extremes->WithLabels({"tiny"}).Set(5e-324);
  extremes->WithLabels({"huge"}).Set(1.7976931348623157e308);
  REQUIRE(
      registry.AddCallbackGauge("sb_queue_callers", "Callers waiting.", [] { return 3.0; }).ok());
  REQUIRE(registry.AddCallbackCounter("sb_events_seen_total", "Events.", [] { return 9.0; }).ok());

  HistogramFamily* durations =
      registry.AddHistogram("sb_rpc_duration_seconds", "RPC latency.", DefaultBuckets(), {"method"})
          .value();
  for (const double v : {0.001, 0.02, 0.3, 4.0, 50.0}) {
    durations->WithLabels({"GetTeam"}).Observe(v);
  }
  durations->WithLabels({"ListTeams"}).Observe(0.1);
  REQUIRE(
      registry
          .AddHistogram("sb_message_size_bytes", "SIP message sizes.", ExponentialBuckets(64, 4, 5))
          .ok());

  REQUIRE(RegisterProcessMetrics(registry).ok());
  REQUIRE(RegisterBuildInfo(registry, "0.1.0-test").ok());

  const std::string text = registry.Render();
  INFO(text);
  const testing::CommandResult result = CheckMetrics(text);
  CHECK(result.output == "");
  CHECK(result.exit_code == 0);
}

TEST_CASE("promtool check metrics does flag bad exposition text", "[metrics]") {
  // Shows that the test above can fail: the same harness on text that breaks the rules.
  const testing::CommandResult lint = CheckMetrics("# TYPE calls counter\ncalls 1\n");
  CHECK(lint.exit_code != 0);
  CHECK(lint.output.find("_total") != std::string::npos);

  const testing::CommandResult parse =
      CheckMetrics("# HELP g G.\n# TYPE g gauge\ng{a=\"\\x\"} 1\n");
  CHECK(parse.exit_code != 0);
  CHECK(parse.output.find("parsing error") != std::string::npos);
}

}  // namespace
}  // namespace sb::metrics
