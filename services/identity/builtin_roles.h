#pragma once

// The built-in roles of DESIGN.md ("Access control"). They are the same in every tenant, live in
// code rather than in the roles table, use their name as id, and cannot be changed or deleted.

#include <string>
#include <string_view>
#include <vector>

#include "libs/auth/permissions.h"

namespace sb::identity {

struct BuiltinRole {
  std::string id;  // "admin", "head", ...
  std::string display_name;
  std::string description;
  auth::PermissionSet permissions;
};

inline constexpr char kPlatformAdminRole[] = "platform_admin";
inline constexpr char kAdminRole[] = "admin";
inline constexpr char kAgentRole[] = "agent";

// platform_admin, admin, head, local_manager, group_leader, supervisor, agent.
const std::vector<BuiltinRole>& BuiltinRoles();
// nullptr when `id` is not a built-in role.
const BuiltinRole* FindBuiltinRole(std::string_view id);

}  // namespace sb::identity
