#include "libs/metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "libs/common/check.h"

namespace sb::metrics {

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  SB_CHECK(start > 0 && factor > 1 && count >= 1)
      << "ExponentialBuckets(" << start << ", " << factor << ", " << count << ")";
  std::vector<double> bounds;
  bounds.reserve(count);
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  SB_CHECK(width > 0 && count >= 1)
      << "LinearBuckets(" << start << ", " << width << ", " << count << ")";
  std::vector<double> bounds;
  bounds.reserve(count);
  // start + i * width rather than repeated addition, so that errors do not accumulate.
  for (int i = 0; i < count; ++i) bounds.push_back(start + i * width);
  return bounds;
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_->size() + 1)) {}

void Histogram::Observe(double value) {
  const std::vector<double>& bounds = *upper_bounds_;
  // lower_bound finds the first bound >= value, i.e. the bucket with le >= value. NaN compares
  // false with everything, so route it to +Inf explicitly.
  const size_t index =
      std::isnan(value)
          ? bounds.size()
          : static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                bounds.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot snapshot;
  snapshot.upper_bounds = *upper_bounds_;
  snapshot.cumulative_counts.resize(upper_bounds_->size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= upper_bounds_->size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = total;
  }
  snapshot.count = total;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

}  // namespace sb::metrics
