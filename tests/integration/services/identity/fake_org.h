#pragma once

// FakeOrg: the org service's facts for identity's tests — an org-unit tree, team membership and
// leadership, reporting managers — serving both ScopeFacts (what a user reaches) and
// OrgPlacement (placing, cloning, releasing users). Thread-safe.

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "libs/auth/scope_facts.h"
#include "services/identity/org_placement.h"

namespace sb::identity::test {

class FakeOrg final : public auth::ScopeFacts, public OrgPlacement {
 public:
  // The tree: `parent` empty makes a root unit.
  void AddUnit(const std::string& unit, const std::string& parent = "");
  void PutInUnit(const std::string& user, const std::string& unit);
  void AddToTeam(const std::string& user, const std::string& team, bool leader = false);
  void SetManager(const std::string& user, const std::string& manager);
  // When set, every call fails with Unavailable (org down).
  void SetDown(bool down);
  std::vector<std::string> UnitsOf(const std::string& user) const;
  std::vector<std::string> TeamsOf(const std::string& user) const;
  std::set<std::string> released() const;

  absl::StatusOr<std::shared_ptr<const auth::Reach>> Resolve(std::string_view tenant_id,
                                                             std::string_view user_id,
                                                             auth::Scope scope) override;
  absl::Status Place(const OrgCall& call, const std::string& user_id,
                     const std::vector<std::string>& org_unit_ids,
                     const std::vector<std::string>& team_ids) override;
  absl::Status Clone(const OrgCall& call, const std::string& source_user_id,
                     const std::string& target_user_id) override;
  absl::Status Release(const OrgCall& call, const std::string& user_id) override;
  absl::StatusOr<std::vector<std::string>> UsersInOrgUnit(const OrgCall& call,
                                                          const std::string& org_unit_id,
                                                          bool include_subtree) override;
  absl::StatusOr<std::vector<std::string>> UsersInTeam(const OrgCall& call,
                                                       const std::string& team_id) override;

 private:
  std::set<std::string> Subtree(const std::string& unit) const;  // mu_ held

  mutable std::mutex mu_;
  bool down_ = false;
  std::map<std::string, std::string> parent_;                  // unit -> parent ("" for roots)
  std::map<std::string, std::set<std::string>> user_units_;    // user -> units
  std::map<std::string, std::set<std::string>> team_members_;  // team -> users
  std::map<std::string, std::set<std::string>> team_leaders_;  // team -> users
  std::map<std::string, std::string> manager_;                 // user -> manager
  std::set<std::string> released_;
};

}  // namespace sb::identity::test
