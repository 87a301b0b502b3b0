#pragma once

// BoundedExecutor: a fixed set of threads with a work queue of fixed capacity. TrySubmit refuses
// work once the queue is full instead of queueing without limit, so an overloaded caller learns
// it at once (and can answer 503) rather than building latency it never recovers from.

#include <cstddef>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/check.h"

namespace sb {

class BoundedExecutor {
 public:
  BoundedExecutor(int threads, size_t capacity);
  // Runs what is queued, then joins the threads.
  ~BoundedExecutor();
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Queues `fn`; false (and `fn` dropped) when the queue holds `capacity` items or the executor
  // is shutting down.
  bool TrySubmit(absl::AnyInvocable<void()> fn);
  // Queued and not yet started.
  size_t depth() const;
  size_t capacity() const { return capacity_; }

 private:
  void Work();

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::vector<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);  // ring of capacity_
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace sb
