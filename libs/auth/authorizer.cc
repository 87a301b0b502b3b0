#include "libs/auth/authorizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sb::auth {
namespace {

bool AnyIn(const std::vector<std::string>& ids, const absl::flat_hash_set<std::string>& set) {
  return std::any_of(ids.begin(), ids.end(),
                     [&](const std::string& id) { return set.contains(id); });
}

}  // namespace

absl::Status RequireUnrestricted(const Principal& principal) {
  if (principal.restricted) {
    return absl::PermissionDeniedError(
        "this token may only change the password or enrol 2FA: finish that step first");
  }
  return absl::OkStatus();
}

bool Authorizer::HoldsTenantWide(const Principal& principal, std::string_view permission) {
  return !principal.restricted && principal.permissions.Has(permission, Scope::kTenant);
}

absl::Status Authorizer::Check(const Principal& principal, std::string_view permission,
                               const Resource& resource) const {
  if (absl::Status s = RequireUnrestricted(principal); !s.ok()) return s;
  const std::vector<Scope> scopes = principal.permissions.ScopesOf(permission);
  if (scopes.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("permission ", std::string(permission), " is required"));
  }
  const bool platform = std::find(scopes.begin(), scopes.end(), Scope::kPlatform) != scopes.end();
  if (resource.tenant_id != principal.tenant_id) {
    if (platform) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat(std::string(resource.type), " not found"));
  }
  for (Scope scope : scopes) {
    if (scope == Scope::kPlatform || scope == Scope::kTenant) return absl::OkStatus();
    if (!principal.user_id.empty() && resource.owner_user_id == principal.user_id) {
      return absl::OkStatus();
    }
    if (scope == Scope::kOwn || principal.user_id.empty()) continue;
    absl::StatusOr<std::shared_ptr<const Reach>> reach =
        facts_.Resolve(principal.tenant_id, principal.user_id, scope);
    if (!reach.ok()) {
      if (absl::IsNotFound(reach.status())) continue;
      return absl::UnavailableError(
          absl::StrCat("cannot check access now: ", reach.status().message()));
    }
    const Reach& r = **reach;
    if (r.all || r.user_ids.contains(resource.owner_user_id) ||
        AnyIn(resource.team_ids, r.team_ids) || AnyIn(resource.org_unit_ids, r.org_unit_ids)) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "permission ", std::string(permission), " does not reach this ", std::string(resource.type)));
}

absl::StatusOr<Reach> Authorizer::ReachFor(const Principal& principal,
                                           std::string_view permission) const {
  if (absl::Status s = RequireUnrestricted(principal); !s.ok()) return s;
  const std::vector<Scope> scopes = principal.permissions.ScopesOf(permission);
  if (scopes.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("permission ", std::string(permission), " is required"));
  }
  Reach merged;
  if (!principal.user_id.empty()) merged.user_ids.insert(principal.user_id);
  for (Scope scope : scopes) {
    if (scope == Scope::kPlatform || scope == Scope::kTenant) {
      merged.all = true;
      return merged;
    }
    if (scope == Scope::kOwn || principal.user_id.empty()) continue;
    absl::StatusOr<std::shared_ptr<const Reach>> reach =
        facts_.Resolve(principal.tenant_id, principal.user_id, scope);
    if (!reach.ok()) {
      if (absl::IsNotFound(reach.status())) continue;
      return absl::UnavailableError(
          absl::StrCat("cannot check access now: ", reach.status().message()));
    }
    merged.all = merged.all || (*reach)->all;
    merged.user_ids.insert((*reach)->user_ids.begin(), (*reach)->user_ids.end());
    merged.team_ids.insert((*reach)->team_ids.begin(), (*reach)->team_ids.end());
    merged.org_unit_ids.insert((*reach)->org_unit_ids.begin(), (*reach)->org_unit_ids.end());
  }
  return merged;
}

}  // namespace sb::auth
