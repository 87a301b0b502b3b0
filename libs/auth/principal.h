#pragma once

// Principal: who is calling, as built from a verified access token, an API key or a service
// credential. Every service decides access from it (DESIGN.md: the gateway is not the only guard).

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/auth/permissions.h"

namespace sb::auth {

struct Principal {
  enum class Kind { kUser, kApiKey, kService };

  Kind kind = Kind::kUser;
  std::string tenant_id;
  // The user; for API keys the key's creator (OWN-scoped grants refer to their resources).
  std::string user_id;
  std::string api_key_id;  // kApiKey only
  std::string session_id;  // kUser only: the refresh-token family
  std::string service;     // kService only: the calling service's name when it said one
  std::vector<std::string> role_ids;
  PermissionSet permissions;
  // Restricted tokens may only change the password (or enrol TOTP) and log out.
  bool restricted = false;
  absl::Time issued_at = absl::InfinitePast();
  absl::Time expires_at = absl::InfiniteFuture();

  bool is_service() const { return kind == Kind::kService; }
  bool is_platform_admin() const { return permissions.Has(perm::kTenantsManage, Scope::kPlatform); }
};

}  // namespace sb::auth
