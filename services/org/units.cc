// Org units (the "organisation levels" tree), where users sit in it, reporting managers, and the
// scope facts libs/auth asks for.

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

// Every unit of a tenant with its ancestors, in tree order (parents before children, siblings by
// name). Trees are small (hundreds of units), so the whole tree is walked and then filtered.
constexpr char kUnitTree[] =
    "WITH RECURSIVE t(id, parent_id, name, description, created_at, updated_at, path, "
    "ancestors) AS ("
    "  SELECT id, parent_id, name, description, created_at, updated_at, ARRAY[lower(name)], "
    "  ARRAY[]::uuid[] FROM org.org_units WHERE tenant_id = $1 AND parent_id IS NULL "
    "  UNION ALL SELECT u.id, u.parent_id, u.name, u.description, u.created_at, u.updated_at, "
    "  t.path || lower(u.name), t.ancestors || t.id FROM org.org_units u "
    "  JOIN t ON u.parent_id = t.id) "
    "SELECT t.id::text, coalesce(t.parent_id::text, ''), t.name, t.description, "
    "extract(epoch FROM t.created_at)::float8, extract(epoch FROM t.updated_at)::float8, "
    "t.ancestors::text[], "
    "(SELECT count(*) FROM org.user_org_units a WHERE a.org_unit_id = t.id), "
    "(SELECT count(*) FROM org.org_units c WHERE c.parent_id = t.id), "
    "count(*) OVER () FROM t ";

v1::OrgUnit UnitFromRow(const pqxx::row& row, const std::string& tenant_id) {
  v1::OrgUnit u;
  u.set_id(row[0].as<std::string>());
  u.set_tenant_id(tenant_id);
  u.set_parent_id(row[1].as<std::string>());
  u.set_name(row[2].as<std::string>());
  u.set_description(row[3].as<std::string>());
  pg::SetTimestamp(u.mutable_created_at(), row[4]);
  pg::SetTimestamp(u.mutable_updated_at(), row[5]);
  for (std::string& a : pg::TextArray(row[6])) u.add_ancestor_ids(std::move(a));
  u.set_user_count(row[7].as<int>());
  u.set_child_count(row[8].as<int>());
  return u;
}

absl::StatusOr<v1::OrgUnit> LoadUnit(pqxx::work& tx, const std::string& tenant_id,
                                     const std::string& id,
                                     std::string_view field = "org_unit_id") {
  if (!IsUuid(id)) {
    if (id.empty()) return app::FieldError(field, "REQUIRED", "is required");
    return absl::NotFoundError(absl::StrCat(std::string(field), ": org unit not found"));
  }
  pqxx::result r = tx.exec_params(absl::StrCat(kUnitTree, "WHERE t.id = $2"), tenant_id,
                                  absl::AsciiStrToLower(id));
  if (r.empty()) {
    return absl::NotFoundError(
        absl::StrCat(std::string(field), ": org unit '", id.substr(0, 64), "' not found"));
  }
  return UnitFromRow(r[0], tenant_id);
}

absl::Status RequireUnitReached(const auth::Reach& reach, const std::string& unit_id,
                                std::string_view field) {
  if (reach.all || reach.org_unit_ids.contains(unit_id)) return absl::OkStatus();
  return app::FieldError(absl::StatusCode::kPermissionDenied, field, "OUTSIDE_SCOPE",
                         "is not in your org-unit subtree");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Org units

grpc::Status OrgService::CreateOrgUnit(grpc::ServerContext* context,
                                       const v1::CreateOrgUnitRequest* request,
                                       v1::OrgUnit* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    const v1::OrgUnit& in = request->org_unit();
    SB_ASSIGN_OR_RETURN(std::string name, app::NormalizeName(in.name(), "org_unit.name", true));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "org_unit.description", 1000));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      // The reach is read under the tree lock: a concurrent move cannot take the parent out of
      // the caller's subtree between the check and the insert.
      LockTenant(tx, tenant, "tree");
      SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer().ReachFor(caller, perm::kOrgManage));
      std::string parent;
      if (!in.parent_id().empty()) {
        absl::StatusOr<v1::OrgUnit> loaded =
            LoadUnit(tx, tenant, in.parent_id(), "org_unit.parent_id");
        if (!loaded.ok()) return AsBadReference(loaded.status(), "org_unit.parent_id");
        const v1::OrgUnit& p = *loaded;
        SB_RETURN_IF_ERROR(RequireUnitReached(reach, p.id(), "org_unit.parent_id"));
        parent = p.id();
      } else if (!reach.all) {
        return app::FieldError(absl::StatusCode::kPermissionDenied, "org_unit.parent_id",
                               "OUTSIDE_SCOPE",
                               "a root unit needs org.manage for the whole tenant");
      }
      const std::string id = NewUuid();
      pqxx::result r = tx.exec_params(
          "INSERT INTO org.org_units (tenant_id, id, parent_id, name, description) "
          "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, coalesce(parent_id, "
          "'00000000-0000-0000-0000-000000000000'), lower(name)) DO NOTHING RETURNING id",
          tenant, id, pg::NullIfEmpty(parent), name, in.description());
      if (r.empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "org_unit.name", "NAME_TAKEN",
                               absl::StrCat("a unit named '", name, "' exists at that level"));
      }
      SB_ASSIGN_OR_RETURN(*response, LoadUnit(tx, tenant, id));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetOrgUnit(grpc::ServerContext* context,
                                    const v1::GetOrgUnitRequest* request, v1::OrgUnit* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // The tree is no secret inside a tenant: every console needs it for its pickers.
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(*response, LoadUnit(tx, caller.tenant_id, request->org_unit_id()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListOrgUnits(grpc::ServerContext* context,
                                      const v1::ListOrgUnitsRequest* request,
                                      v1::ListOrgUnitsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    const std::string fingerprint =
        absl::StrCat("units|", request->root_id(), "|", request->query());
    SB_ASSIGN_OR_RETURN(app::Page page,
                        app::ParsePage(request->page_size(), request->page_token(), fingerprint));
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    return Run([&](pqxx::work& tx) -> absl::Status {
      std::string root;
      if (!request->root_id().empty()) {
        SB_ASSIGN_OR_RETURN(v1::OrgUnit r,
                            LoadUnit(tx, caller.tenant_id, request->root_id(), "root_id"));
        root = r.id();
      }
      pqxx::result rows = tx.exec_params(
          absl::StrCat(kUnitTree,
                       "WHERE ($2 = '' OR t.id::text = $2 OR $2 = ANY(t.ancestors::text[])) "
                       "AND ($3 = '' OR strpos(lower(t.name), lower($3)) > 0) "
                       "ORDER BY t.path LIMIT $4 OFFSET $5"),
          caller.tenant_id, root, request->query(), page.limit, page.offset);
      int64_t total = rows.empty() ? 0 : rows[0][9].as<int64_t>();
      for (const auto& row : rows) *response->add_org_units() = UnitFromRow(row, caller.tenant_id);
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateOrgUnit(grpc::ServerContext* context,
                                       const v1::UpdateOrgUnitRequest* request,
                                       v1::OrgUnit* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(auto paths,
                        app::MaskPaths(request->update_mask(), {"name", "description"}));
    const v1::OrgUnit& in = request->org_unit();
    SB_ASSIGN_OR_RETURN(std::string name,
                        app::NormalizeName(in.name(), "org_unit.name", paths.contains("name")));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "org_unit.description", 1000));
    SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer().ReachFor(caller, perm::kOrgManage));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::OrgUnit unit, LoadUnit(tx, caller.tenant_id, in.id(), "org_unit.id"));
      SB_RETURN_IF_ERROR(RequireUnitReached(reach, unit.id(), "org_unit.id"));
      if (paths.contains("name") && name != unit.name()) {
        LockTenant(tx, caller.tenant_id, "tree");
        pqxx::result clash = tx.exec_params(
            "SELECT 1 FROM org.org_units WHERE tenant_id = $1 AND id <> $2 AND "
            "parent_id IS NOT DISTINCT FROM $3 AND lower(name) = lower($4)",
            caller.tenant_id, unit.id(), pg::NullIfEmpty(unit.parent_id()), name);
        if (!clash.empty()) {
          return app::FieldError(absl::StatusCode::kAlreadyExists, "org_unit.name", "NAME_TAKEN",
                                 absl::StrCat("a unit named '", name, "' exists at that level"));
        }
        tx.exec_params("UPDATE org.org_units SET name = $2, updated_at = now() WHERE id = $1",
                       unit.id(), name);
      }
      if (paths.contains("description")) {
        tx.exec_params(
            "UPDATE org.org_units SET description = $2, updated_at = now() WHERE id = $1",
            unit.id(), in.description());
      }
      SB_ASSIGN_OR_RETURN(*response, LoadUnit(tx, caller.tenant_id, unit.id()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::MoveOrgUnit(grpc::ServerContext* context,
                                     const v1::MoveOrgUnitRequest* request, v1::OrgUnit* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      // One move at a time per tenant: two concurrent moves could otherwise build a cycle that
      // neither sees.
      LockTenant(tx, tenant, "tree");
      SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer().ReachFor(caller, perm::kOrgManage));
      SB_ASSIGN_OR_RETURN(v1::OrgUnit unit, LoadUnit(tx, tenant, request->org_unit_id()));
      SB_RETURN_IF_ERROR(RequireUnitReached(reach, unit.id(), "org_unit_id"));
      std::string parent;
      if (!request->new_parent_id().empty()) {
        absl::StatusOr<v1::OrgUnit> loaded =
            LoadUnit(tx, tenant, request->new_parent_id(), "new_parent_id");
        if (!loaded.ok()) return AsBadReference(loaded.status(), "new_parent_id");
        const v1::OrgUnit& p = *loaded;
        SB_RETURN_IF_ERROR(RequireUnitReached(reach, p.id(), "new_parent_id"));
        if (p.id() == unit.id() || std::find(p.ancestor_ids().begin(), p.ancestor_ids().end(),
                                             unit.id()) != p.ancestor_ids().end()) {
          return app::FieldError("new_parent_id", "CYCLE",
                                 p.id() == unit.id()
                                     ? "a unit cannot be its own parent"
                                     : "is inside the unit being moved: a unit cannot move under "
                                       "its own descendant");
        }
        parent = p.id();
      } else if (!reach.all) {
        return app::FieldError(absl::StatusCode::kPermissionDenied, "new_parent_id",
                               "OUTSIDE_SCOPE",
                               "making a root unit needs org.manage for the whole tenant");
      }
      if (parent == unit.parent_id()) {
        *response = unit;
        return absl::OkStatus();
      }
      pqxx::result clash = tx.exec_params(
          "SELECT 1 FROM org.org_units WHERE tenant_id = $1 AND id <> $2 AND "
          "parent_id IS NOT DISTINCT FROM $3 AND lower(name) = lower($4)",
          tenant, unit.id(), pg::NullIfEmpty(parent), unit.name());
      if (!clash.empty()) {
        return app::FieldError(
            absl::StatusCode::kAlreadyExists, "new_parent_id", "NAME_TAKEN",
            absl::StrCat("a unit named '", unit.name(), "' exists under the new parent already"));
      }
      tx.exec_params("UPDATE org.org_units SET parent_id = $2, updated_at = now() WHERE id = $1",
                     unit.id(), pg::NullIfEmpty(parent));
      SB_ASSIGN_OR_RETURN(*response, LoadUnit(tx, tenant, unit.id()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteOrgUnit(grpc::ServerContext* context,
                                       const v1::DeleteOrgUnitRequest* request,
                                       google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer().ReachFor(caller, perm::kOrgManage));
    return Run([&](pqxx::work& tx) -> absl::Status {
      LockTenant(tx, caller.tenant_id, "tree");
      SB_ASSIGN_OR_RETURN(v1::OrgUnit unit, LoadUnit(tx, caller.tenant_id, request->org_unit_id()));
      SB_RETURN_IF_ERROR(RequireUnitReached(reach, unit.id(), "org_unit_id"));
      if (unit.user_count() > 0) {
        return app::WithReason(absl::FailedPreconditionError(absl::StrCat(
                                   "org unit '", unit.name(), "' still holds ", unit.user_count(),
                                   " user(s): move them to another unit first")),
                               "ORG_UNIT_HAS_USERS");
      }
      if (unit.child_count() > 0) {
        return app::WithReason(absl::FailedPreconditionError(absl::StrCat(
                                   "org unit '", unit.name(), "' has ", unit.child_count(),
                                   " child unit(s): move or delete them first")),
                               "ORG_UNIT_HAS_CHILDREN");
      }
      tx.exec_params("DELETE FROM org.org_units WHERE tenant_id = $1 AND id = $2", caller.tenant_id,
                     unit.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListOrgUnitUsers(grpc::ServerContext* context,
                                          const v1::ListOrgUnitUsersRequest* request,
                                          v1::ListOrgUnitUsersResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // People see the users their users.read reaches; identity (service credential, filtering
    // ListUsers by unit) filters by the caller's rights itself.
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, ""));
    std::optional<auth::Reach> reach;
    if (access.caller) {
      SB_ASSIGN_OR_RETURN(reach, authorizer().ReachFor(*access.caller, perm::kUsersRead));
    }
    const std::string fingerprint =
        absl::StrCat("unit-users|", request->org_unit_id(), "|", request->include_subtree());
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), request->page_token(),
                                                       fingerprint, 1000));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::OrgUnit unit, LoadUnit(tx, access.tenant_id, request->org_unit_id()));
      pqxx::result rows = tx.exec_params(
          "WITH RECURSIVE t(id) AS (SELECT $2::uuid UNION SELECT u.id FROM org.org_units u "
          "JOIN t ON u.parent_id = t.id WHERE $3) "
          "SELECT DISTINCT a.user_id::text FROM org.user_org_units a JOIN t ON a.org_unit_id = "
          "t.id "
          "WHERE a.tenant_id = $1 ORDER BY 1",
          access.tenant_id, unit.id(), request->include_subtree());
      std::vector<std::string> ids;
      for (const auto& row : rows) {
        std::string id = row[0].as<std::string>();
        if (reach && !reach->all && !reach->user_ids.contains(id) &&
            !reach->org_unit_ids.contains(unit.id())) {
          continue;
        }
        ids.push_back(std::move(id));
      }
      const int64_t total = static_cast<int64_t>(ids.size());
      for (int64_t i = page.offset; i < total && i < page.offset + page.limit; ++i) {
        response->add_user_ids(ids[i]);
      }
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

// ---------------------------------------------------------------------------------------------
// Placement and scope

grpc::Status OrgService::GetUserPlacement(grpc::ServerContext* context,
                                          const v1::GetUserPlacementRequest* request,
                                          v1::UserPlacement* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    if (access.caller) {
      SB_RETURN_IF_ERROR(deps_.directory.RequireUsers(access.tenant_id, {user.value()}, "user_id"));
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      if (access.caller) {
        absl::Status s =
            CheckOnUser(tx, *access.caller, perm::kUsersRead, access.tenant_id, user.value());
        // Whom the caller may not see does not exist for them.
        if (absl::IsPermissionDenied(s)) return absl::NotFoundError("user_id: user not found");
        SB_RETURN_IF_ERROR(s);
      }
      *response = LoadPlacement(tx, access.tenant_id, user.value());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::SetUserOrgUnits(grpc::ServerContext* context,
                                         const v1::SetUserOrgUnitsRequest* request,
                                         v1::UserPlacement* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Identity calls this with the service credential (vouching for the user, whom it may just
    // have created) and the person's token (bounding the units); people may call it directly.
    SB_ASSIGN_OR_RETURN(OnBehalf on, CallerOnBehalf(*context));
    const Access& access = on.access;
    const bool vouched = on.vouched;
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    SB_ASSIGN_OR_RETURN(std::vector<std::string> units,
                        UuidList(request->org_unit_ids(), "org_unit_ids", 50));
    if (!vouched && access.caller) {
      SB_RETURN_IF_ERROR(deps_.directory.RequireUsers(access.tenant_id, {user.value()}, "user_id"));
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = access.tenant_id;
      for (size_t i = 0; i < units.size(); ++i) {
        const std::string field = absl::StrCat("org_unit_ids[", i, "]");
        SB_RETURN_IF_ERROR(AsBadReference(LoadUnit(tx, tenant, units[i], field).status(), field));
      }
      v1::UserPlacement before = LoadPlacement(tx, tenant, user.value());
      // users.manage (local managers placing their staff) or org.manage: whichever reaches further.
      std::optional<auth::Reach> reach;
      if (access.caller) {
        SB_ASSIGN_OR_RETURN(reach, PlacementReach(*access.caller));
      }
      if (reach && !reach->all) {
        if (!vouched && !reach->user_ids.contains(user.value())) {
          return absl::PermissionDeniedError(
              "you may not place this user: they are outside your reach");
        }
        if (units.empty()) {
          return app::FieldError("org_unit_ids", "REQUIRED",
                                 "you manage users inside your org units: name at least one");
        }
        for (size_t i = 0; i < units.size(); ++i) {
          SB_RETURN_IF_ERROR(
              RequireUnitReached(*reach, units[i], absl::StrCat("org_unit_ids[", i, "]")));
        }
        // Nor may they take a user out of a unit they do not manage.
        for (const std::string& old : before.org_unit_ids()) {
          if (std::find(units.begin(), units.end(), old) == units.end()) {
            SB_RETURN_IF_ERROR(RequireUnitReached(*reach, old, "org_unit_ids"));
          }
        }
      }
      tx.exec_params(
          "DELETE FROM org.user_org_units WHERE tenant_id = $1 AND user_id = $2 AND "
          "NOT (org_unit_id::text = ANY($3::text[]))",
          tenant, user.value(), pg::PgArray(units));
      tx.exec_params(
          "INSERT INTO org.user_org_units (tenant_id, user_id, org_unit_id) "
          "SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING",
          tenant, user.value(), pg::PgArray(units));
      *response = LoadPlacement(tx, tenant, user.value());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::SetReportingManager(grpc::ServerContext* context,
                                             const v1::SetReportingManagerRequest* request,
                                             v1::UserPlacement* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    std::string manager;
    if (!request->manager_user_id().empty()) {
      SB_ASSIGN_OR_RETURN(UserId m, UserId::Parse(request->manager_user_id(), "manager_user_id"));
      manager = m.value();
      if (manager == user.value()) {
        return app::FieldError("manager_user_id", "SELF", "a user cannot report to themself");
      }
      SB_RETURN_IF_ERROR(AsBadReference(
          deps_.directory.RequireUsers(caller.tenant_id, {manager}, "manager_user_id"),
          "manager_user_id"));
    }
    SB_RETURN_IF_ERROR(deps_.directory.RequireUsers(caller.tenant_id, {user.value()}, "user_id"));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      // Both ends must be people the caller manages. Becoming someone's manager oneself hands one
      // their whole report tree (REPORTS scope), which may reach far outside the caller's part of
      // the organisation: that takes org.manage for the whole tenant.
      if (manager == caller.user_id &&
          !auth::Authorizer::HoldsTenantWide(caller, perm::kOrgManage)) {
        return app::FieldError(absl::StatusCode::kPermissionDenied, "manager_user_id",
                               "OUTSIDE_SCOPE",
                               "making yourself someone's manager needs org.manage for the whole "
                               "tenant");
      }
      SB_RETURN_IF_ERROR(CheckOnUser(tx, caller, perm::kOrgManage, tenant, user.value()));
      if (!manager.empty()) {
        SB_RETURN_IF_ERROR(CheckOnUser(tx, caller, perm::kOrgManage, tenant, manager));
      }
      // Cycle checks read the whole chain: serialise link changes of the tenant.
      LockTenant(tx, tenant, "managers");
      if (manager.empty()) {
        tx.exec_params("DELETE FROM org.reporting_managers WHERE tenant_id = $1 AND user_id = $2",
                       tenant, user.value());
      } else {
        // Walking up from the new manager must not reach the user.
        pqxx::result cycle = tx.exec_params(
            "WITH RECURSIVE up(id, depth) AS (SELECT $2::uuid, 0 UNION "
            "SELECT m.manager_user_id, up.depth + 1 FROM org.reporting_managers m "
            "JOIN up ON m.user_id = up.id WHERE m.tenant_id = $1 AND up.depth < 1000) "
            "SELECT 1 FROM up WHERE id = $3 LIMIT 1",
            tenant, manager, user.value());
        if (!cycle.empty()) {
          return app::FieldError("manager_user_id", "CYCLE",
                                 "this manager reports (directly or through others) to the user: "
                                 "reporting lines cannot form a cycle");
        }
        tx.exec_params(
            "INSERT INTO org.reporting_managers (tenant_id, user_id, manager_user_id) "
            "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET manager_user_id = "
            "EXCLUDED.manager_user_id, set_at = now()",
            tenant, user.value(), manager);
      }
      *response = LoadPlacement(tx, tenant, user.value());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListReports(grpc::ServerContext* context,
                                     const v1::ListReportsRequest* request,
                                     v1::ListReportsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(UserId manager, UserId::Parse(request->manager_user_id().empty()
                                                          ? caller.user_id
                                                          : request->manager_user_id(),
                                                      "manager_user_id"));
    const std::string fingerprint =
        absl::StrCat("reports|", manager.value(), "|", request->transitive());
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), request->page_token(),
                                                       fingerprint, 1000));
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& tenant = caller.tenant_id;
      std::optional<auth::Reach> reach;
      if (manager.value() != caller.user_id) {
        SB_RETURN_IF_ERROR(CheckOnUser(tx, caller, perm::kUsersRead, tenant, manager.value()));
        // Only the reports the caller may see.
        SB_ASSIGN_OR_RETURN(reach, authorizer().ReachFor(caller, perm::kUsersRead));
        if (reach->all) reach.reset();
      }
      std::vector<std::string> visible;
      if (reach) visible.assign(reach->user_ids.begin(), reach->user_ids.end());
      pqxx::result rows = tx.exec_params(
          "WITH RECURSIVE r(user_id, depth) AS ("
          "  SELECT user_id, 1 FROM org.reporting_managers WHERE tenant_id = $1 AND "
          "  manager_user_id = $2 "
          "  UNION SELECT m.user_id, r.depth + 1 FROM org.reporting_managers m "
          "  JOIN r ON m.manager_user_id = r.user_id WHERE m.tenant_id = $1 AND $3 AND "
          "  r.depth < 1000) "
          "SELECT user_id::text, count(*) OVER () FROM (SELECT DISTINCT user_id FROM r WHERE $6 OR "
          "user_id::text = ANY($7::text[])) d ORDER BY 1 LIMIT $4 OFFSET $5",
          tenant, manager.value(), request->transitive(), page.limit, page.offset, !reach,
          pg::PgArray(visible));
      int64_t total = rows.empty() ? 0 : rows[0][1].as<int64_t>();
      for (const auto& row : rows) response->add_user_ids(row[0].as<std::string>());
      response->set_total_size(static_cast<int32_t>(total));
      response->set_next_page_token(app::NextPageToken(page, total, fingerprint));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ResolveScope(grpc::ServerContext* context,
                                      const v1::ResolveScopeRequest* request,
                                      v1::ResolveScopeResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(TenantId tenant, TenantId::Parse(request->tenant_id(), "tenant_id"));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    const auto scope = static_cast<auth::Scope>(request->scope());
    if (request->scope() < switchboard::common::v1::SCOPE_OWN ||
        request->scope() > switchboard::common::v1::SCOPE_PLATFORM) {
      return app::FieldError("scope", "REQUIRED", "name a scope");
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(auth::Reach reach, ResolveReach(tx, tenant.value(), user.value(), scope));
      response->set_all(reach.all);
      std::vector<std::string> users(reach.user_ids.begin(), reach.user_ids.end());
      std::vector<std::string> teams(reach.team_ids.begin(), reach.team_ids.end());
      std::vector<std::string> units(reach.org_unit_ids.begin(), reach.org_unit_ids.end());
      std::sort(users.begin(), users.end());
      std::sort(teams.begin(), teams.end());
      std::sort(units.begin(), units.end());
      for (auto& u : users) response->add_user_ids(std::move(u));
      for (auto& t : teams) response->add_team_ids(std::move(t));
      for (auto& o : units) response->add_org_unit_ids(std::move(o));
      pg::SetTimestamp(response->mutable_valid_until(), deps_.clock.Now() + absl::Seconds(5));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::CloneUserPlacement(grpc::ServerContext* context,
                                            const v1::CloneUserPlacementRequest* request,
                                            v1::UserPlacement* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(TenantId tenant, TenantId::Parse(request->tenant_id(), "tenant_id"));
    SB_ASSIGN_OR_RETURN(UserId source, UserId::Parse(request->source_user_id(), "source_user_id"));
    SB_ASSIGN_OR_RETURN(UserId target, UserId::Parse(request->target_user_id(), "target_user_id"));
    // Identity sends the person's token: a clone lands only in the units and teams they manage
    // (a local manager cloning someone who also sits in another subtree must not plant a login of
    // their own there).
    SB_ASSIGN_OR_RETURN(OnBehalf on, CallerOnBehalf(*context));
    std::optional<auth::Reach> reach;
    if (on.access.caller) {
      SB_ASSIGN_OR_RETURN(reach, PlacementReach(*on.access.caller));
    }
    const bool all = !reach || reach->all;
    std::vector<std::string> units, teams;
    if (reach) {
      units.assign(reach->org_unit_ids.begin(), reach->org_unit_ids.end());
      teams.assign(reach->team_ids.begin(), reach->team_ids.end());
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& t = tenant.value();
      tx.exec_params(
          "INSERT INTO org.user_org_units (tenant_id, user_id, org_unit_id) SELECT tenant_id, $3, "
          "org_unit_id FROM org.user_org_units WHERE tenant_id = $1 AND user_id = $2 "
          "AND ($4 OR org_unit_id::text = ANY($5::text[])) ON CONFLICT DO NOTHING",
          t, source.value(), target.value(), all, pg::PgArray(units));
      // Memberships, not leadership: a clone of a leader is a member of the leader's teams.
      tx.exec_params(
          "INSERT INTO org.team_members (tenant_id, team_id, user_id, role) SELECT tenant_id, "
          "team_id, $3, $4 FROM org.team_members WHERE tenant_id = $1 AND user_id = $2 "
          "AND ($5 OR team_id::text = ANY($6::text[])) ON CONFLICT DO NOTHING",
          t, source.value(), target.value(), static_cast<int>(v1::TeamMember::ROLE_MEMBER), all,
          pg::PgArray(teams));
      tx.exec_params(
          "INSERT INTO org.reporting_managers (tenant_id, user_id, manager_user_id) SELECT "
          "tenant_id, $3, manager_user_id FROM org.reporting_managers WHERE tenant_id = $1 AND "
          "user_id = $2 AND manager_user_id <> $3 ON CONFLICT DO NOTHING",
          t, source.value(), target.value());
      tx.exec_params(
          "INSERT INTO org.project_agents (tenant_id, project_id, user_id) SELECT tenant_id, "
          "project_id, $3 FROM org.project_agents WHERE tenant_id = $1 AND user_id = $2 "
          "ON CONFLICT DO NOTHING",
          t, source.value(), target.value());
      SB_RETURN_IF_ERROR(CloneAgentProfile(tx, t, source.value(), target.value()));
      *response = LoadPlacement(tx, t, target.value());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ReleaseUser(grpc::ServerContext* context,
                                     const v1::ReleaseUserRequest* request,
                                     google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(TenantId tenant, TenantId::Parse(request->tenant_id(), "tenant_id"));
    SB_ASSIGN_OR_RETURN(UserId user, UserId::Parse(request->user_id(), "user_id"));
    SB_RETURN_IF_ERROR(Run([&](pqxx::work& tx) -> absl::Status {
      const std::string& t = tenant.value();
      const std::string& u = user.value();
      tx.exec_params("DELETE FROM org.user_org_units WHERE tenant_id = $1 AND user_id = $2", t, u);
      tx.exec_params("DELETE FROM org.team_members WHERE tenant_id = $1 AND user_id = $2", t, u);
      // Their reports now have no manager rather than a deleted one.
      tx.exec_params(
          "DELETE FROM org.reporting_managers WHERE tenant_id = $1 AND (user_id = $2 OR "
          "manager_user_id = $2)",
          t, u);
      tx.exec_params("DELETE FROM org.project_agents WHERE tenant_id = $1 AND user_id = $2", t, u);
      // The extension and the seat are free again.
      tx.exec_params("DELETE FROM org.agent_profiles WHERE tenant_id = $1 AND user_id = $2", t, u);
      return absl::OkStatus();
    }));
    DeleteSelection(tenant.value(), user.value());
    return absl::OkStatus();
  }());
}

}  // namespace sb::org
