#pragma once

// Counter: a monotonically increasing value (requests served, calls answered). One Counter is one
// time series: a child of a CounterFamily for one set of label values, obtained with
// Registry::AddCounter(...) and then family.WithLabels({...}).
//
// Thread-safety: all methods are thread-safe and lock-free; Inc() is meant for hot paths.

#include <atomic>

#include "libs/common/check.h"

namespace sb::metrics {

class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `amount`, which must be >= 0 (a negative or NaN amount is a programming error and aborts
  // through SB_CHECK: counters only go up).
  void Inc(double amount = 1.0) {
    SB_CHECK(amount >= 0.0) << "Counter::Inc(" << amount << "): counters only go up";
    value_.fetch_add(amount, std::memory_order_relaxed);
  }

  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

}  // namespace sb::metrics
