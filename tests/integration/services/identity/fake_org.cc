#include "tests/integration/services/identity/fake_org.h"

namespace sb::identity::test {

void FakeOrg::AddUnit(const std::string& unit, const std::string& parent) {
  std::lock_guard lock(mu_);
  parent_[unit] = parent;
}

void FakeOrg::PutInUnit(const std::string& user, const std::string& unit) {
  std::lock_guard lock(mu_);
  user_units_[user].insert(unit);
}

void FakeOrg::AddToTeam(const std::string& user, const std::string& team, bool leader) {
  std::lock_guard lock(mu_);
  team_members_[team].insert(user);
  if (leader) team_leaders_[team].insert(user);
}

void FakeOrg::SetManager(const std::string& user, const std::string& manager) {
  std::lock_guard lock(mu_);
  manager_[user] = manager;
}

void FakeOrg::SetDown(bool down) {
  std::lock_guard lock(mu_);
  down_ = down;
}

std::vector<std::string> FakeOrg::UnitsOf(const std::string& user) const {
  std::lock_guard lock(mu_);
  auto it = user_units_.find(user);
  if (it == user_units_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> FakeOrg::TeamsOf(const std::string& user) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [team, members] : team_members_) {
    if (members.contains(user)) out.push_back(team);
  }
  return out;
}

std::set<std::string> FakeOrg::released() const {
  std::lock_guard lock(mu_);
  return released_;
}

std::set<std::string> FakeOrg::Subtree(const std::string& unit) const {
  std::set<std::string> out{unit};
  bool grew = true;
  while (grew) {
    grew = false;
    for (const auto& [child, parent] : parent_) {
      if (out.contains(parent) && out.insert(child).second) grew = true;
    }
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const auth::Reach>> FakeOrg::Resolve(std::string_view tenant_id,
                                                                    std::string_view user_id,
                                                                    auth::Scope scope) {
  std::lock_guard lock(mu_);
  if (down_) return absl::UnavailableError("org is down");
  const std::string user(user_id);
  auto reach = std::make_shared<auth::Reach>();
  reach->user_ids.insert(user);
  switch (scope) {
    case auth::Scope::kTenant:
    case auth::Scope::kPlatform:
      reach->all = true;
      break;
    case auth::Scope::kTeam:
      for (const auto& [team, leaders] : team_leaders_) {
        if (!leaders.contains(user)) continue;
        reach->team_ids.insert(team);
        for (const auto& member : team_members_[team]) reach->user_ids.insert(member);
      }
      break;
    case auth::Scope::kReports: {
      bool grew = true;
      while (grew) {
        grew = false;
        for (const auto& [report, manager] : manager_) {
          if (reach->user_ids.contains(manager) && reach->user_ids.insert(report).second) {
            grew = true;
          }
        }
      }
      break;
    }
    case auth::Scope::kOrgUnit:
      if (auto it = user_units_.find(user); it != user_units_.end()) {
        for (const auto& unit : it->second) {
          for (const auto& u : Subtree(unit)) reach->org_unit_ids.insert(u);
        }
      }
      for (const auto& [other, units] : user_units_) {
        for (const auto& unit : units) {
          if (reach->org_unit_ids.contains(unit)) reach->user_ids.insert(other);
        }
      }
      break;
    default:
      break;
  }
  return reach;
}

absl::Status FakeOrg::Place(const OrgCall& call, const std::string& user_id,
                            const std::vector<std::string>& org_unit_ids,
                            const std::vector<std::string>& team_ids) {
  std::lock_guard lock(mu_);
  if (down_) return absl::UnavailableError("org is down");
  for (const auto& unit : org_unit_ids) {
    if (!parent_.contains(unit)) return absl::NotFoundError("org unit not found");
  }
  for (const auto& unit : org_unit_ids) user_units_[user_id].insert(unit);
  for (const auto& team : team_ids) team_members_[team].insert(user_id);
  return absl::OkStatus();
}

absl::Status FakeOrg::Clone(const OrgCall& call, const std::string& source_user_id,
                            const std::string& target_user_id) {
  std::lock_guard lock(mu_);
  if (down_) return absl::UnavailableError("org is down");
  if (auto it = user_units_.find(source_user_id); it != user_units_.end()) {
    user_units_[target_user_id] = it->second;
  }
  for (auto& [team, members] : team_members_) {
    if (members.contains(source_user_id)) members.insert(target_user_id);
  }
  if (auto it = manager_.find(source_user_id); it != manager_.end()) {
    manager_[target_user_id] = it->second;
  }
  return absl::OkStatus();
}

absl::Status FakeOrg::Release(const OrgCall& call, const std::string& user_id) {
  std::lock_guard lock(mu_);
  if (down_) return absl::UnavailableError("org is down");
  user_units_.erase(user_id);
  for (auto& [team, members] : team_members_) members.erase(user_id);
  for (auto& [team, leaders] : team_leaders_) leaders.erase(user_id);
  released_.insert(user_id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FakeOrg::UsersInOrgUnit(const OrgCall& call,
                                                                 const std::string& org_unit_id,
                                                                 bool include_subtree) {
  std::lock_guard lock(mu_);
  if (down_) return absl::UnavailableError("org is down");
  std::set<std::string> units =
      include_subtree ? Subtree(org_unit_id) : std::set<std::string>{org_unit_id};
  std::vector<std::string> out;
  for (const auto& [user, mine] : user_units_) {
    for (const auto& u : mine) {
      if (units.contains(u)) {
        out.push_back(user);
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> FakeOrg::UsersInTeam(const OrgCall& call,
                                                              const std::string& team_id) {
  std::lock_guard lock(mu_);
  if (down_) return absl::UnavailableError("org is down");
  auto it = team_members_.find(team_id);
  if (it == team_members_.end()) return std::vector<std::string>{};
  return std::vector<std::string>(it->second.begin(), it->second.end());
}

}  // namespace sb::identity::test
