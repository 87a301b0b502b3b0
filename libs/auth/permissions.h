#pragma once

// The permission model of DESIGN.md ("Access control"): permissions are dotted names from one
// catalog, each held with a scope. Scopes form a partial order:
//
//   PLATFORM ⊇ TENANT ⊇ { ORG_UNIT, TEAM, REPORTS } ⊇ OWN
//
// ORG_UNIT, TEAM and REPORTS do not contain each other (a team may span units; a manager's reports
// may sit anywhere), so a principal can hold one permission with several scopes at once and a
// PermissionSet keeps each permission's scopes as a small set, with covered scopes dropped.
//
// Value types; thread-compatible. The catalog is immutable and safe to read from any thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sb::auth {

// Mirrors switchboard.common.v1.Scope (same numbers), so protos convert with a cast.
enum class Scope : uint8_t {
  kUnspecified = 0,
  kOwn = 1,
  kTeam = 2,
  kReports = 3,
  kOrgUnit = 4,
  kTenant = 5,
  kPlatform = 6,
};

// "own", "team", "reports", "org_unit", "tenant", "platform".
std::string_view ScopeName(Scope scope);
std::optional<Scope> ParseScope(std::string_view name);
// True when holding `held` reaches everything `wanted` reaches.
bool Covers(Scope held, Scope wanted);

// The permission names. Services refer to these constants, never to string literals.
namespace perm {
inline constexpr char kTenantsManage[] = "tenants.manage";
inline constexpr char kSettingsManage[] = "settings.manage";
inline constexpr char kUsersRead[] = "users.read";
inline constexpr char kUsersManage[] = "users.manage";
inline constexpr char kRolesManage[] = "roles.manage";
inline constexpr char kPinsManage[] = "pins.manage";
inline constexpr char kApiKeysManage[] = "api_keys.manage";
inline constexpr char kAuditRead[] = "audit.read";
inline constexpr char kOrgManage[] = "org.manage";
inline constexpr char kCallsRead[] = "calls.read";
inline constexpr char kCallsExport[] = "calls.export";
inline constexpr char kRecordingsListen[] = "recordings.listen";
inline constexpr char kObjectsDelete[] = "objects.delete";
inline constexpr char kContactsAccess[] = "contacts.access";
inline constexpr char kReportsRead[] = "reports.read";
inline constexpr char kAgentsSupervise[] = "agents.supervise";
inline constexpr char kProjectsSelect[] = "projects.select";
inline constexpr char kRoutingManage[] = "routing.manage";
inline constexpr char kNumbersManage[] = "numbers.manage";
inline constexpr char kBillingManage[] = "billing.manage";
inline constexpr char kIntegrationsManage[] = "integrations.manage";
}  // namespace perm

struct PermissionInfo {
  std::string name;
  std::string description;
  std::string category;               // grouping for the console: "users", "calls", ...
  std::vector<Scope> allowed_scopes;  // the scopes the permission may be held with
};

// Every permission, in a stable order.
const std::vector<PermissionInfo>& PermissionCatalog();
// nullptr when `name` is not in the catalog.
const PermissionInfo* FindPermission(std::string_view name);

// One permission held with one scope; "calls.read:team" in tokens.
struct Grant {
  std::string permission;
  Scope scope = Scope::kUnspecified;
  friend bool operator==(const Grant&, const Grant&) = default;
};
std::string GrantText(const Grant& grant);
// Parses "permission:scope". InvalidArgument for a malformed text, an unknown permission, or a
// scope the permission does not allow.
absl::StatusOr<Grant> ParseGrant(std::string_view text);
// Checks a grant against the catalog: InvalidArgument naming `field`.
absl::Status ValidateGrant(const Grant& grant, std::string_view field);

// The permissions a principal holds, each with its (minimal) set of scopes.
class PermissionSet {
 public:
  PermissionSet() = default;

  // Adds a grant; a scope already covered by a held one is ignored, and held scopes that the new
  // one covers are dropped.
  void Add(const Grant& grant);
  void AddAll(const PermissionSet& other);
  // Removes every scope of `permission`.
  void Remove(std::string_view permission);

  // True when some held scope of `permission` covers `scope`.
  bool Has(std::string_view permission, Scope scope) const;
  // True when the permission is held with any scope.
  bool HasAny(std::string_view permission) const;
  // The scopes held for `permission` (empty when not held), narrowest first.
  std::vector<Scope> ScopesOf(std::string_view permission) const;
  // True when every grant of `other` is covered by this set ("never grant more than you hold").
  bool CoversAll(const PermissionSet& other) const;
  // The grants of `other` that this set does not cover.
  std::vector<Grant> Uncovered(const PermissionSet& other) const;

  // Every grant, ordered by permission then scope.
  std::vector<Grant> Grants() const;
  // Grants as "permission:scope" texts (the token's "perms" claim).
  std::vector<std::string> Texts() const;
  // Parses token texts; entries that do not parse are skipped (a token from a newer catalog must
  // not grant what this binary does not know).
  static PermissionSet FromTexts(const std::vector<std::string>& texts);

  bool empty() const { return scopes_.empty(); }
  friend bool operator==(const PermissionSet&, const PermissionSet&) = default;

 private:
  // permission -> bit mask of held scopes (bit n = Scope n).
  std::map<std::string, uint8_t, std::less<>> scopes_;
};

}  // namespace sb::auth
