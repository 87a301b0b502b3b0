#pragma once

// Histogram: counts observations (request durations in seconds, message sizes in bytes) into
// buckets with fixed upper bounds, plus their sum and count. Rendered as Prometheus' cumulative
// `_bucket{le="..."}` series (the last one le="+Inf"), `_sum` and `_count`. One Histogram is one
// time series set: a child of a HistogramFamily, obtained with Registry::AddHistogram(...) and then
// family.WithLabels({...}).
//
// Thread-safety: all methods are thread-safe; Observe() is lock-free. A Snapshot() taken while
// other threads observe is consistent between buckets and count (count is the bucket total), but
// its sum may lag or lead by the observations in flight.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sb::metrics {

// Upper bounds 0.005 s .. 10 s: Prometheus' default buckets, for request latencies in seconds.
std::vector<double> DefaultBuckets();
// `count` bounds start, start*factor, start*factor^2, ...; start > 0, factor > 1, count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// `count` bounds start, start+width, start+2*width, ...; width > 0, count >= 1.
std::vector<double> LinearBuckets(double start, double width, int count);

struct HistogramSnapshot {
  std::vector<double> upper_bounds;         // finite bounds, increasing; +Inf is implied
  std::vector<uint64_t> cumulative_counts;  // upper_bounds.size() + 1 entries, last one is +Inf
  uint64_t count = 0;                       // == cumulative_counts.back()
  double sum = 0.0;
};

class Histogram {
 public:
  // `upper_bounds` must be strictly increasing and hold no NaN or +Inf (the registry validates
  // them); it is shared by all children of a family.
  explicit Histogram(std::shared_ptr<const std::vector<double>> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `value` in the first bucket whose upper bound is >= value (NaN lands in +Inf only, and
  // makes the sum NaN, as in Prometheus' own clients).
  void Observe(double value);

  HistogramSnapshot Snapshot() const;

 private:
  std::shared_ptr<const std::vector<double>> upper_bounds_;
  // Per-bucket (not cumulative) counts; the last entry is the +Inf bucket.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace sb::metrics
