#include "services/identity/builtin_roles.h"

namespace sb::identity {
namespace {

using auth::Scope;
namespace perm = auth::perm;

auth::PermissionSet Set(std::initializer_list<std::pair<const char*, Scope>> grants) {
  auth::PermissionSet set;
  for (const auto& [name, scope] : grants) set.Add({name, scope});
  return set;
}

auth::PermissionSet Everything(Scope scope) {
  auth::PermissionSet set;
  for (const auth::PermissionInfo& info : auth::PermissionCatalog()) {
    for (Scope allowed : info.allowed_scopes) {
      if (allowed == scope) set.Add({info.name, scope});
    }
  }
  return set;
}

}  // namespace

const std::vector<BuiltinRole>& BuiltinRoles() {
  static const auto* kRoles = new std::vector<BuiltinRole>{
      {kPlatformAdminRole, "Super Admin", "Manages tenants; everything everywhere",
       Everything(Scope::kPlatform)},
      {kAdminRole, "Administrator",
       "Everything in the tenant, including settings, billing and integrations",
       Everything(Scope::kTenant)},
      {"head", "Head", "All calls and reports of the tenant; cannot change settings",
       Set({{perm::kUsersRead, Scope::kTenant},
            {perm::kCallsRead, Scope::kTenant},
            {perm::kCallsExport, Scope::kTenant},
            {perm::kRecordingsListen, Scope::kTenant},
            {perm::kContactsAccess, Scope::kTenant},
            {perm::kReportsRead, Scope::kTenant},
            {perm::kAgentsSupervise, Scope::kTenant},
            {perm::kAuditRead, Scope::kTenant}})},
      {"local_manager", "Local Manager",
       "Users, PINs, calls and recordings within their org-unit subtree",
       Set({{perm::kUsersRead, Scope::kOrgUnit},
            {perm::kUsersManage, Scope::kOrgUnit},
            {perm::kPinsManage, Scope::kOrgUnit},
            {perm::kCallsRead, Scope::kOrgUnit},
            {perm::kCallsExport, Scope::kOrgUnit},
            {perm::kRecordingsListen, Scope::kOrgUnit},
            {perm::kContactsAccess, Scope::kOrgUnit},
            {perm::kReportsRead, Scope::kOrgUnit},
            {perm::kAgentsSupervise, Scope::kOrgUnit},
            {perm::kAuditRead, Scope::kOrgUnit},
            {perm::kProjectsSelect, Scope::kOwn}})},
      {"group_leader", "Group leader", "Calls and reports of their own teams",
       Set({{perm::kUsersRead, Scope::kTeam},
            {perm::kCallsRead, Scope::kTeam},
            {perm::kRecordingsListen, Scope::kTeam},
            {perm::kContactsAccess, Scope::kTeam},
            {perm::kReportsRead, Scope::kTeam},
            {perm::kAgentsSupervise, Scope::kTeam},
            {perm::kProjectsSelect, Scope::kOwn}})},
      {"supervisor", "Reporting manager",
       "Calls, activity and performance of the agents who report to them",
       Set({{perm::kUsersRead, Scope::kReports},
            {perm::kCallsRead, Scope::kReports},
            {perm::kRecordingsListen, Scope::kReports},
            {perm::kContactsAccess, Scope::kReports},
            {perm::kReportsRead, Scope::kReports},
            {perm::kAgentsSupervise, Scope::kReports},
            {perm::kProjectsSelect, Scope::kOwn}})},
      {kAgentRole, "Agent", "Own calls, own contacts, project selection",
       Set({{perm::kUsersRead, Scope::kOwn},
            {perm::kCallsRead, Scope::kOwn},
            {perm::kContactsAccess, Scope::kOwn},
            {perm::kReportsRead, Scope::kOwn},
            {perm::kProjectsSelect, Scope::kOwn}})},
  };
  return *kRoles;
}

const BuiltinRole* FindBuiltinRole(std::string_view id) {
  for (const BuiltinRole& role : BuiltinRoles()) {
    if (role.id == id) return &role;
  }
  return nullptr;
}

}  // namespace sb::identity
