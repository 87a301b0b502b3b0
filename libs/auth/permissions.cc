#include "libs/auth/permissions.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/app/rpc_errors.h"

namespace sb::auth {
namespace {

constexpr uint8_t Bit(Scope s) { return static_cast<uint8_t>(1u << static_cast<unsigned>(s)); }

const std::vector<Scope> kPersonal = {Scope::kOwn,     Scope::kTeam,   Scope::kReports,
                                      Scope::kOrgUnit, Scope::kTenant, Scope::kPlatform};
const std::vector<Scope> kUnits = {Scope::kOrgUnit, Scope::kTenant, Scope::kPlatform};
const std::vector<Scope> kTenantWide = {Scope::kTenant, Scope::kPlatform};

}  // namespace

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kOwn:
      return "own";
    case Scope::kTeam:
      return "team";
    case Scope::kReports:
      return "reports";
    case Scope::kOrgUnit:
      return "org_unit";
    case Scope::kTenant:
      return "tenant";
    case Scope::kPlatform:
      return "platform";
    case Scope::kUnspecified:
      break;
  }
  return "unspecified";
}

std::optional<Scope> ParseScope(std::string_view name) {
  for (Scope s : kPersonal) {
    if (ScopeName(s) == name) return s;
  }
  return std::nullopt;
}

bool Covers(Scope held, Scope wanted) {
  if (held == Scope::kUnspecified || wanted == Scope::kUnspecified) return false;
  if (held == wanted) return true;
  switch (held) {
    case Scope::kPlatform:
      return true;
    case Scope::kTenant:
      return wanted != Scope::kPlatform;
    case Scope::kOrgUnit:
    case Scope::kTeam:
    case Scope::kReports:
      return wanted == Scope::kOwn;
    default:
      return false;
  }
}

const std::vector<PermissionInfo>& PermissionCatalog() {
  static const auto* kCatalog = new std::vector<PermissionInfo>{
      {perm::kTenantsManage, "Create, suspend and delete tenants", "platform", {Scope::kPlatform}},
      {perm::kSettingsManage, "Change the tenant's settings and security policy", "settings",
       kTenantWide},
      {perm::kUsersRead, "See users and their details", "users", kPersonal},
      {perm::kUsersManage,
       "Create, edit, clone, disable and delete users, reset passwords and SIP credentials",
       "users",
       {Scope::kTeam, Scope::kOrgUnit, Scope::kTenant, Scope::kPlatform}},
      {perm::kRolesManage, "Create and edit custom roles and per-user permissions", "users",
       kTenantWide},
      {perm::kPinsManage, "Create and delete outbound-call PINs", "users", kPersonal},
      {perm::kApiKeysManage, "Create and revoke API keys for integrations", "integrations",
       kTenantWide},
      {perm::kAuditRead, "Read the audit log", "users", kUnits},
      {perm::kOrgManage,
       "Manage org units, teams, projects and agent profiles",
       "organisation",
       {Scope::kTeam, Scope::kOrgUnit, Scope::kTenant, Scope::kPlatform}},
      {perm::kCallsRead, "See calls and call lists", "calls", kPersonal},
      {perm::kCallsExport, "Export call lists (CSV)", "calls", kPersonal},
      {perm::kRecordingsListen, "Listen to and download recordings", "calls", kPersonal},
      {perm::kObjectsDelete, "Delete calls, recordings and contacts", "calls", kPersonal},
      {perm::kContactsAccess, "See and edit contacts", "contacts", kPersonal},
      {perm::kReportsRead, "See statistics, dashboards and reports", "reports", kPersonal},
      {perm::kAgentsSupervise,
       "Watch agents live, change their state, listen in",
       "calls",
       {Scope::kTeam, Scope::kReports, Scope::kOrgUnit, Scope::kTenant, Scope::kPlatform}},
      {perm::kProjectsSelect, "Select projects to work on", "calls", kPersonal},
      {perm::kRoutingManage, "Edit call flows, queues and working hours", "routing", kTenantWide},
      {perm::kNumbersManage, "Manage numbers and trunks", "routing", kTenantWide},
      {perm::kBillingManage, "See and top up the wallet, manage the licence", "billing",
       kTenantWide},
      {perm::kIntegrationsManage, "Manage webhooks and CRM integrations", "integrations",
       kTenantWide},
  };
  return *kCatalog;
}

const PermissionInfo* FindPermission(std::string_view name) {
  for (const PermissionInfo& info : PermissionCatalog()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::string GrantText(const Grant& grant) {
  return absl::StrCat(grant.permission, ":", std::string(ScopeName(grant.scope)));
}

absl::Status ValidateGrant(const Grant& grant, std::string_view field) {
  const PermissionInfo* info = FindPermission(grant.permission);
  if (info == nullptr) {
    return app::FieldError(field, "UNKNOWN_PERMISSION",
                           absl::StrCat("unknown permission '", grant.permission.substr(0, 64),
                                        "' (see ListPermissions)"));
  }
  if (std::find(info->allowed_scopes.begin(), info->allowed_scopes.end(), grant.scope) ==
      info->allowed_scopes.end()) {
    std::string allowed;
    for (Scope s : info->allowed_scopes) {
      absl::StrAppend(&allowed, allowed.empty() ? "" : ", ", std::string(ScopeName(s)));
    }
    return app::FieldError(
        field, "SCOPE_NOT_ALLOWED",
        absl::StrCat("scope '", std::string(ScopeName(grant.scope)), "' is not allowed for ",
                     grant.permission, " (allowed: ", allowed, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Grant> ParseGrant(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "permission grant '", std::string(text.substr(0, 64)), "' must be 'permission:scope'"));
  }
  std::optional<Scope> scope = ParseScope(text.substr(colon + 1));
  if (!scope) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown scope '", std::string(text.substr(colon + 1, 32)), "' in permission grant"));
  }
  Grant grant{std::string(text.substr(0, colon)), *scope};
  if (absl::Status s = ValidateGrant(grant, "permission"); !s.ok()) return s;
  return grant;
}

void PermissionSet::Add(const Grant& grant) {
  if (grant.scope == Scope::kUnspecified) return;
  uint8_t& mask = scopes_[grant.permission];
  for (Scope s : kPersonal) {
    if ((mask & Bit(s)) && Covers(s, grant.scope)) return;
  }
  for (Scope s : kPersonal) {
    if ((mask & Bit(s)) && Covers(grant.scope, s)) mask &= static_cast<uint8_t>(~Bit(s));
  }
  mask |= Bit(grant.scope);
}

void PermissionSet::AddAll(const PermissionSet& other) {
  for (const Grant& g : other.Grants()) Add(g);
}

void PermissionSet::Remove(std::string_view permission) {
  auto it = scopes_.find(permission);
  if (it != scopes_.end()) scopes_.erase(it);
}

bool PermissionSet::Has(std::string_view permission, Scope scope) const {
  auto it = scopes_.find(permission);
  if (it == scopes_.end()) return false;
  for (Scope s : kPersonal) {
    if ((it->second & Bit(s)) && Covers(s, scope)) return true;
  }
  return false;
}

bool PermissionSet::HasAny(std::string_view permission) const {
  auto it = scopes_.find(permission);
  return it != scopes_.end() && it->second != 0;
}

std::vector<Scope> PermissionSet::ScopesOf(std::string_view permission) const {
  std::vector<Scope> out;
  auto it = scopes_.find(permission);
  if (it == scopes_.end()) return out;
  for (Scope s : kPersonal) {
    if (it->second & Bit(s)) out.push_back(s);
  }
  return out;
}

std::vector<Grant> PermissionSet::Uncovered(const PermissionSet& other) const {
  std::vector<Grant> out;
  for (const Grant& g : other.Grants()) {
    if (!Has(g.permission, g.scope)) out.push_back(g);
  }
  return out;
}

bool PermissionSet::CoversAll(const PermissionSet& other) const { return Uncovered(other).empty(); }

std::vector<Grant> PermissionSet::Grants() const {
  std::vector<Grant> out;
  for (const auto& [name, mask] : scopes_) {
    for (Scope s : kPersonal) {
      if (mask & Bit(s)) out.push_back({name, s});
    }
  }
  return out;
}

std::vector<std::string> PermissionSet::Texts() const {
  std::vector<std::string> out;
  for (const Grant& g : Grants()) out.push_back(GrantText(g));
  return out;
}

PermissionSet PermissionSet::FromTexts(const std::vector<std::string>& texts) {
  PermissionSet set;
  for (const std::string& text : texts) {
    absl::StatusOr<Grant> grant = ParseGrant(text);
    if (grant.ok()) set.Add(*grant);
  }
  return set;
}

}  // namespace sb::auth
