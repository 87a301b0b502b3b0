#pragma once

// Registry: the metric families of one process, rendered in the Prometheus text exposition format
// 0.0.4 for GET /metrics. The process wiring owns one Registry and passes it by reference to what
// records metrics; there is no global registry.
//
//   Registry registry;
//   SB_ASSIGN_OR_RETURN(CounterFamily* calls,
//                       registry.AddCounter("sb_calls_total", "Calls offered.", {"trunk"}));
//   calls->WithLabels({"carrier-a"}).Inc();
//   std::string text = registry.Render();
//
// Naming (checked; breaking a rule is InvalidArgument): metric names match
// [a-zA-Z_:][a-zA-Z0-9_:]*; label names match [a-zA-Z_][a-zA-Z0-9_]*, do not start with "__" and
// appear once per family; counter names end in "_total" (the name is used as is, nothing is
// appended); histograms cannot use the label "le"; help is non-empty UTF-8. Use base units
// (seconds, bytes) and say them in the name (`sb_rtp_jitter_seconds`).
//
// Registering a name again with the same type, help, label names (and buckets) returns the family
// already registered, so two modules may declare a metric they share. Any difference is
// AlreadyExists, as is a name whose samples would collide with another family's (a histogram `x`
// writes x_bucket, x_sum and x_count, so a gauge `x_count` cannot coexist with it).
//
// Thread-safety: thread-safe. Registration takes a lock; Render() takes it only to list the
// families, so callbacks it runs may themselves use the registry.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/metrics/family.h"
#include "libs/metrics/metric_family.h"

namespace sb::metrics {

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each returns the family (never null), valid for the registry's lifetime, or InvalidArgument
  // (a naming rule above is broken) or AlreadyExists (the name is taken by a different
  // definition). A family without labels has its one child from the start, so it renders 0 before
  // its first update; a family with labels renders nothing until WithLabels creates a child.
  absl::StatusOr<CounterFamily*> AddCounter(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names = {});
  // `upper_bounds` are the buckets' finite upper bounds, strictly increasing (e.g.
  // DefaultBuckets()); the +Inf bucket is always added (a trailing +Inf in the list is accepted
  // and dropped). NaN, -Inf or bounds out of order are InvalidArgument.
  absl::StatusOr<HistogramFamily*> AddHistogram(std::string_view name, std::string_view help,
                                                std::vector<double> upper_bounds,
                                                std::vector<std::string> label_names = {});

  // A gauge (or counter) without labels whose value is `read()` at each Render(). `read` runs on
  // the rendering thread (the HTTP server's), concurrently with anything else; it must be
  // thread-safe, quick, and valid for as long as the registry can be rendered (stop the HTTP
  // server before destroying what it reads). A callback family cannot be registered twice:
  // a second registration of the name is AlreadyExists. Otherwise as AddGauge/AddCounter.
  absl::Status AddCallbackGauge(std::string_view name, std::string_view help,
                                std::function<double()> read);
  absl::Status AddCallbackCounter(std::string_view name, std::string_view help,
                                  std::function<double()> read);

  // The text exposition format 0.0.4 (content type kTextFormatContentType): for each family that
  // has samples, sorted by name, `# HELP`, `# TYPE` and its samples sorted by label values.
  std::string Render() const;

 private:
  // Distinguishes callback families from Family<T> of the same MetricType.
  enum class Kind { kCounter, kGauge, kHistogram, kCallbackCounter, kCallbackGauge };
  struct Entry {
    Kind kind;
    std::vector<double> upper_bounds;  // histograms only
    std::unique_ptr<MetricFamily> family;
  };

  static MetricType TypeOf(Kind kind);
  static bool IsCallback(Kind kind);

  // Validates the definition; returns the existing family when the same definition is already
  // registered, otherwise registers make() and returns it.
  absl::StatusOr<MetricFamily*> Add(Kind kind, std::string_view name, std::string_view help,
                                    const std::vector<std::string>& label_names,
                                    const std::vector<double>& upper_bounds,
                                    const std::function<std::unique_ptr<MetricFamily>()>& make);
  absl::Status AddCallback(Kind kind, std::string_view name, std::string_view help,
                           std::function<double()> read);

  mutable absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sb::metrics
