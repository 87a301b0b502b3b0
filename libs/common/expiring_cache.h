#pragma once

// ExpiringCache: a thread-safe map from string keys to values that each carry their own expiry.
// Bounded without bookkeeping per read: past `capacity` entries it starts afresh (the entries are
// answers that can be fetched again, so a full cache costs one round of misses, never a wrong
// answer). Times come from the caller, so tests drive it with a FakeClock.

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sb {

template <typename V>
class ExpiringCache {
 public:
  explicit ExpiringCache(size_t capacity = 10'000) : capacity_(capacity) {}

  // The value under `key` while `now` is before its expiry.
  std::optional<V> Get(const std::string& key, absl::Time now) const {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || now >= it->second.expires) return std::nullopt;
    return it->second.value;
  }

  void Put(const std::string& key, V value, absl::Time expires) {
    absl::MutexLock lock(&mu_);
    if (entries_.size() >= capacity_ && !entries_.contains(key)) entries_.clear();
    entries_.insert_or_assign(key, Entry{std::move(value), expires});
  }

  void Clear() {
    absl::MutexLock lock(&mu_);
    entries_.clear();
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    V value;
    absl::Time expires;
  };
  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sb
