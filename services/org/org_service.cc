#include "services/org/org_service.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "libs/redis/client.h"

namespace sb::org {

// Org's own scope facts: read from its tables in a transaction of their own, not cached, so that a
// change of the tree or a team shows in the next decision org makes.
class OrgService::LocalScopeFacts final : public auth::ScopeFacts {
 public:
  explicit LocalScopeFacts(const OrgService& service) : service_(service) {}

  absl::StatusOr<std::shared_ptr<const auth::Reach>> Resolve(std::string_view tenant_id,
                                                             std::string_view user_id,
                                                             auth::Scope scope) override {
    auto reach = std::make_shared<auth::Reach>();
    if (ambient_tx_ != nullptr) {
      SB_ASSIGN_OR_RETURN(*reach, service_.ResolveReach(*ambient_tx_, std::string(tenant_id),
                                                        std::string(user_id), scope));
      return std::shared_ptr<const auth::Reach>(std::move(reach));
    }
    SB_RETURN_IF_ERROR(service_.deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(
          *reach, service_.ResolveReach(tx, std::string(tenant_id), std::string(user_id), scope));
      return absl::OkStatus();
    }));
    return std::shared_ptr<const auth::Reach>(std::move(reach));
  }

 private:
  const OrgService& service_;
};

OrgService::OrgService(OrgDeps deps, OrgOptions options)
    : deps_(deps),
      options_(std::move(options)),
      facts_(std::make_unique<LocalScopeFacts>(*this)),
      authorizer_(std::make_unique<auth::Authorizer>(*facts_)) {}

OrgService::~OrgService() = default;

absl::StatusOr<auth::Reach> OrgService::ResolveReach(pqxx::work& tx, const std::string& tenant_id,
                                                     const std::string& user_id,
                                                     auth::Scope scope) const {
  auth::Reach reach;
  reach.user_ids.insert(user_id);
  if (!IsUuid(user_id) || !IsUuid(tenant_id)) return reach;
  switch (scope) {
    case auth::Scope::kTenant:
    case auth::Scope::kPlatform:
      reach.all = true;
      return reach;
    case auth::Scope::kTeam:
      // The teams the user leads and everyone in them.
      for (const auto& row :
           tx.exec_params("SELECT l.team_id::text, m.user_id::text FROM org.team_members l "
                          "JOIN org.team_members m ON m.team_id = l.team_id "
                          "WHERE l.tenant_id = $1 AND l.user_id = $2 AND l.role = $3",
                          tenant_id, user_id, static_cast<int>(v1::TeamMember::ROLE_LEADER))) {
        reach.team_ids.insert(row[0].as<std::string>());
        reach.user_ids.insert(row[1].as<std::string>());
      }
      return reach;
    case auth::Scope::kReports:
      for (const auto& row :
           tx.exec_params("WITH RECURSIVE r(user_id) AS ("
                          "  SELECT user_id FROM org.reporting_managers "
                          "  WHERE tenant_id = $1 AND manager_user_id = $2 "
                          "  UNION SELECT m.user_id FROM org.reporting_managers m "
                          "  JOIN r ON m.manager_user_id = r.user_id WHERE m.tenant_id = $1) "
                          "SELECT user_id::text FROM r",
                          tenant_id, user_id)) {
        reach.user_ids.insert(row[0].as<std::string>());
      }
      return reach;
    case auth::Scope::kOrgUnit: {
      for (const auto& row : tx.exec_params(
               "WITH RECURSIVE t(id) AS ("
               "  SELECT org_unit_id FROM org.user_org_units WHERE tenant_id = $1 AND user_id = $2 "
               "  UNION SELECT u.id FROM org.org_units u JOIN t ON u.parent_id = t.id "
               "  WHERE u.tenant_id = $1) "
               "SELECT t.id::text, a.user_id::text FROM t "
               "LEFT JOIN org.user_org_units a ON a.org_unit_id = t.id",
               tenant_id, user_id)) {
        reach.org_unit_ids.insert(row[0].as<std::string>());
        if (!row[1].is_null()) reach.user_ids.insert(row[1].as<std::string>());
      }
      return reach;
    }
    case auth::Scope::kOwn:
    case auth::Scope::kUnspecified:
      return reach;
  }
  return reach;
}

absl::StatusOr<auth::Principal> OrgService::Caller(grpc::ServerContext& context) const {
  SB_ASSIGN_OR_RETURN(auth::Principal caller, deps_.authenticator.Authenticate(context));
  SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
  return caller;
}

absl::Status OrgService::RequireInternal(grpc::ServerContext& context) const {
  return deps_.authenticator.RequireService(context);
}

absl::StatusOr<std::string> OrgService::TenantFor(const auth::Principal& caller,
                                                  const std::string& requested) const {
  if (requested.empty() || requested == caller.tenant_id) return caller.tenant_id;
  if (!caller.is_platform_admin()) return absl::NotFoundError("tenant not found");
  SB_ASSIGN_OR_RETURN(TenantId id, TenantId::Parse(requested, "tenant_id"));
  return id.value();
}

absl::StatusOr<OrgService::Access> OrgService::CallerOrService(
    grpc::ServerContext& context, const std::string& requested_tenant) const {
  Access access;
  if (RequireInternal(context).ok()) {
    const std::string tenant =
        requested_tenant.empty() ? app::CallContext::From(context).tenant_id : requested_tenant;
    SB_ASSIGN_OR_RETURN(TenantId id, TenantId::Parse(tenant, "tenant_id"));
    access.tenant_id = id.value();
    return access;
  }
  SB_ASSIGN_OR_RETURN(access.caller, Caller(context));
  SB_ASSIGN_OR_RETURN(access.tenant_id, TenantFor(*access.caller, requested_tenant));
  return access;
}

absl::StatusOr<OrgService::OnBehalf> OrgService::CallerOnBehalf(
    grpc::ServerContext& context) const {
  OnBehalf out;
  const app::CallContext call = app::CallContext::From(context);
  if (RequireInternal(context).ok() && !call.bearer_token.empty()) {
    out.vouched = true;
    SB_ASSIGN_OR_RETURN(out.access.caller, Caller(context));
    SB_ASSIGN_OR_RETURN(out.access.tenant_id, TenantFor(*out.access.caller, call.tenant_id));
    return out;
  }
  SB_ASSIGN_OR_RETURN(out.access, CallerOrService(context, ""));
  return out;
}

absl::StatusOr<auth::Reach> OrgService::PlacementReach(const auth::Principal& caller) const {
  absl::StatusOr<auth::Reach> by_users = authorizer().ReachFor(caller, auth::perm::kUsersManage);
  absl::StatusOr<auth::Reach> by_org = authorizer().ReachFor(caller, auth::perm::kOrgManage);
  if (!by_users.ok() && !by_org.ok()) {
    return absl::IsPermissionDenied(by_users.status()) ? by_org.status() : by_users.status();
  }
  auth::Reach reach;
  for (const auto* r : {&by_users, &by_org}) {
    if (!r->ok()) {
      if (!absl::IsPermissionDenied(r->status())) return r->status();
      continue;
    }
    reach.all |= (*r)->all;
    reach.user_ids.insert((*r)->user_ids.begin(), (*r)->user_ids.end());
    reach.team_ids.insert((*r)->team_ids.begin(), (*r)->team_ids.end());
    reach.org_unit_ids.insert((*r)->org_unit_ids.begin(), (*r)->org_unit_ids.end());
  }
  return reach;
}

v1::UserPlacement OrgService::LoadPlacement(pqxx::work& tx, const std::string& tenant_id,
                                            const std::string& user_id) const {
  v1::UserPlacement p;
  p.set_user_id(user_id);
  p.set_tenant_id(tenant_id);
  if (!IsUuid(user_id)) return p;
  for (const auto& row : tx.exec_params(
           "SELECT org_unit_id::text FROM org.user_org_units WHERE tenant_id = $1 AND user_id = $2 "
           "ORDER BY assigned_at, org_unit_id",
           tenant_id, user_id)) {
    p.add_org_unit_ids(row[0].as<std::string>());
  }
  for (const auto& row : tx.exec_params(
           "SELECT team_id::text, role FROM org.team_members WHERE tenant_id = $1 AND user_id = $2 "
           "ORDER BY added_at, team_id",
           tenant_id, user_id)) {
    p.add_team_ids(row[0].as<std::string>());
    if (row[1].as<int>() == v1::TeamMember::ROLE_LEADER)
      p.add_led_team_ids(row[0].as<std::string>());
  }
  pqxx::result m = tx.exec_params(
      "SELECT manager_user_id::text FROM org.reporting_managers WHERE tenant_id = $1 AND "
      "user_id = $2",
      tenant_id, user_id);
  if (!m.empty()) p.set_reporting_manager_user_id(m[0][0].as<std::string>());
  return p;
}

auth::Resource OrgService::UserResource(pqxx::work& tx, const std::string& tenant_id,
                                        const std::string& user_id) const {
  v1::UserPlacement p = LoadPlacement(tx, tenant_id, user_id);
  auth::Resource r{.type = "user", .tenant_id = tenant_id, .owner_user_id = user_id};
  r.team_ids.assign(p.team_ids().begin(), p.team_ids().end());
  r.org_unit_ids.assign(p.org_unit_ids().begin(), p.org_unit_ids().end());
  return r;
}

absl::Status OrgService::CheckOnUser(pqxx::work& tx, const auth::Principal& caller,
                                     std::string_view permission, const std::string& tenant_id,
                                     const std::string& user_id) const {
  return authorizer().Check(caller, permission, UserResource(tx, tenant_id, user_id));
}

absl::StatusOr<std::vector<std::string>> OrgService::UuidList(
    const google::protobuf::RepeatedPtrField<std::string>& ids, std::string_view field,
    size_t max) {
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < ids.size(); ++i) {
    if (!IsUuid(ids[i])) {
      return app::FieldError(absl::StrCat(std::string(field), "[", i, "]"), "NOT_UUID",
                             "must be a UUID");
    }
    std::string id = absl::AsciiStrToLower(ids[i]);
    if (seen.insert(id).second) out.push_back(std::move(id));
  }
  if (out.size() > max) {
    return app::FieldError(field, "TOO_MANY", absl::StrCat("at most ", max, " per request"));
  }
  return out;
}

absl::Status OrgService::RequireSchedule(pqxx::work& tx, const std::string& tenant_id,
                                         const std::string& id, std::string_view field) {
  if (id.empty()) return absl::OkStatus();
  if (IsUuid(id) && !tx.exec_params("SELECT 1 FROM org.schedules WHERE tenant_id = $1 AND id = $2",
                                    tenant_id, absl::AsciiStrToLower(id))
                         .empty()) {
    return absl::OkStatus();
  }
  return app::FieldError(field, "NOT_FOUND",
                         absl::StrCat("schedule '", id.substr(0, 64), "' does not exist"));
}

absl::Status OrgService::AsBadReference(absl::Status status, std::string_view field) {
  if (!absl::IsNotFound(status)) return status;
  return app::FieldError(field, "NOT_FOUND", std::string(status.message()));
}

void OrgService::LockTenant(pqxx::work& tx, const std::string& tenant_id, std::string_view topic) {
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                 absl::StrCat("org:", std::string(topic), ":", tenant_id));
}

}  // namespace sb::org
