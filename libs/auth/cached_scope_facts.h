#pragma once

// CachedScopeFacts: a ScopeFacts that remembers another one's answers for `ttl` (errors are not
// cached). Sharded so that concurrent decisions rarely contend. Thread-safe.

#include <array>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "libs/auth/scope_facts.h"
#include "libs/common/clock.h"

namespace sb::auth {

class CachedScopeFacts final : public ScopeFacts {
 public:
  CachedScopeFacts(ScopeFacts& source, const Clock& clock, absl::Duration ttl = absl::Seconds(5),
                   size_t max_entries = 100000);

  absl::StatusOr<std::shared_ptr<const Reach>> Resolve(std::string_view tenant_id,
                                                       std::string_view user_id,
                                                       Scope scope) override;
  // Drops every cached answer about `tenant_id` (after a change the caller knows of).
  void InvalidateTenant(std::string_view tenant_id);

 private:
  struct Entry {
    std::shared_ptr<const Reach> reach;
    absl::Time expires;
  };
  struct Shard {
    std::mutex mu;
    absl::flat_hash_map<std::string, Entry> entries;
  };
  static constexpr size_t kShards = 16;

  ScopeFacts& source_;
  const Clock& clock_;
  const absl::Duration ttl_;
  const size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace sb::auth
