#include "libs/common/bounded_executor.h"

#include "spdlog/spdlog.h"

namespace sb {

BoundedExecutor::BoundedExecutor(int threads, size_t capacity) : capacity_(capacity) {
  SB_CHECK(threads >= 1 && capacity >= 1);
  queue_.resize(capacity);
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

BoundedExecutor::~BoundedExecutor() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

bool BoundedExecutor::TrySubmit(absl::AnyInvocable<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stop_ || size_ == capacity_) return false;
  queue_[(head_ + size_) % capacity_] = std::move(fn);
  ++size_;
  return true;
}

size_t BoundedExecutor::depth() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

void BoundedExecutor::Work() {
  for (;;) {
    absl::AnyInvocable<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](BoundedExecutor* self)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->size_ > 0 || self->stop_; },
          this));
      if (size_ == 0) return;  // stopping and drained
      fn = std::move(queue_[head_]);
      queue_[head_] = nullptr;
      head_ = (head_ + 1) % capacity_;
      --size_;
    }
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("executor task threw: {}", e.what());
    }
  }
}

}  // namespace sb
