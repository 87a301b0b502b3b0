#pragma once

// Authorizer answers "may principal P do X on resource R", where R carries its tenant, owner,
// teams and org units (DESIGN.md, "Access control"):
//
//   auth::Resource target{.type = "user", .tenant_id = user.tenant_id(), .owner_user_id = id};
//   SB_RETURN_IF_ERROR(authorizer.Check(principal, auth::perm::kUsersManage, target));
//
// Scope semantics: PLATFORM reaches every tenant; TENANT the principal's tenant; OWN resources
// owned by the principal; TEAM, REPORTS and ORG_UNIT whatever ScopeFacts says the principal
// reaches with that scope (a resource is reached when its owner, one of its teams or one of its
// units is in the reach). Every scope also reaches the principal's own resources.
//
// Thread-safe; the ScopeFacts must be too and must outlive the Authorizer.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/auth/principal.h"
#include "libs/auth/scope_facts.h"

namespace sb::auth {

struct Resource {
  std::string_view type = "resource";  // for messages: "user", "call", ...
  std::string tenant_id;
  std::string owner_user_id;
  std::vector<std::string> team_ids;
  std::vector<std::string> org_unit_ids;
};

class Authorizer {
 public:
  explicit Authorizer(ScopeFacts& facts) : facts_(facts) {}

  // OK when `principal` holds `permission` with a scope that reaches `resource`.
  //   NotFound           the resource belongs to another tenant and the principal is not
  //                      platform-wide (so that guessed ids reveal nothing);
  //   PermissionDenied   the permission is not held, or no held scope reaches the resource, or the
  //                      principal is restricted (message names the permission);
  //   Unavailable        the scope facts could not be fetched.
  absl::Status Check(const Principal& principal, std::string_view permission,
                     const Resource& resource) const;

  // True when the permission is held tenant-wide (or platform-wide): no per-resource check needed.
  static bool HoldsTenantWide(const Principal& principal, std::string_view permission);

  // What the principal reaches with `permission`, all held scopes merged (for filtering lists).
  // PermissionDenied when the permission is not held at all; Unavailable as above.
  absl::StatusOr<Reach> ReachFor(const Principal& principal, std::string_view permission) const;

 private:
  ScopeFacts& facts_;
};

// PermissionDenied for a restricted principal, OK otherwise. For RPCs that check access by hand.
absl::Status RequireUnrestricted(const Principal& principal);

}  // namespace sb::auth
