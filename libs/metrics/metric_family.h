#pragma once

// MetricFamily: what the Registry renders. A family is all time series of one metric name: its
// # HELP and # TYPE lines and its samples. Implemented by Family<T> (counters, gauges and
// histograms updated by code) and by the callback families behind Registry::AddCallbackGauge and
// AddCallbackCounter. Code that records metrics uses Family<T>; it never needs this interface.
//
// Thread-safety: implementations are thread-safe.

#include <string>
#include <utility>
#include <vector>

namespace sb::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter", "gauge", "histogram": the word on a # TYPE line.
const char* MetricTypeName(MetricType type);

class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}
  virtual ~MetricFamily() = default;
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends the family's sample lines (not # HELP / # TYPE) in exposition format, children in a
  // deterministic order. Appends nothing when the family has no time series yet.
  virtual void AppendSamples(std::string& out) const = 0;

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

}  // namespace sb::metrics
