// Projects (lines of business) and the live project selection of agents' sessions.
//
// A selection lives in Redis, as live state does (DESIGN.md "Data"): one hash per user
//   <prefix><tenant>:sel:<user>   p = primary, s = secondaries (comma-separated), at = ms, sid
// with the selection TTL, and a set of the tenant's selecting users <prefix><tenant>:sels for
// listing (members whose hash has expired are dropped as they are found). A selection ends when it
// is cleared, when its TTL passes, or when the session it was made in ends (logout, disable): a
// read that finds the session revoked deletes it.

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "libs/pg/prepared.h"
#include "libs/redis/client.h"
#include "libs/redis/script.h"
#include "services/org/org_service.h"
#include "spdlog/spdlog.h"

namespace sb::org {
namespace {

namespace perm = auth::perm;
using ::switchboard::common::v1::RecordingPolicy;

constexpr char kProjectColumns[] =
    "p.id::text, p.name, p.description, p.recording_policy, coalesce(p.call_flow_id::text, ''), "
    "coalesce(p.schedule_id::text, ''), p.state, extract(epoch FROM p.created_at)::float8, "
    "extract(epoch FROM p.updated_at)::float8, "
    "(SELECT coalesce(array_agg(n.id::text ORDER BY n.number), '{}') FROM org.numbers n "
    " WHERE n.project_id = p.id), "
    "(SELECT coalesce(array_agg(t.team_id::text ORDER BY t.team_id), '{}') FROM org.project_teams "
    "t "
    " WHERE t.project_id = p.id), "
    "(SELECT coalesce(array_agg(a.user_id::text ORDER BY a.user_id), '{}') FROM org.project_agents "
    "a "
    " WHERE a.project_id = p.id)";

// A user may work a project assigned to them, to one of their teams, or assigned to nobody yet.
constexpr char kWorkable[] =
    "(EXISTS (SELECT 1 FROM org.project_agents a WHERE a.project_id = p.id AND "
    "a.user_id::text = $W) OR EXISTS (SELECT 1 FROM org.project_teams pt JOIN org.team_members m "
    "ON m.team_id = pt.team_id WHERE pt.project_id = p.id AND m.user_id::text = $W) OR "
    "(NOT EXISTS (SELECT 1 FROM org.project_agents a WHERE a.project_id = p.id) AND NOT EXISTS "
    "(SELECT 1 FROM org.project_teams pt WHERE pt.project_id = p.id)))";

std::string Workable(int param) {
  std::string s = kWorkable;
  const std::string p = absl::StrCat("$", param);
  for (size_t at; (at = s.find("$W")) != std::string::npos;) s.replace(at, 2, p);
  return s;
}

v1::Project ProjectFromRow(const pqxx::row& row, const std::string& tenant_id) {
  v1::Project p;
  p.set_id(row[0].as<std::string>());
  p.set_tenant_id(tenant_id);
  p.set_name(row[1].as<std::string>());
  p.set_description(row[2].as<std::string>());
  p.set_recording_policy(static_cast<RecordingPolicy>(row[3].as<int>()));
  p.set_call_flow_id(row[4].as<std::string>());
  p.set_schedule_id(row[5].as<std::string>());
  p.set_state(static_cast<v1::ProjectState>(row[6].as<int>()));
  pg::SetTimestamp(p.mutable_created_at(), row[7]);
  pg::SetTimestamp(p.mutable_updated_at(), row[8]);
  for (std::string& id : pg::TextArray(row[9])) p.add_number_ids(std::move(id));
  for (std::string& id : pg::TextArray(row[10])) p.add_team_ids(std::move(id));
  for (std::string& id : pg::TextArray(row[11])) p.add_agent_user_ids(std::move(id));
  return p;
}

absl::StatusOr<v1::Project> LoadProject(pqxx::work& tx, const std::string& tenant_id,
                                        const std::string& id, std::string_view field) {
  if (id.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (IsUuid(id)) {
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kProjectColumns,
                                    " FROM org.projects p WHERE p.tenant_id = $1 AND p.id = $2"),
                       tenant_id, absl::AsciiStrToLower(id));
    if (!r.empty()) return ProjectFromRow(r[0], tenant_id);
  }
  return absl::NotFoundError(
      absl::StrCat(std::string(field), ": project '", id.substr(0, 64), "' not found"));
}

bool IsWorkable(pqxx::work& tx, const std::string& project_id, const std::string& user_id) {
  return !tx.exec_params(
                absl::StrCat("SELECT 1 FROM org.projects p WHERE p.id = $1 AND ", Workable(2)),
                project_id, user_id)
              .empty();
}

// Who sees every project: those who manage the organisation or read the whole tenant, and
// supervisors (they watch agents of any project); agents see the projects they may work.
bool SeesAllProjects(const auth::Principal& caller) {
  return caller.permissions.HasAny(perm::kOrgManage) ||
         caller.permissions.HasAny(perm::kAgentsSupervise) ||
         auth::Authorizer::HoldsTenantWide(caller, perm::kUsersRead) ||
         auth::Authorizer::HoldsTenantWide(caller, perm::kReportsRead);
}

absl::Status ValidatePolicy(RecordingPolicy policy) {
  if (policy == ::switchboard::common::v1::RECORDING_POLICY_UNSPECIFIED ||
      ::switchboard::common::v1::RecordingPolicy_IsValid(policy)) {
    return absl::OkStatus();
  }
  return app::FieldError("project.recording_policy", "UNKNOWN", "unknown recording policy");
}

absl::Status ValidateFlowId(const std::string& id) {
  // Flows belong to routing; org keeps the reference and routing resolves it.
  if (id.empty() || IsUuid(id)) return absl::OkStatus();
  return app::FieldError("project.call_flow_id", "NOT_UUID", "must be a UUID");
}

}  // namespace

absl::Status OrgService::RequireTeams(pqxx::work& tx, const std::string& tenant_id,
                                      const std::vector<std::string>& team_ids,
                                      std::string_view field) const {
  for (size_t i = 0; i < team_ids.size(); ++i) {
    if (tx.exec_params("SELECT 1 FROM org.teams WHERE tenant_id = $1 AND id = $2", tenant_id,
                       team_ids[i])
            .empty()) {
      return app::FieldError(absl::StrCat(std::string(field), "[", i, "]"), "NOT_FOUND",
                             absl::StrCat("team '", team_ids[i], "' does not exist"));
    }
  }
  return absl::OkStatus();
}

grpc::Status OrgService::CreateProject(grpc::ServerContext* context,
                                       const v1::CreateProjectRequest* request,
                                       v1::Project* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (!auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
      return absl::PermissionDeniedError("projects need org.manage for the whole tenant");
    }
    const v1::Project& in = request->project();
    SB_ASSIGN_OR_RETURN(std::string name, app::NormalizeName(in.name(), "project.name", true));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "project.description", 2000));
    SB_RETURN_IF_ERROR(ValidatePolicy(in.recording_policy()));
    SB_RETURN_IF_ERROR(ValidateFlowId(in.call_flow_id()));
    if (in.state() == v1::PROJECT_STATE_ARCHIVED) {
      return app::FieldError("project.state", "ARCHIVED", "a new project cannot start archived");
    }
    SB_ASSIGN_OR_RETURN(std::vector<std::string> teams,
                        UuidList(in.team_ids(), "project.team_ids"));
    SB_ASSIGN_OR_RETURN(std::vector<std::string> agents,
                        UuidList(in.agent_user_ids(), "project.agent_user_ids"));
    SB_RETURN_IF_ERROR(AsBadReference(
        deps_.directory.RequireUsers(caller.tenant_id, agents, "project.agent_user_ids"),
        "project.agent_user_ids"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_RETURN_IF_ERROR(RequireTeams(tx, tenant, teams, "project.team_ids"));
      SB_RETURN_IF_ERROR(RequireSchedule(tx, tenant, in.schedule_id(), "project.schedule_id"));
      const std::string id = NewUuid();
      const int policy =
          in.recording_policy() == ::switchboard::common::v1::RECORDING_POLICY_UNSPECIFIED
              ? ::switchboard::common::v1::RECORDING_POLICY_INHERIT
              : in.recording_policy();
      pqxx::result r = tx.exec_params(
          "INSERT INTO org.projects (tenant_id, id, name, description, recording_policy, "
          "call_flow_id, schedule_id, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
          "ON CONFLICT (tenant_id, lower(name)) DO NOTHING RETURNING id",
          tenant, id, name, in.description(), policy,
          pg::NullIfEmpty(absl::AsciiStrToLower(in.call_flow_id())),
          pg::NullIfEmpty(absl::AsciiStrToLower(in.schedule_id())),
          static_cast<int>(v1::PROJECT_STATE_ACTIVE));
      if (r.empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "project.name", "NAME_TAKEN",
                               absl::StrCat("a project named '", name, "' exists"));
      }
      SetProjectWorkers(tx, tenant, id, teams, agents);
      SB_ASSIGN_OR_RETURN(*response, LoadProject(tx, tenant, id, "project.id"));
      return absl::OkStatus();
    });
  }());
}

void OrgService::SetProjectWorkers(pqxx::work& tx, const std::string& tenant_id,
                                   const std::string& project_id,
                                   const std::vector<std::string>& team_ids,
                                   const std::vector<std::string>& agent_ids) const {
  tx.exec_params("DELETE FROM org.project_teams WHERE project_id = $1", project_id);
  tx.exec_params("DELETE FROM org.project_agents WHERE project_id = $1", project_id);
  tx.exec_params(
      "INSERT INTO org.project_teams (tenant_id, project_id, team_id) "
      "SELECT $1, $2, unnest($3::uuid[])",
      tenant_id, project_id, pg::PgArray(team_ids));
  tx.exec_params(
      "INSERT INTO org.project_agents (tenant_id, project_id, user_id) "
      "SELECT $1, $2, unnest($3::uuid[])",
      tenant_id, project_id, pg::PgArray(agent_ids));
}

grpc::Status OrgService::GetProject(grpc::ServerContext* context,
                                    const v1::GetProjectRequest* request, v1::Project* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Project p,
                          LoadProject(tx, access.tenant_id, request->project_id(), "project_id"));
      if (access.caller && !SeesAllProjects(*access.caller) &&
          !IsWorkable(tx, p.id(), access.caller->user_id)) {
        return absl::NotFoundError("project_id: project not found");
      }
      *response = std::move(p);
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListProjects(grpc::ServerContext* context,
                                      const v1::ListProjectsRequest* request,
                                      v1::ListProjectsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    std::string workable = request->workable_by_user_id();
    if (!workable.empty() && !IsUuid(workable)) {
      return app::FieldError("workable_by_user_id", "NOT_UUID", "must be a UUID");
    }
    if (!request->team_id().empty() && !IsUuid(request->team_id())) {
      return app::FieldError("team_id", "NOT_UUID", "must be a UUID");
    }
    if (!v1::ProjectState_IsValid(request->state())) {
      return app::FieldError("state", "UNKNOWN", "unknown project state");
    }
    // Agents see what they may work, whatever they ask for.
    if (access.caller && !SeesAllProjects(*access.caller)) workable = access.caller->user_id;
    const int state = request->state() == v1::PROJECT_STATE_UNSPECIFIED ? v1::PROJECT_STATE_ACTIVE
                                                                        : request->state();
    const std::string fingerprint = absl::StrCat("projects|", request->query(), "|", workable, "|",
                                                 request->team_id(), "|", state);
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    return Run([&](pqxx::work& tx) -> absl::Status {
      pqxx::result rows = tx.exec_params(
          absl::StrCat("SELECT ", kProjectColumns,
                       ", count(*) OVER () FROM org.projects p WHERE p.tenant_id = $1 AND "
                       "p.state = $2 AND ($3 = '' OR strpos(lower(p.name), lower($3)) > 0) AND "
                       "($4 = '' OR EXISTS (SELECT 1 FROM org.project_teams t WHERE t.project_id = "
                       "p.id AND t.team_id::text = lower($4))) AND ($5 = '' OR ",
                       Workable(5), ") ORDER BY lower(p.name), p.id LIMIT $6 OFFSET $7"),
          access.tenant_id, state, request->query(), request->team_id(),
          absl::AsciiStrToLower(workable), page.limit, page.offset);
      int64_t total = rows.empty() ? 0 : rows[0][12].as<int64_t>();
      for (const auto& row : rows)
        *response->add_projects() = ProjectFromRow(row, access.tenant_id);
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateProject(grpc::ServerContext* context,
                                       const v1::UpdateProjectRequest* request,
                                       v1::Project* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (!auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
      return absl::PermissionDeniedError("projects need org.manage for the whole tenant");
    }
    SB_ASSIGN_OR_RETURN(auto paths,
                        app::MaskPaths(request->update_mask(),
                                       {"name", "description", "recording_policy", "team_ids",
                                        "agent_user_ids", "call_flow_id", "schedule_id", "state"}));
    const v1::Project& in = request->project();
    SB_ASSIGN_OR_RETURN(std::string name,
                        app::NormalizeName(in.name(), "project.name", paths.contains("name")));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "project.description", 2000));
    SB_RETURN_IF_ERROR(ValidatePolicy(in.recording_policy()));
    SB_RETURN_IF_ERROR(ValidateFlowId(in.call_flow_id()));
    if (paths.contains("state") &&
        (in.state() == v1::PROJECT_STATE_UNSPECIFIED || !v1::ProjectState_IsValid(in.state()))) {
      return app::FieldError("project.state", "REQUIRED", "must be ACTIVE or ARCHIVED");
    }
    SB_ASSIGN_OR_RETURN(std::vector<std::string> teams,
                        UuidList(in.team_ids(), "project.team_ids"));
    SB_ASSIGN_OR_RETURN(std::vector<std::string> agents,
                        UuidList(in.agent_user_ids(), "project.agent_user_ids"));
    if (paths.contains("agent_user_ids")) {
      SB_RETURN_IF_ERROR(AsBadReference(
          deps_.directory.RequireUsers(caller.tenant_id, agents, "project.agent_user_ids"),
          "project.agent_user_ids"));
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      SB_ASSIGN_OR_RETURN(v1::Project p, LoadProject(tx, tenant, in.id(), "project.id"));
      if (paths.contains("name") && name != p.name()) {
        if (!tx.exec_params("SELECT 1 FROM org.projects WHERE tenant_id = $1 AND id <> $2 AND "
                            "lower(name) = lower($3)",
                            tenant, p.id(), name)
                 .empty()) {
          return app::FieldError(absl::StatusCode::kAlreadyExists, "project.name", "NAME_TAKEN",
                                 absl::StrCat("a project named '", name, "' exists"));
        }
        tx.exec_params("UPDATE org.projects SET name = $2 WHERE id = $1", p.id(), name);
      }
      if (paths.contains("description")) {
        tx.exec_params("UPDATE org.projects SET description = $2 WHERE id = $1", p.id(),
                       in.description());
      }
      if (paths.contains("recording_policy")) {
        const int policy =
            in.recording_policy() == ::switchboard::common::v1::RECORDING_POLICY_UNSPECIFIED
                ? ::switchboard::common::v1::RECORDING_POLICY_INHERIT
                : in.recording_policy();
        tx.exec_params("UPDATE org.projects SET recording_policy = $2 WHERE id = $1", p.id(),
                       policy);
      }
      if (paths.contains("call_flow_id")) {
        tx.exec_params("UPDATE org.projects SET call_flow_id = $2 WHERE id = $1", p.id(),
                       pg::NullIfEmpty(absl::AsciiStrToLower(in.call_flow_id())));
      }
      if (paths.contains("schedule_id")) {
        SB_RETURN_IF_ERROR(RequireSchedule(tx, tenant, in.schedule_id(), "project.schedule_id"));
        tx.exec_params("UPDATE org.projects SET schedule_id = $2 WHERE id = $1", p.id(),
                       pg::NullIfEmpty(absl::AsciiStrToLower(in.schedule_id())));
      }
      if (paths.contains("state")) {
        tx.exec_params("UPDATE org.projects SET state = $2 WHERE id = $1", p.id(),
                       static_cast<int>(in.state()));
      }
      if (paths.contains("team_ids") || paths.contains("agent_user_ids")) {
        SB_RETURN_IF_ERROR(RequireTeams(tx, tenant, teams, "project.team_ids"));
        const std::vector<std::string> old_teams(p.team_ids().begin(), p.team_ids().end());
        const std::vector<std::string> old_agents(p.agent_user_ids().begin(),
                                                  p.agent_user_ids().end());
        SetProjectWorkers(tx, tenant, p.id(), paths.contains("team_ids") ? teams : old_teams,
                          paths.contains("agent_user_ids") ? agents : old_agents);
      }
      tx.exec_params("UPDATE org.projects SET updated_at = now() WHERE id = $1", p.id());
      SB_ASSIGN_OR_RETURN(*response, LoadProject(tx, tenant, p.id(), "project.id"));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteProject(grpc::ServerContext* context,
                                       const v1::DeleteProjectRequest* request,
                                       google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    if (!auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
      return absl::PermissionDeniedError("projects need org.manage for the whole tenant");
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Project p,
                          LoadProject(tx, caller.tenant_id, request->project_id(), "project_id"));
      if (p.number_ids_size() > 0) {
        return app::WithReason(
            absl::FailedPreconditionError(absl::StrCat(
                "project '", p.name(), "' still has ", p.number_ids_size(),
                " number(s): move them to another project, or archive the project instead")),
            "PROJECT_HAS_NUMBERS");
      }
      tx.exec_params("DELETE FROM org.projects WHERE tenant_id = $1 AND id = $2", caller.tenant_id,
                     p.id());
      return absl::OkStatus();
    });
  }());
}

// ---------------------------------------------------------------------------------------------
// Project selection

std::string OrgService::SelectionKey(const std::string& tenant_id,
                                     const std::string& user_id) const {
  return absl::StrCat(options_.redis_prefix, tenant_id, ":sel:", user_id);
}

std::string OrgService::SelectionIndexKey(const std::string& tenant_id) const {
  return absl::StrCat(options_.redis_prefix, tenant_id, ":sels");
}

void OrgService::DeleteSelection(const std::string& tenant_id, const std::string& user_id) {
  absl::StatusOr<std::vector<redis::Reply>> r = deps_.redis.Pipeline(
      {{"DEL", SelectionKey(tenant_id, user_id)}, {"SREM", SelectionIndexKey(tenant_id), user_id}});
  if (!r.ok()) {
    // The TTL ends it anyway; routing never offers calls of projects the user cannot work.
    spdlog::warn("org: could not delete the project selection of {}: {}", user_id,
                 r.status().ToString());
  }
}

void OrgService::DropEndedSelection(const std::string& tenant_id, const std::string& user_id,
                                    const std::string& session) {
  // Only what the reader saw: a selection made again since (a new session, or after the TTL)
  // stays, and stays listed.
  static const redis::Script kDrop(
      "local sid = redis.call('HGET', KEYS[1], 'sid') "
      "if not sid then redis.call('SREM', KEYS[2], ARGV[1]) return 1 end "
      "if ARGV[2] ~= '' and sid == ARGV[2] then redis.call('DEL', KEYS[1]) "
      "redis.call('SREM', KEYS[2], ARGV[1]) return 1 end return 0");
  absl::StatusOr<redis::Reply> r = deps_.redis.Eval(
      kDrop, {SelectionKey(tenant_id, user_id), SelectionIndexKey(tenant_id)}, {user_id, session});
  if (!r.ok()) {
    spdlog::warn("org: could not drop the ended project selection of {}: {}", user_id,
                 r.status().ToString());
  }
}

std::optional<v1::ProjectSelection> OrgService::SelectionFromHash(
    const std::string& tenant_id, const std::string& user_id, const redis::Reply& hash,
    std::string* ended_session) const {
  if (!hash.is_array() || hash.elements().empty()) return std::nullopt;
  v1::ProjectSelection sel;
  sel.set_user_id(user_id);
  sel.set_tenant_id(tenant_id);
  std::string session;
  int64_t at_ms = 0;
  const auto& e = hash.elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    const std::string& k = e[i].str();
    const std::string& v = e[i + 1].str();
    if (k == "p") {
      sel.set_primary_project_id(v);
    } else if (k == "s") {
      for (absl::string_view id : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        sel.add_secondary_project_ids(std::string(id));
      }
    } else if (k == "at") {
      (void)absl::SimpleAtoi(v, &at_ms);
    } else if (k == "sid") {
      session = v;
    }
  }
  pg::SetTimestamp(sel.mutable_selected_at(), absl::FromUnixMillis(at_ms));
  if (!session.empty() && deps_.revocations != nullptr) {
    // The session's revocation, not the user's: a role change revokes the user's earlier tokens
    // but does not end their working session's selection.
    auth::Principal p;
    p.tenant_id = tenant_id;
    p.user_id = user_id;
    p.session_id = session;
    p.issued_at = absl::InfiniteFuture();
    if (absl::IsUnauthenticated(deps_.revocations->Check(p))) {
      *ended_session = session;
      return std::nullopt;
    }
  }
  return sel;
}

grpc::Status OrgService::GetProjectSelection(grpc::ServerContext* context,
                                             const v1::GetProjectSelectionRequest* request,
                                             v1::ProjectSelection* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    std::string user = request->user_id();
    if (user.empty()) {
      if (!access.caller) return app::FieldError("user_id", "REQUIRED", "is required");
      user = access.caller->user_id;
    }
    SB_ASSIGN_OR_RETURN(UserId id, UserId::Parse(user, "user_id"));
    if (access.caller && id.value() != access.caller->user_id) {
      SB_RETURN_IF_ERROR(Run([&](pqxx::work& tx) {
        return CheckOnUser(tx, *access.caller, perm::kAgentsSupervise, access.tenant_id,
                           id.value());
      }));
    }
    SB_ASSIGN_OR_RETURN(
        redis::Reply hash,
        deps_.redis.Command({"HGETALL", SelectionKey(access.tenant_id, id.value())}));
    std::string ended;
    std::optional<v1::ProjectSelection> sel =
        SelectionFromHash(access.tenant_id, id.value(), hash, &ended);
    if (!sel) {
      DropEndedSelection(access.tenant_id, id.value(), ended);
      return absl::NotFoundError("no project selection in this session");
    }
    *response = *std::move(sel);
    return absl::OkStatus();
  }());
}

grpc::Status OrgService::SetProjectSelection(grpc::ServerContext* context,
                                             const v1::SetProjectSelectionRequest* request,
                                             v1::ProjectSelection* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    const bool self = request->user_id().empty() || request->user_id() == caller.user_id;
    SB_ASSIGN_OR_RETURN(UserId user,
                        UserId::Parse(self ? caller.user_id : request->user_id(), "user_id"));
    const std::string& tenant = caller.tenant_id;
    SB_ASSIGN_OR_RETURN(std::vector<std::string> secondary,
                        UuidList(request->secondary_project_ids(), "secondary_project_ids", 20));
    std::string primary = absl::AsciiStrToLower(request->primary_project_id());
    if (primary.empty() && !secondary.empty()) {
      return app::FieldError("primary_project_id", "REQUIRED",
                             "choose a primary project before secondary ones");
    }
    for (size_t i = 0; i < secondary.size(); ++i) {
      if (secondary[i] == primary) {
        return app::FieldError(absl::StrCat("secondary_project_ids[", i, "]"), "REPEATED",
                               "is the primary project already");
      }
    }
    SB_RETURN_IF_ERROR(Run([&](pqxx::work& tx) -> absl::Status {
      if (self) {
        if (!caller.permissions.HasAny(perm::kProjectsSelect)) {
          return absl::PermissionDeniedError("permission projects.select is required");
        }
      } else {
        SB_RETURN_IF_ERROR(CheckOnUser(tx, caller, perm::kAgentsSupervise, tenant, user.value()));
      }
      std::vector<std::pair<std::string, std::string>> chosen;
      if (!primary.empty()) chosen.emplace_back(primary, "primary_project_id");
      for (size_t i = 0; i < secondary.size(); ++i) {
        chosen.emplace_back(secondary[i], absl::StrCat("secondary_project_ids[", i, "]"));
      }
      for (const auto& [id, field] : chosen) {
        absl::StatusOr<v1::Project> loaded = LoadProject(tx, tenant, id, field);
        if (!loaded.ok()) return AsBadReference(loaded.status(), field);
        const v1::Project& p = *loaded;
        if (p.state() != v1::PROJECT_STATE_ACTIVE) {
          return app::WithReason(absl::FailedPreconditionError(
                                     absl::StrCat(field, ": project '", p.name(), "' is archived")),
                                 "PROJECT_ARCHIVED");
        }
        if (!IsWorkable(tx, p.id(), user.value())) {
          return app::FieldError(
              absl::StatusCode::kPermissionDenied, field, "NOT_WORKABLE",
              absl::StrCat("project '", p.name(),
                           "' is not one this agent works (by team or by name)"));
        }
      }
      return absl::OkStatus();
    }));
    if (primary.empty()) {
      DeleteSelection(tenant, user.value());
      response->set_user_id(user.value());
      response->set_tenant_id(tenant);
      return absl::OkStatus();
    }
    const absl::Time now = deps_.clock.Now();
    const std::string key = SelectionKey(tenant, user.value());
    const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.selection_ttl));
    SB_ASSIGN_OR_RETURN(
        std::vector<redis::Reply> replies,
        deps_.redis.Pipeline(
            {{"MULTI"},
             {"DEL", key},
             {"HSET", key, "p", primary, "s", absl::StrJoin(secondary, ","), "at",
              absl::StrCat(absl::ToUnixMillis(now)), "sid", self ? caller.session_id : ""},
             {"EXPIRE", key, ttl},
             {"SADD", SelectionIndexKey(tenant), user.value()},
             {"EXEC"}}));
    for (const redis::Reply& r : replies) SB_RETURN_IF_ERROR(r.ToStatus());
    // EXEC answers each queued command's reply (nil when the transaction was aborted).
    if (!replies.back().is_array()) return absl::UnavailableError("redis: selection not saved");
    for (const redis::Reply& r : replies.back().elements()) SB_RETURN_IF_ERROR(r.ToStatus());
    response->set_user_id(user.value());
    response->set_tenant_id(tenant);
    response->set_primary_project_id(primary);
    for (const auto& s : secondary) response->add_secondary_project_ids(s);
    pg::SetTimestamp(response->mutable_selected_at(),
                     absl::FromUnixMillis(absl::ToUnixMillis(now)));
    return absl::OkStatus();
  }());
}

grpc::Status OrgService::ListProjectSelections(grpc::ServerContext* context,
                                               const v1::ListProjectSelectionsRequest* request,
                                               v1::ListProjectSelectionsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    const std::string project = absl::AsciiStrToLower(request->project_id());
    const std::string team = absl::AsciiStrToLower(request->team_id());
    if (!project.empty() && !IsUuid(project)) {
      return app::FieldError("project_id", "NOT_UUID", "must be a UUID");
    }
    if (!team.empty() && !IsUuid(team))
      return app::FieldError("team_id", "NOT_UUID", "must be a UUID");
    const std::string fingerprint =
        absl::StrCat("selections|", project, "|", request->primary_only(), "|", team);
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), request->page_token(),
                                                       fingerprint, 1000));
    std::optional<auth::Reach> reach;
    if (access.caller) {
      SB_ASSIGN_OR_RETURN(reach, authorizer().ReachFor(*access.caller, perm::kAgentsSupervise));
    }
    // Selections are checked when made; the project may have changed since (archived, a team or
    // an agent taken off it). Routing offers calls from this list, so it is checked again here.
    bool project_open = true;
    std::optional<absl::flat_hash_set<std::string>> workers;
    if (!project.empty()) {
      // Asked on every inbound call: one prepared statement, no BEGIN/COMMIT round trips. The
      // project by its primary key; whether anyone is named to work it, and who (by the primary
      // keys of project_agents and project_teams, and team_members').
      SB_RETURN_IF_ERROR(deps_.pg.Read([&](pqxx::nontransaction& tx) -> absl::Status {
        pqxx::result p = pg::ExecPrepared(
            tx, "org_project_workers",
            "SELECT state, EXISTS (SELECT 1 FROM org.project_agents a WHERE a.project_id = p.id) "
            "OR EXISTS (SELECT 1 FROM org.project_teams t WHERE t.project_id = p.id), "
            "ARRAY(SELECT a.user_id::text FROM org.project_agents a WHERE a.project_id = p.id "
            "UNION SELECT m.user_id::text FROM org.project_teams t JOIN org.team_members m ON "
            "m.team_id = t.team_id WHERE t.project_id = p.id) "
            "FROM org.projects p WHERE p.tenant_id = $1 AND p.id = $2",
            access.tenant_id, project);
        if (p.empty()) return absl::NotFoundError("project_id: project not found");
        project_open = p[0][0].as<int>() == v1::PROJECT_STATE_ACTIVE;
        if (p[0][1].as<bool>()) {
          workers.emplace();
          for (std::string& user : pg::TextArray(p[0][2])) workers->insert(std::move(user));
        }
        return absl::OkStatus();
      }));
    }
    absl::flat_hash_set<std::string> in_team;
    if (!team.empty()) {
      SB_RETURN_IF_ERROR(Run([&](pqxx::work& tx) -> absl::Status {
        for (const auto& row : tx.exec_params(
                 "SELECT m.user_id::text FROM org.team_members m JOIN org.teams t ON t.id = "
                 "m.team_id WHERE t.tenant_id = $1 AND t.id = $2",
                 access.tenant_id, team)) {
          in_team.insert(row[0].as<std::string>());
        }
        return absl::OkStatus();
      }));
    }
    SB_ASSIGN_OR_RETURN(redis::Reply members,
                        deps_.redis.Command({"SMEMBERS", SelectionIndexKey(access.tenant_id)}));
    std::vector<std::string> users;
    for (const redis::Reply& m : members.elements()) users.push_back(m.str());
    std::sort(users.begin(), users.end());
    std::vector<std::vector<std::string>> commands;
    for (const auto& u : users) commands.push_back({"HGETALL", SelectionKey(access.tenant_id, u)});
    SB_ASSIGN_OR_RETURN(std::vector<redis::Reply> hashes, deps_.redis.Pipeline(commands));
    struct Row {
      bool primary;
      v1::ProjectSelection sel;
    };
    std::vector<Row> rows;
    for (size_t i = 0; i < users.size(); ++i) {
      std::string ended;
      std::optional<v1::ProjectSelection> sel =
          SelectionFromHash(access.tenant_id, users[i], hashes[i], &ended);
      if (!sel) {
        DropEndedSelection(access.tenant_id, users[i], ended);
        continue;
      }
      if (reach && !reach->all && !reach->user_ids.contains(users[i])) continue;
      if (!team.empty() && !in_team.contains(users[i])) continue;
      if (!project.empty() && (!project_open || (workers && !workers->contains(users[i])))) {
        continue;
      }
      const bool is_primary = sel->primary_project_id() == project;
      if (!project.empty()) {
        const bool is_secondary =
            std::find(sel->secondary_project_ids().begin(), sel->secondary_project_ids().end(),
                      project) != sel->secondary_project_ids().end();
        if (!is_primary && (request->primary_only() || !is_secondary)) continue;
      }
      rows.push_back({is_primary, *std::move(sel)});
    }
    // For a project: those who chose it as primary first (they get its calls first), then by
    // how long they have been selecting.
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      if (a.primary != b.primary) return a.primary;
      return pg::FromProto(a.sel.selected_at()) < pg::FromProto(b.sel.selected_at());
    });
    const int64_t total = static_cast<int64_t>(rows.size());
    for (int64_t i = page.offset; i < total && i < page.offset + page.limit; ++i) {
      *response->add_selections() = std::move(rows[i].sel);
    }
    response->set_total_size(static_cast<int32_t>(total));
    response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
    return absl::OkStatus();
  }());
}

}  // namespace sb::org
