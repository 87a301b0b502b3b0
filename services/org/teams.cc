// Teams (groups): members and leaders. A leader's TEAM scope covers the team's members.

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/org/org_service.h"

namespace sb::org {
namespace {

namespace perm = auth::perm;
using v1::TeamMember;

constexpr char kTeamColumns[] =
    "t.id::text, t.name, t.description, coalesce(t.schedule_id::text, ''), "
    "extract(epoch FROM t.created_at)::float8, extract(epoch FROM t.updated_at)::float8, "
    "(SELECT coalesce(array_agg(m.user_id::text ORDER BY m.added_at, m.user_id), '{}') "
    " FROM org.team_members m WHERE m.team_id = t.id AND m.role = 2), "
    "(SELECT count(*) FROM org.team_members m WHERE m.team_id = t.id)";

v1::Team TeamFromRow(const pqxx::row& row, const std::string& tenant_id) {
  v1::Team t;
  t.set_id(row[0].as<std::string>());
  t.set_tenant_id(tenant_id);
  t.set_name(row[1].as<std::string>());
  t.set_description(row[2].as<std::string>());
  t.set_schedule_id(row[3].as<std::string>());
  pg::SetTimestamp(t.mutable_created_at(), row[4]);
  pg::SetTimestamp(t.mutable_updated_at(), row[5]);
  for (std::string& id : pg::TextArray(row[6])) t.add_leader_user_ids(std::move(id));
  t.set_member_count(row[7].as<int>());
  return t;
}

absl::StatusOr<v1::Team> LoadTeam(pqxx::work& tx, const std::string& tenant_id,
                                  const std::string& id, std::string_view field = "team_id") {
  if (id.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (IsUuid(id)) {
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kTeamColumns,
                                    " FROM org.teams t WHERE t.tenant_id = $1 AND t.id = $2"),
                       tenant_id, absl::AsciiStrToLower(id));
    if (!r.empty()) return TeamFromRow(r[0], tenant_id);
  }
  return absl::NotFoundError(
      absl::StrCat(std::string(field), ": team '", id.substr(0, 64), "' not found"));
}

void AddMembers(pqxx::work& tx, const std::string& tenant_id, const std::string& team_id,
                const std::vector<std::string>& users, TeamMember::Role role) {
  tx.exec_params(
      "INSERT INTO org.team_members (tenant_id, team_id, user_id, role) "
      "SELECT $1, $2, unnest($3::uuid[]), $4 ON CONFLICT (team_id, user_id) DO UPDATE SET role = "
      "EXCLUDED.role",
      tenant_id, team_id, pg::PgArray(users), static_cast<int>(role));
}

}  // namespace

absl::Status OrgService::RequireTeamReached(const auth::Principal& caller,
                                            std::string_view permission,
                                            const std::string& team_id) const {
  SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer().ReachFor(caller, permission));
  if (reach.all || reach.team_ids.contains(team_id)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(std::string(permission),
                   " does not reach this team: you may change only the teams you lead"));
}

bool OrgService::SeesAllTeams(const auth::Principal& caller) {
  return auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage) ||
         auth::Authorizer::HoldsTenantWide(caller, perm::kUsersRead);
}

grpc::Status OrgService::CreateTeam(grpc::ServerContext* context,
                                    const v1::CreateTeamRequest* request, v1::Team* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (!auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
      return absl::PermissionDeniedError("creating teams needs org.manage for the whole tenant");
    }
    const v1::Team& in = request->team();
    SB_ASSIGN_OR_RETURN(std::string name, app::NormalizeName(in.name(), "team.name", true));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "team.description", 1000));
    SB_ASSIGN_OR_RETURN(std::vector<std::string> members,
                        UuidList(request->member_user_ids(), "member_user_ids"));
    SB_ASSIGN_OR_RETURN(std::vector<std::string> leaders,
                        UuidList(request->leader_user_ids(), "leader_user_ids"));
    SB_RETURN_IF_ERROR(
        AsBadReference(deps_.directory.RequireUsers(caller.tenant_id, members, "member_user_ids"),
                       "member_user_ids"));
    SB_RETURN_IF_ERROR(
        AsBadReference(deps_.directory.RequireUsers(caller.tenant_id, leaders, "leader_user_ids"),
                       "leader_user_ids"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_RETURN_IF_ERROR(RequireSchedule(tx, tenant, in.schedule_id(), "team.schedule_id"));
      const std::string id = NewUuid();
      pqxx::result r = tx.exec_params(
          "INSERT INTO org.teams (tenant_id, id, name, description, schedule_id) "
          "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, lower(name)) DO NOTHING RETURNING "
          "id",
          tenant, id, name, in.description(),
          pg::NullIfEmpty(absl::AsciiStrToLower(in.schedule_id())));
      if (r.empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "team.name", "NAME_TAKEN",
                               absl::StrCat("a team named '", name, "' exists"));
      }
      AddMembers(tx, tenant, id, members, TeamMember::ROLE_MEMBER);
      AddMembers(tx, tenant, id, leaders, TeamMember::ROLE_LEADER);
      SB_ASSIGN_OR_RETURN(*response, LoadTeam(tx, tenant, id));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetTeam(grpc::ServerContext* context, const v1::GetTeamRequest* request,
                                 v1::Team* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Team team, LoadTeam(tx, caller.tenant_id, request->team_id()));
      SB_RETURN_IF_ERROR(RequireTeamVisible(tx, caller, team.id()));
      *response = std::move(team);
      return absl::OkStatus();
    });
  }());
}

absl::Status OrgService::RequireTeamVisible(pqxx::work& tx, const auth::Principal& caller,
                                            const std::string& team_id) const {
  if (SeesAllTeams(caller)) return absl::OkStatus();
  if (!tx.exec_params("SELECT 1 FROM org.team_members WHERE team_id = $1 AND user_id = $2", team_id,
                      caller.user_id)
           .empty()) {
    return absl::OkStatus();
  }
  if (RequireTeamReached(caller, perm::kOrgManage, team_id).ok()) return absl::OkStatus();
  // What the caller may not see does not exist for them.
  return absl::NotFoundError("team_id: team not found");
}

grpc::Status OrgService::ListTeams(grpc::ServerContext* context,
                                   const v1::ListTeamsRequest* request,
                                   v1::ListTeamsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    for (const auto* f : {&request->member_user_id(), &request->leader_user_id()}) {
      if (!f->empty() && !IsUuid(*f)) {
        return app::FieldError(
            f == &request->member_user_id() ? "member_user_id" : "leader_user_id", "NOT_UUID",
            "must be a UUID");
      }
    }
    const std::string fingerprint = absl::StrCat(
        "teams|", request->query(), "|", request->member_user_id(), "|", request->leader_user_id());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    std::vector<std::string> reached;
    const bool all = SeesAllTeams(caller);
    if (!all) {
      if (absl::StatusOr<auth::Reach> r = authorizer().ReachFor(caller, perm::kOrgManage); r.ok()) {
        reached.assign(r->team_ids.begin(), r->team_ids.end());
      }
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result rows = tx.exec_params(
          absl::StrCat(
              "SELECT ", kTeamColumns,
              ", count(*) OVER () FROM org.teams t WHERE t.tenant_id = $1 "
              "AND ($2 = '' OR strpos(lower(t.name), lower($2)) > 0) "
              "AND ($3 = '' OR EXISTS (SELECT 1 FROM org.team_members m WHERE m.team_id = t.id AND "
              "m.user_id::text = lower($3))) "
              "AND ($4 = '' OR EXISTS (SELECT 1 FROM org.team_members m WHERE m.team_id = t.id AND "
              "m.user_id::text = lower($4) AND m.role = 2)) "
              "AND ($5 OR t.id::text = ANY($6::text[]) OR EXISTS (SELECT 1 FROM org.team_members m "
              "WHERE m.team_id = t.id AND m.user_id::text = $7)) "
              "ORDER BY lower(t.name), t.id LIMIT $8 OFFSET $9"),
          caller.tenant_id, request->query(), request->member_user_id(), request->leader_user_id(),
          all, pg::PgArray(reached), caller.user_id, page.limit, page.offset);
      int64_t total = rows.empty() ? 0 : rows[0][8].as<int64_t>();
      for (const auto& row : rows) *response->add_teams() = TeamFromRow(row, caller.tenant_id);
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateTeam(grpc::ServerContext* context,
                                    const v1::UpdateTeamRequest* request, v1::Team* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(
        auto paths, app::MaskPaths(request->update_mask(), {"name", "description", "schedule_id"}));
    const v1::Team& in = request->team();
    SB_ASSIGN_OR_RETURN(std::string name,
                        app::NormalizeName(in.name(), "team.name", paths.contains("name")));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "team.description", 1000));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_ASSIGN_OR_RETURN(v1::Team team, LoadTeam(tx, tenant, in.id(), "team.id"));
      SB_RETURN_IF_ERROR(RequireTeamVisible(tx, caller, team.id()));
      SB_RETURN_IF_ERROR(RequireTeamReached(caller, perm::kOrgManage, team.id()));
      if (paths.contains("name") && name != team.name()) {
        pqxx::result clash = tx.exec_params(
            "SELECT 1 FROM org.teams WHERE tenant_id = $1 AND id <> $2 AND lower(name) = lower($3)",
            tenant, team.id(), name);
        if (!clash.empty()) {
          return app::FieldError(absl::StatusCode::kAlreadyExists, "team.name", "NAME_TAKEN",
                                 absl::StrCat("a team named '", name, "' exists"));
        }
        tx.exec_params("UPDATE org.teams SET name = $2, updated_at = now() WHERE id = $1",
                       team.id(), name);
      }
      if (paths.contains("description")) {
        tx.exec_params("UPDATE org.teams SET description = $2, updated_at = now() WHERE id = $1",
                       team.id(), in.description());
      }
      if (paths.contains("schedule_id")) {
        SB_RETURN_IF_ERROR(RequireSchedule(tx, tenant, in.schedule_id(), "team.schedule_id"));
        tx.exec_params("UPDATE org.teams SET schedule_id = $2, updated_at = now() WHERE id = $1",
                       team.id(), pg::NullIfEmpty(absl::AsciiStrToLower(in.schedule_id())));
      }
      SB_ASSIGN_OR_RETURN(*response, LoadTeam(tx, tenant, team.id()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteTeam(grpc::ServerContext* context,
                                    const v1::DeleteTeamRequest* request,
                                    google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Team team, LoadTeam(tx, caller.tenant_id, request->team_id()));
      SB_RETURN_IF_ERROR(RequireTeamVisible(tx, caller, team.id()));
      if (!auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
        return absl::PermissionDeniedError("deleting teams needs org.manage for the whole tenant");
      }
      pqxx::result projects = tx.exec_params(
          "SELECT p.name FROM org.project_teams pt JOIN org.projects p ON p.id = pt.project_id "
          "WHERE pt.team_id = $1 ORDER BY p.name LIMIT 3",
          team.id());
      if (!projects.empty()) {
        return app::WithReason(
            absl::FailedPreconditionError(absl::StrCat(
                "team '", team.name(), "' works project '", projects[0][0].as<std::string>(), "'",
                projects.size() > 1 ? " and others" : "", ": take it off the project first")),
            "TEAM_IN_USE");
      }
      tx.exec_params("DELETE FROM org.teams WHERE tenant_id = $1 AND id = $2", caller.tenant_id,
                     team.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::AddTeamMembers(grpc::ServerContext* context,
                                        const v1::AddTeamMembersRequest* request,
                                        v1::AddTeamMembersResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Identity calls this with the service credential (vouching for a user it has just created)
    // and the person's token; people call it directly.
    SB_ASSIGN_OR_RETURN(OnBehalf on, CallerOnBehalf(*context));
    const Access& access = on.access;
    SB_ASSIGN_OR_RETURN(std::vector<std::string> users, UuidList(request->user_ids(), "user_ids"));
    if (users.empty()) return app::FieldError("user_ids", "REQUIRED", "name at least one user");
    const TeamMember::Role role =
        request->role() == TeamMember::ROLE_UNSPECIFIED ? TeamMember::ROLE_MEMBER : request->role();
    if (!TeamMember::Role_IsValid(role)) return app::FieldError("role", "UNKNOWN", "unknown role");
    if (!on.vouched && access.caller) {
      SB_RETURN_IF_ERROR(AsBadReference(
          deps_.directory.RequireUsers(access.tenant_id, users, "user_ids"), "user_ids"));
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Team team, LoadTeam(tx, access.tenant_id, request->team_id()));
      if (access.caller && !auth::Authorizer::HoldsTenantWide(*access.caller, perm::kOrgManage)) {
        const auth::Principal& caller = *access.caller;
        if (role == TeamMember::ROLE_LEADER) {
          return app::FieldError(absl::StatusCode::kPermissionDenied, "role", "OUTSIDE_SCOPE",
                                 "appointing team leaders needs org.manage for the whole tenant");
        }
        absl::Status by_org = RequireTeamReached(caller, perm::kOrgManage, team.id());
        // A new user lands in a team its creator manages users of (identity checked the same).
        if (!by_org.ok() &&
            !(on.vouched && RequireTeamReached(caller, perm::kUsersManage, team.id()).ok())) {
          if (!RequireTeamVisible(tx, caller, team.id()).ok()) {
            return absl::NotFoundError("team_id: team not found");
          }
          return by_org;
        }
        // Leading a team is no licence to pull anyone into it (and so into one's TEAM reach):
        // the people added must be reached already. Leaders stay leaders (re-adding one as a
        // member would demote them).
        const absl::flat_hash_set<std::string> leaders(team.leader_user_ids().begin(),
                                                       team.leader_user_ids().end());
        std::optional<auth::Reach> reach;
        if (!on.vouched) {
          SB_ASSIGN_OR_RETURN(reach, PlacementReach(caller));
        }
        for (size_t i = 0; i < users.size(); ++i) {
          const std::string field = absl::StrCat("user_ids[", i, "]");
          if (leaders.contains(users[i])) {
            return app::FieldError(absl::StatusCode::kPermissionDenied, field, "OUTSIDE_SCOPE",
                                   "leads this team: changing a leader needs org.manage for the "
                                   "whole tenant");
          }
          // Someone not in the team yet cannot be reached through it, so the reach says whether
          // the caller manages them some other way (their units, their teams, their reports).
          const bool reached = !reach || reach->user_ids.contains(users[i]);
          if (!reached) {
            return app::FieldError(absl::StatusCode::kPermissionDenied, field, "OUTSIDE_SCOPE",
                                   "is not someone you manage: only tenant-wide org.manage adds "
                                   "anyone to a team");
          }
        }
      }
      AddMembers(tx, access.tenant_id, team.id(), users, role);
      for (const auto& row :
           tx.exec_params("SELECT user_id::text, role, extract(epoch FROM added_at)::float8 FROM "
                          "org.team_members WHERE team_id = $1 AND user_id::text = ANY($2::text[]) "
                          "ORDER BY user_id",
                          team.id(), pg::PgArray(users))) {
        TeamMember* m = response->add_members();
        m->set_team_id(team.id());
        m->set_user_id(row[0].as<std::string>());
        m->set_role(static_cast<TeamMember::Role>(row[1].as<int>()));
        pg::SetTimestamp(m->mutable_added_at(), row[2]);
      }
      tx.exec_params("UPDATE org.teams SET updated_at = now() WHERE id = $1", team.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::RemoveTeamMembers(grpc::ServerContext* context,
                                           const v1::RemoveTeamMembersRequest* request,
                                           google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(std::vector<std::string> users, UuidList(request->user_ids(), "user_ids"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Team team, LoadTeam(tx, caller.tenant_id, request->team_id()));
      SB_RETURN_IF_ERROR(RequireTeamVisible(tx, caller, team.id()));
      SB_RETURN_IF_ERROR(RequireTeamReached(caller, perm::kOrgManage, team.id()));
      if (!auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
        for (const std::string& leader : team.leader_user_ids()) {
          if (std::find(users.begin(), users.end(), leader) != users.end()) {
            return app::FieldError(absl::StatusCode::kPermissionDenied, "user_ids", "OUTSIDE_SCOPE",
                                   "removing a team leader needs org.manage for the whole tenant");
          }
        }
      }
      tx.exec_params(
          "DELETE FROM org.team_members WHERE team_id = $1 AND user_id::text = ANY($2::text[])",
          team.id(), pg::PgArray(users));
      tx.exec_params("UPDATE org.teams SET updated_at = now() WHERE id = $1", team.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListTeamMembers(grpc::ServerContext* context,
                                         const v1::ListTeamMembersRequest* request,
                                         v1::ListTeamMembersResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    const std::string fingerprint = absl::StrCat("members|", request->team_id());
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), request->page_token(),
                                                       fingerprint, 1000));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Team team, LoadTeam(tx, access.tenant_id, request->team_id()));
      if (access.caller) SB_RETURN_IF_ERROR(RequireTeamVisible(tx, *access.caller, team.id()));
      pqxx::result rows = tx.exec_params(
          "SELECT user_id::text, role, extract(epoch FROM added_at)::float8, count(*) OVER () "
          "FROM org.team_members WHERE team_id = $1 ORDER BY role DESC, added_at, user_id "
          "LIMIT $2 OFFSET $3",
          team.id(), page.limit, page.offset);
      int64_t total = rows.empty() ? 0 : rows[0][3].as<int64_t>();
      for (const auto& row : rows) {
        TeamMember* m = response->add_members();
        m->set_team_id(team.id());
        m->set_user_id(row[0].as<std::string>());
        m->set_role(static_cast<TeamMember::Role>(row[1].as<int>()));
        pg::SetTimestamp(m->mutable_added_at(), row[2]);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

}  // namespace sb::org
