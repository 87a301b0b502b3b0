#pragma once

// OrgPlacement: what identity asks of the org service about where users sit — placing a new
// user in org units and teams, copying a placement for CloneUser, releasing a deleted user, and
// listing the users of a unit or team for ListUsers' filters. The org service owns these facts
// (issue #4); GrpcOrgPlacement calls its Internal RPCs, tests use a fake.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sb::identity {

// On whose behalf identity calls org: the tenant, and the caller's own bearer token so that org
// checks the caller's rights itself (internal RPCs use the service credential instead).
struct OrgCall {
  std::string tenant_id;
  std::string bearer_token;
};

class OrgPlacement {
 public:
  virtual ~OrgPlacement() = default;
  // Puts the user into these units and teams (replacing nothing else). InvalidArgument/NotFound
  // for unknown units or teams; Unavailable when org cannot be reached.
  virtual absl::Status Place(const OrgCall& call, const std::string& user_id,
                             const std::vector<std::string>& org_unit_ids,
                             const std::vector<std::string>& team_ids) = 0;
  // Gives `target_user_id` the units, teams, reporting manager and profile settings of the source.
  virtual absl::Status Clone(const OrgCall& call, const std::string& source_user_id,
                             const std::string& target_user_id) = 0;
  // Removes a deleted user from units and teams.
  virtual absl::Status Release(const OrgCall& call, const std::string& user_id) = 0;
  // The users of a unit (with its subtree when asked) or of a team.
  virtual absl::StatusOr<std::vector<std::string>> UsersInOrgUnit(const OrgCall& call,
                                                                  const std::string& org_unit_id,
                                                                  bool include_subtree) = 0;
  virtual absl::StatusOr<std::vector<std::string>> UsersInTeam(const OrgCall& call,
                                                               const std::string& team_id) = 0;
};

}  // namespace sb::identity
