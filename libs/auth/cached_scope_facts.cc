#include "libs/auth/cached_scope_facts.h"

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace sb::auth {

CachedScopeFacts::CachedScopeFacts(ScopeFacts& source, const Clock& clock, absl::Duration ttl,
                                   size_t max_entries)
    : source_(source),
      clock_(clock),
      ttl_(ttl),
      max_per_shard_(std::max<size_t>(1, max_entries / kShards)) {}

absl::StatusOr<std::shared_ptr<const Reach>> CachedScopeFacts::Resolve(std::string_view tenant_id,
                                                                       std::string_view user_id,
                                                                       Scope scope) {
  std::string key = std::string(tenant_id) + "/" + std::string(user_id) + "/" +
                    std::to_string(static_cast<int>(scope));
  Shard& shard = shards_[absl::Hash<std::string>{}(key) % kShards];
  const absl::Time now = clock_.Now();
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(key);
    if (it != shard.entries.end() && it->second.expires > now) return it->second.reach;
  }
  // Fetched outside the lock: a slow org call must not stall decisions about other users.
  absl::StatusOr<std::shared_ptr<const Reach>> fresh = source_.Resolve(tenant_id, user_id, scope);
  if (!fresh.ok()) return fresh.status();
  std::lock_guard lock(shard.mu);
  if (shard.entries.size() >= max_per_shard_) {
    absl::erase_if(shard.entries, [&](const auto& kv) { return kv.second.expires <= now; });
    if (shard.entries.size() >= max_per_shard_) shard.entries.clear();
  }
  shard.entries[std::move(key)] = Entry{*fresh, now + ttl_};
  return *fresh;
}

void CachedScopeFacts::InvalidateTenant(std::string_view tenant_id) {
  const std::string prefix = std::string(tenant_id) + "/";
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    absl::erase_if(shard.entries,
                   [&](const auto& kv) { return kv.first.compare(0, prefix.size(), prefix) == 0; });
  }
}

}  // namespace sb::auth
