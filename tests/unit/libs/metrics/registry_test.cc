#include "libs/metrics/registry.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "libs/metrics/family.h"
#include "libs/metrics/histogram.h"
#include "libs/metrics/text_format.h"

namespace sb::metrics {
namespace {

// Runs `fn` in a forked child and reports whether it aborted (SB_CHECK's way of failing). Catch2
// v2 has no death tests; call only while the test process is single-threaded.
bool Aborts(const std::function<void()>& fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Keep SB_CHECK's message and Catch2's own SIGABRT report out of the test log.
    std::signal(SIGABRT, SIG_DFL);
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    fn();
    std::_Exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

TEST_CASE("Registry renders counters, gauges and histograms in the text format", "[metrics]") {
  Registry registry;
  CounterFamily* requests =
      registry.AddCounter("http_requests_total", "HTTP requests served.", {"method", "code"})
          .value();
  requests->WithLabels({"POST", "500"}).Inc();
  requests->WithLabels({"GET", "200"}).Inc(3);
  requests->WithLabels({"GET", "404"}).Inc(0.5);

  GaugeFamily* temperature =
      registry.AddGauge("room_temperature_celsius", "Temperature.\nIn \\degrees\\ \"C\".").value();
  temperature->WithLabels({}).Set(-1.5);

  HistogramFamily* latency =
      registry.AddHistogram("request_duration_seconds", "Request latency.", {0.25, 0.5, 1}).value();
  Histogram& histogram = latency->WithLabels({});
  for (const double value : {0.125, 0.25, 0.375, 2.0}) histogram.Observe(value);

  GaugeFamily* paths = registry.AddGauge("weird_label_values", "Escaping.", {"path"}).value();
  paths->WithLabels({"C:\\dir \"quoted\"\nnext"}).Set(std::numeric_limits<double>::infinity());

  // Registered but never given a child: left out. Unlabelled and never touched: rendered as 0.
  REQUIRE(registry.AddCounter("unused_total", "Never used.", {"kind"}).ok());
  REQUIRE(registry.AddCounter("idle_total", "Never incremented.").ok());

  CHECK(registry.Render() ==
        "# HELP http_requests_total HTTP requests served.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{method=\"GET\",code=\"200\"} 3\n"
        "http_requests_total{method=\"GET\",code=\"404\"} 0.5\n"
        "http_requests_total{method=\"POST\",code=\"500\"} 1\n"
        "# HELP idle_total Never incremented.\n"
        "# TYPE idle_total counter\n"
        "idle_total 0\n"
        "# HELP request_duration_seconds Request latency.\n"
        "# TYPE request_duration_seconds histogram\n"
        "request_duration_seconds_bucket{le=\"0.25\"} 2\n"
        "request_duration_seconds_bucket{le=\"0.5\"} 3\n"
        "request_duration_seconds_bucket{le=\"1\"} 3\n"
        "request_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "request_duration_seconds_sum 2.75\n"
        "request_duration_seconds_count 4\n"
        "# HELP room_temperature_celsius Temperature.\\nIn \\\\degrees\\\\ \"C\".\n"
        "# TYPE room_temperature_celsius gauge\n"
        "room_temperature_celsius -1.5\n"
        "# HELP weird_label_values Escaping.\n"
        "# TYPE weird_label_values gauge\n"
        "weird_label_values{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} +Inf\n");
}

TEST_CASE("Histogram buckets take labels before le and count NaN only in +Inf", "[metrics]") {
  Registry registry;
  HistogramFamily* sizes =
      registry.AddHistogram("message_size_bytes", "Sizes.", {100, 1000}, {"kind"}).value();
  Histogram& invite = sizes->WithLabels({"invite"});
  invite.Observe(100);   // le is inclusive
  invite.Observe(1001);  // above the last bound: +Inf only
  invite.Observe(std::nan(""));
  CHECK(registry.Render() ==
        "# HELP message_size_bytes Sizes.\n"
        "# TYPE message_size_bytes histogram\n"
        "message_size_bytes_bucket{kind=\"invite\",le=\"100\"} 1\n"
        "message_size_bytes_bucket{kind=\"invite\",le=\"1000\"} 1\n"
        "message_size_bytes_bucket{kind=\"invite\",le=\"+Inf\"} 3\n"
        "message_size_bytes_sum{kind=\"invite\"} NaN\n"
        "message_size_bytes_count{kind=\"invite\"} 3\n");
}

TEST_CASE("FormatValue writes numbers that parse back to the same double", "[metrics]") {
  CHECK(FormatValue(0) == "0");
  CHECK(FormatValue(3) == "3");
  CHECK(FormatValue(0.1) == "0.1");
  CHECK(FormatValue(-2.5) == "-2.5");
  CHECK(FormatValue(1e21) == "1e+21");
  CHECK(FormatValue(123456789) == "123456789");
  CHECK(FormatValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(FormatValue(std::nan("")) == "NaN");
  for (const double value : {0.1 + 0.2, 1.0 / 3, 5e-324, 1.7976931348623157e308, 2.0 / 7 * 1e-9,
                             1234567.891, -9.87654321e-5}) {
    const std::string text = FormatValue(value);
    INFO(text);
    CHECK(std::strtod(text.c_str(), nullptr) == value);
  }
}

TEST_CASE("Label values that are not UTF-8 are rendered with U+FFFD", "[metrics]") {
  Registry registry;
  GaugeFamily* family = registry.AddGauge("trunk_up", "Trunk state.", {"trunk"}).value();
  Gauge& bad = family->WithLabels({"carrier\xff"});
  bad.Set(1);
  // The same bad value finds the same child.
  CHECK(&family->WithLabels({"carrier\xff"}) == &bad);
  CHECK(registry.Render() ==
        "# HELP trunk_up Trunk state.\n"
        "# TYPE trunk_up gauge\n"
        "trunk_up{trunk=\"carrier\xEF\xBF\xBD\"} 1\n");
  CHECK(IsValidUtf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x93\x9E"));
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
}

TEST_CASE("WithLabels returns the same child for the same values", "[metrics]") {
  Registry registry;
  CounterFamily* family = registry.AddCounter("calls_total", "Calls.", {"trunk"}).value();
  Counter& a = family->WithLabels({"a"});
  const std::string b_name = "b";
  Counter& b = family->WithLabels({b_name});
  CHECK(&a != &b);
  CHECK(&family->WithLabels({"a"}) == &a);
  CHECK(&family->WithLabels({std::string_view(b_name)}) == &b);
}

TEST_CASE("Wrong label count and negative increments abort", "[metrics]") {
  Registry registry;
  CounterFamily* family = registry.AddCounter("calls_total", "Calls.", {"trunk"}).value();
  CHECK(Aborts([&] { family->WithLabels({"a", "b"}); }));
  CHECK(Aborts([&] { family->WithLabels({}); }));
  CHECK(Aborts([&] { family->WithLabels({"a"}).Inc(-1); }));
  CHECK_FALSE(Aborts([&] { family->WithLabels({"a"}).Inc(0); }));
}

TEST_CASE("Concurrent updates from several threads all count", "[metrics]") {
  Registry registry;
  CounterFamily* counters = registry.AddCounter("work_total", "Work.", {"kind"}).value();
  GaugeFamily* gauges = registry.AddGauge("in_flight", "In flight.").value();
  HistogramFamily* histograms =
      registry.AddHistogram("work_seconds", "Durations.", {0.5, 1.5}).value();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      // Every thread looks the child up itself, so creation races too.
      Counter& counter = counters->WithLabels({"shared"});
      Gauge& gauge = gauges->WithLabels({});
      Histogram& histogram = histograms->WithLabels({});
      for (int i = 0; i < kPerThread; ++i) {
        counter.Inc();
        counter.Inc(0.5);
        gauge.Inc(2);
        gauge.Dec();
        histogram.Observe(1);
      }
    });
  }
  // Scrapes while the workers run must not disturb them.
  // (Catch2's assertions are not thread-safe: the scraper only counts.)
  int nonempty_scrapes = 0;
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) nonempty_scrapes += registry.Render().empty() ? 0 : 1;
  });
  for (std::thread& thread : threads) thread.join();
  scraper.join();
  CHECK(nonempty_scrapes == 50);

  const double n = static_cast<double>(kThreads) * kPerThread;
  CHECK(counters->WithLabels({"shared"}).Value() == n * 1.5);
  CHECK(gauges->WithLabels({}).Value() == n);
  const HistogramSnapshot snapshot = histograms->WithLabels({}).Snapshot();
  CHECK(snapshot.count == static_cast<uint64_t>(n));
  CHECK(snapshot.sum == n);
  CHECK(snapshot.cumulative_counts ==
        std::vector<uint64_t>{0, static_cast<uint64_t>(n), static_cast<uint64_t>(n)});
}

TEST_CASE("Callback gauges are read at render time", "[metrics]") {
  Registry registry;
  double queue_length = 3;
  REQUIRE(
      registry.AddCallbackGauge("queue_length", "Callers waiting.", [&] { return queue_length; })
          .ok());
  CHECK(registry.Render() ==
        "# HELP queue_length Callers waiting.\n# TYPE queue_length gauge\nqueue_length 3\n");
  queue_length = 7;
  CHECK(registry.Render() ==
        "# HELP queue_length Callers waiting.\n# TYPE queue_length gauge\nqueue_length 7\n");
  // Callbacks cannot be re-registered, and the name is taken for other types too.
  CHECK(registry.AddCallbackGauge("queue_length", "Callers waiting.", [] { return 0.0; }).code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK(registry.AddGauge("queue_length", "Callers waiting.").status().code() ==
        absl::StatusCode::kAlreadyExists);
}

TEST_CASE("Metric and label names are checked against Prometheus' rules", "[metrics]") {
  Registry registry;
  const auto code = [](const absl::Status& status) { return status.code(); };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

  CHECK(IsValidMetricName("sb_calls:rate5m"));
  CHECK(IsValidMetricName("_x9"));
  CHECK_FALSE(IsValidMetricName(""));
  CHECK_FALSE(IsValidMetricName("9lives"));
  CHECK_FALSE(IsValidMetricName("calls-total"));
  CHECK_FALSE(IsValidMetricName("caf\xC3\xA9"));
  CHECK(IsValidLabelName("method"));
  CHECK(IsValidLabelName("_private"));
  CHECK_FALSE(IsValidLabelName("__name__"));
  CHECK_FALSE(IsValidLabelName("a:b"));
  CHECK_FALSE(IsValidLabelName("2xx"));

  CHECK(code(registry.AddGauge("bad-name", "Help.").status()) == kInvalid);
  CHECK(code(registry.AddGauge("", "Help.").status()) == kInvalid);
  CHECK(code(registry.AddGauge("ok_gauge", "Help.", {"bad-label"}).status()) == kInvalid);
  CHECK(code(registry.AddGauge("ok_gauge", "Help.", {"__reserved"}).status()) == kInvalid);
  CHECK(code(registry.AddGauge("ok_gauge", "Help.", {"a", "a"}).status()) == kInvalid);
  CHECK(code(registry.AddGauge("ok_gauge", "").status()) == kInvalid);
  CHECK(code(registry.AddGauge("ok_gauge", "bad \xff help").status()) == kInvalid);
  CHECK(code(registry.AddCounter("calls", "Calls.").status()) == kInvalid);
  CHECK(code(registry.AddCounter("_total", "Calls.").status()) == kInvalid);
  CHECK(code(registry.AddCallbackCounter("cpu_seconds", "CPU.", [] { return 0.0; })) == kInvalid);
  CHECK(code(registry.AddHistogram("h_seconds", "H.", {1}, {"le"}).status()) == kInvalid);
  CHECK(code(registry.AddHistogram("h_seconds", "H.", {1, 1}).status()) == kInvalid);
  CHECK(code(registry.AddHistogram("h_seconds", "H.", {2, 1}).status()) == kInvalid);
  CHECK(code(registry.AddHistogram("h_seconds", "H.", {std::nan("")}).status()) == kInvalid);
  CHECK(code(registry.AddHistogram("h_seconds", "H.", {-std::numeric_limits<double>::infinity()})
                 .status()) == kInvalid);
  // Nothing invalid was registered.
  CHECK(registry.Render().empty());

  // A trailing +Inf is the implied bucket: accepted and not doubled.
  HistogramFamily* h =
      registry.AddHistogram("h_seconds", "H.", {1, std::numeric_limits<double>::infinity()})
          .value();
  CHECK(h->WithLabels({}).Snapshot().cumulative_counts.size() == 2);
}

TEST_CASE("Registering a name again returns the family or AlreadyExists", "[metrics]") {
  Registry registry;
  constexpr auto kExists = absl::StatusCode::kAlreadyExists;
  CounterFamily* calls = registry.AddCounter("calls_total", "Calls.", {"trunk"}).value();
  CHECK(registry.AddCounter("calls_total", "Calls.", {"trunk"}).value() == calls);
  CHECK(registry.AddCounter("calls_total", "Calls.", {"project"}).status().code() == kExists);
  CHECK(registry.AddCounter("calls_total", "Calls.").status().code() == kExists);
  CHECK(registry.AddCounter("calls_total", "Other help.", {"trunk"}).status().code() == kExists);
  CHECK(registry.AddGauge("calls_total", "Calls.", {"trunk"}).status().code() == kExists);

  HistogramFamily* h = registry.AddHistogram("wait_seconds", "Wait.", {1, 2}).value();
  CHECK(registry.AddHistogram("wait_seconds", "Wait.", {1, 2}).value() == h);
  CHECK(registry.AddHistogram("wait_seconds", "Wait.", {1, 3}).status().code() == kExists);

  // Sample names collide across families: wait_seconds writes wait_seconds_count.
  CHECK(registry.AddGauge("wait_seconds_count", "Count.").status().code() == kExists);
  REQUIRE(registry.AddGauge("ring_seconds_sum", "Sum.").ok());
  CHECK(registry.AddHistogram("ring_seconds", "Ring.", {1}).status().code() == kExists);
}

TEST_CASE("Bucket helpers build the documented bounds", "[metrics]") {
  CHECK(DefaultBuckets().size() == 11);
  CHECK(ExponentialBuckets(0.001, 10, 4) ==
        std::vector<double>{0.001, 0.001 * 10, 0.001 * 10 * 10, 0.001 * 10 * 10 * 10});
  CHECK(LinearBuckets(1, 0.5, 3) == std::vector<double>{1, 1.5, 2});
}

}  // namespace
}  // namespace sb::metrics
