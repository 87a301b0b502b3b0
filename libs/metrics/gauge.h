#pragma once

// Gauge: a value that goes up and down (calls in progress, queue length, pool size). One Gauge is
// one time series: a child of a GaugeFamily for one set of label values, obtained with
// Registry::AddGauge(...) and then family.WithLabels({...}). For a value that is cheaper to read
// when scraped than to keep up to date, see Registry::AddCallbackGauge.
//
// Thread-safety: all methods are thread-safe and lock-free.

#include <atomic>

namespace sb::metrics {

class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Dec(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }

  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

}  // namespace sb::metrics
