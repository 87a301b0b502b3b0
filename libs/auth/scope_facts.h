#pragma once

// ScopeFacts answers what a user reaches with a scope: the users, teams and org units of their
// led teams (TEAM), their transitive reports (REPORTS) or their units' subtrees (ORG_UNIT). The
// facts belong to the org service (ResolveScope); the authorizer asks through this interface and
// CachedScopeFacts keeps answers for a short TTL so that a decision costs a hash lookup.

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/auth/permissions.h"

namespace sb::auth {

// What one user reaches with one scope. Includes the user themself.
struct Reach {
  bool all = false;  // TENANT or PLATFORM: everything in the tenant
  absl::flat_hash_set<std::string> user_ids;
  absl::flat_hash_set<std::string> team_ids;
  absl::flat_hash_set<std::string> org_unit_ids;
};

class ScopeFacts {
 public:
  virtual ~ScopeFacts() = default;
  // The reach of `user_id` (in `tenant_id`) with `scope`. Unavailable when the facts cannot be
  // fetched now; NotFound for an unknown user. Thread-safe.
  virtual absl::StatusOr<std::shared_ptr<const Reach>> Resolve(std::string_view tenant_id,
                                                               std::string_view user_id,
                                                               Scope scope) = 0;
};

}  // namespace sb::auth
