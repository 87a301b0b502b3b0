#pragma once

// Family<T>: the time series of one metric name, one child T (Counter, Gauge or Histogram) per
// combination of label values. Created by Registry::AddCounter/AddGauge/AddHistogram, which own it;
// the pointer they return stays valid for the registry's lifetime.
//
//   SB_ASSIGN_OR_RETURN(CounterFamily* requests,
//                       registry.AddCounter("sb_http_requests_total", "HTTP requests served.",
//                                           {"method", "code"}));
//   Counter& ok_gets = requests->WithLabels({"GET", "200"});  // keep it for the hot path
//   ok_gets.Inc();
//
// Thread-safety: thread-safe. WithLabels() takes a reader lock to find an existing child and a
// writer lock to create one; code on a hot path keeps the returned reference, whose own methods
// are lock-free. Children are never removed.

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "libs/metrics/counter.h"
#include "libs/metrics/gauge.h"
#include "libs/metrics/histogram.h"
#include "libs/metrics/metric_family.h"

namespace sb::metrics {

namespace internal {

// Orders label-value lists lexicographically and compares stored keys with lookup spans without
// copying them into strings.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

}  // namespace internal

template <typename T>
class Family final : public MetricFamily {
 public:
  // Used by Registry; `new_child` makes a child for a new combination of label values.
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> new_child);

  // Returns the child for `values`, one per label name in the order the family was registered
  // with, creating it on first use. The reference stays valid for the registry's lifetime.
  // Passing the wrong number of values is a programming error (SB_CHECK). Values that are not
  // valid UTF-8 have their bad bytes replaced by U+FFFD.
  T& WithLabels(absl::Span<const std::string_view> values);

  void AppendSamples(std::string& out) const override;

 private:
  const std::function<std::unique_ptr<T>()> new_child_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>, internal::LabelValuesLess> children_
      ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Defined in family.cc for these three types only.
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

}  // namespace sb::metrics
