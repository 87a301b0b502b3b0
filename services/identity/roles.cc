// Roles and permissions: the catalog, built-in and custom roles, per-user overrides.

#include <set>

#include "absl/strings/str_cat.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "services/identity/builtin_roles.h"
#include "services/identity/identity_service.h"

namespace sb::identity {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr char kRoleColumns[] =
    "r.id, r.tenant_id, r.name, r.display_name, r.description, r.permissions, "
    "(SELECT count(*) FROM identity.user_roles ur JOIN identity.users u ON u.id = ur.user_id "
    "WHERE ur.tenant_id = r.tenant_id AND ur.role_id = r.id::text AND u.state <> 3), "
    "extract(epoch FROM r.created_at)::float8, extract(epoch FROM r.updated_at)::float8";

void AddGrants(const auth::PermissionSet& set,
               google::protobuf::RepeatedPtrField<v1::PermissionGrant>* out) {
  for (const auth::Grant& g : set.Grants()) {
    v1::PermissionGrant* p = out->Add();
    p->set_permission(g.permission);
    p->set_scope(static_cast<cv1::Scope>(g.scope));
  }
}

void FillUserPermissions(const UserAccess& access, const std::string& user_id,
                         v1::UserPermissions* out) {
  out->set_user_id(user_id);
  for (const auto& r : access.role_ids) out->add_role_ids(r);
  for (const auto& o : access.overrides) *out->add_overrides() = o;
  AddGrants(access.effective, out->mutable_effective());
}

v1::Role RoleFromRow(const pqxx::row& row) {
  v1::Role role;
  role.set_id(row[0].as<std::string>());
  role.set_tenant_id(row[1].as<std::string>());
  role.set_name(row[2].as<std::string>());
  role.set_display_name(row[3].as<std::string>());
  role.set_description(row[4].as<std::string>());
  AddGrants(auth::PermissionSet::FromTexts(pg::TextArray(row[5])), role.mutable_permissions());
  role.set_user_count(static_cast<int32_t>(row[6].as<int64_t>()));
  pg::SetTimestamp(role.mutable_created_at(), row[7]);
  pg::SetTimestamp(role.mutable_updated_at(), row[8]);
  return role;
}

v1::Role BuiltinToProto(pqxx::work& tx, const BuiltinRole& b, const std::string& tenant_id) {
  v1::Role role;
  role.set_id(b.id);
  role.set_name(b.id);
  role.set_display_name(b.display_name);
  role.set_description(b.description);
  role.set_builtin(true);
  AddGrants(b.permissions, role.mutable_permissions());
  role.set_user_count(static_cast<int32_t>(
      tx.exec_params("SELECT count(*) FROM identity.user_roles ur JOIN identity.users u ON u.id = "
                     "ur.user_id WHERE ur.tenant_id = $1 AND ur.role_id = $2 AND u.state <> 3",
                     tenant_id, b.id)[0][0]
          .as<int64_t>()));
  return role;
}

// Validates a role's permission list (field "role.permissions[i]") into a set.
absl::StatusOr<auth::PermissionSet> GrantsOf(
    const google::protobuf::RepeatedPtrField<v1::PermissionGrant>& grants) {
  auth::PermissionSet set;
  for (int i = 0; i < grants.size(); ++i) {
    auth::Grant g{grants[i].permission(), static_cast<auth::Scope>(grants[i].scope())};
    SB_RETURN_IF_ERROR(auth::ValidateGrant(g, absl::StrCat("role.permissions[", i, "]")));
    set.Add(g);
  }
  return set;
}

absl::Status RequireRolesManage(const auth::Principal& caller) {
  SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
  if (!caller.permissions.Has(auth::perm::kRolesManage, auth::Scope::kTenant)) {
    return absl::PermissionDeniedError("permission roles.manage is required");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Role> LoadCustomRole(pqxx::work& tx, const std::string& tenant_id,
                                        const std::string& id, bool for_update) {
  if (!IsUuid(id)) return absl::NotFoundError("role not found");
  pqxx::result r =
      tx.exec_params(absl::StrCat("SELECT ", kRoleColumns,
                                  " FROM identity.roles r WHERE r.tenant_id = $1 AND r.id = $2",
                                  for_update ? " FOR UPDATE" : ""),
                     tenant_id, id);
  if (r.empty()) return absl::NotFoundError("role not found");
  return RoleFromRow(r[0]);
}

// Ends the live tokens of everyone holding a role whose permissions changed.
void RevokeHolders(pqxx::work& tx, const std::string& tenant_id, const std::string& role_id,
                   absl::Time now) {
  for (const auto& row : tx.exec_params(
           "SELECT user_id FROM identity.user_roles WHERE tenant_id = $1 AND role_id = $2",
           tenant_id, role_id)) {
    RevocationPublisher::Record(tx, auth::Revocation::Kind::kUser, row[0].as<std::string>(), now);
  }
}

}  // namespace

grpc::Status IdentityService::ListPermissions(grpc::ServerContext* context,
                                              const v1::ListPermissionsRequest* request,
                                              v1::ListPermissionsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    for (const auth::PermissionInfo& info : auth::PermissionCatalog()) {
      v1::PermissionInfo* out = response->add_permissions();
      out->set_permission(info.name);
      out->set_description(info.description);
      out->set_category(info.category);
      for (auth::Scope s : info.allowed_scopes) {
        // Platform scope is for platform admins only: tenants never see it.
        if (s == auth::Scope::kPlatform && !caller.is_platform_admin()) continue;
        out->add_allowed_scopes(static_cast<cv1::Scope>(s));
      }
    }
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::ListRoles(grpc::ServerContext* context,
                                        const v1::ListRolesRequest* request,
                                        v1::ListRolesResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    if (request->page_size() < 0 || request->page_size() > 1000) {
      return app::FieldError("page_size", "OUT_OF_RANGE", "must be 0..1000");
    }
    // Roles are few: one page holds them all (page_token is accepted only empty).
    if (!request->page_token().empty()) {
      return app::FieldError("page_token", "INVALID_PAGE_TOKEN", "roles fit in one page");
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      if (!request->custom_only()) {
        for (const BuiltinRole& b : BuiltinRoles()) {
          if (b.id == kPlatformAdminRole && !caller.is_platform_admin()) continue;
          *response->add_roles() = BuiltinToProto(tx, b, caller.tenant_id);
        }
      }
      for (const auto& row : tx.exec_params(
               absl::StrCat("SELECT ", kRoleColumns,
                            " FROM identity.roles r WHERE r.tenant_id = $1 ORDER BY r.name"),
               caller.tenant_id)) {
        *response->add_roles() = RoleFromRow(row);
      }
      response->set_total_size(response->roles_size());
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetRole(grpc::ServerContext* context,
                                      const v1::GetRoleRequest* request, v1::Role* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      if (const BuiltinRole* b = FindBuiltinRole(request->role_id())) {
        if (b->id == kPlatformAdminRole && !caller.is_platform_admin()) {
          return absl::NotFoundError("role not found");
        }
        *response = BuiltinToProto(tx, *b, caller.tenant_id);
        return absl::OkStatus();
      }
      SB_ASSIGN_OR_RETURN(*response,
                          LoadCustomRole(tx, caller.tenant_id, request->role_id(), false));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::CreateRole(grpc::ServerContext* context,
                                         const v1::CreateRoleRequest* request, v1::Role* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireRolesManage(caller));
    const v1::Role& in = request->role();
    SB_RETURN_IF_ERROR(app::ValidateRoleName(in.name(), "role.name"));
    if (FindBuiltinRole(in.name()) != nullptr) {
      return app::FieldError(absl::StatusCode::kAlreadyExists, "role.name", "DUPLICATE",
                             "is the name of a built-in role");
    }
    SB_ASSIGN_OR_RETURN(std::string display,
                        app::NormalizeName(in.display_name(), "role.display_name", true));
    SB_RETURN_IF_ERROR(app::ValidateText(in.description(), "role.description", 500));
    if (in.permissions_size() == 0) {
      return app::FieldError("role.permissions", "REQUIRED",
                             "a role needs at least one permission");
    }
    SB_ASSIGN_OR_RETURN(auth::PermissionSet perms, GrantsOf(in.permissions()));
    SB_RETURN_IF_ERROR(RequireCovers(caller, perms));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      if (!tx.exec_params("SELECT 1 FROM identity.roles WHERE tenant_id = $1 AND name = $2",
                          caller.tenant_id, in.name())
               .empty()) {
        return app::FieldError(absl::StatusCode::kAlreadyExists, "role.name", "DUPLICATE",
                               absl::StrCat("a role '", in.name(), "' exists already"));
      }
      const std::string id = NewUuid();
      tx.exec_params(
          "INSERT INTO identity.roles (tenant_id, id, name, display_name, description, "
          "permissions) VALUES ($1, $2, $3, $4, $5, $6::text[])",
          caller.tenant_id, id, in.name(), display, in.description(), pg::PgArray(perms.Texts()));
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = caller.tenant_id,
                  .action = "role.create",
                  .target_type = "role",
                  .target_id = id,
                  .target_display_name = display,
                  .changes = {{"permissions", perms.Texts()}}});
      SB_ASSIGN_OR_RETURN(*response, LoadCustomRole(tx, caller.tenant_id, id, false));
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::UpdateRole(grpc::ServerContext* context,
                                         const v1::UpdateRoleRequest* request, v1::Role* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireRolesManage(caller));
    if (FindBuiltinRole(request->role().id()) != nullptr) {
      return absl::FailedPreconditionError("built-in roles cannot be changed");
    }
    if (request->update_mask().paths_size() == 0) {
      return app::FieldError("update_mask", "REQUIRED", "name the fields to change");
    }
    bool permissions_changed = false;
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Role current,
                          LoadCustomRole(tx, caller.tenant_id, request->role().id(), true));
      v1::Role next = current;
      for (const std::string& path : request->update_mask().paths()) {
        if (path == "display_name") {
          SB_ASSIGN_OR_RETURN(std::string v, app::NormalizeName(request->role().display_name(),
                                                                "role.display_name", true));
          next.set_display_name(v);
        } else if (path == "description") {
          SB_RETURN_IF_ERROR(
              app::ValidateText(request->role().description(), "role.description", 500));
          next.set_description(request->role().description());
        } else if (path == "permissions") {
          if (request->role().permissions_size() == 0) {
            return app::FieldError("role.permissions", "REQUIRED",
                                   "a role needs at least one permission");
          }
          *next.mutable_permissions() = request->role().permissions();
        } else {
          return app::FieldError("update_mask", "UNKNOWN_FIELD",
                                 absl::StrCat("'", path, "' is not an updatable role field"));
        }
      }
      SB_ASSIGN_OR_RETURN(auth::PermissionSet old_perms, GrantsOf(current.permissions()));
      SB_ASSIGN_OR_RETURN(auth::PermissionSet new_perms, GrantsOf(next.permissions()));
      if (!(old_perms == new_perms)) {
        // Both: no granting beyond one's own rights, and no editing of a role above them.
        SB_RETURN_IF_ERROR(RequireCovers(caller, new_perms));
        SB_RETURN_IF_ERROR(RequireCovers(caller, old_perms));
        permissions_changed = true;
        RevokeHolders(tx, caller.tenant_id, current.id(), deps_.clock.Now());
      }
      tx.exec_params(
          "UPDATE identity.roles SET display_name = $3, description = $4, permissions = "
          "$5::text[], updated_at = now() WHERE tenant_id = $1 AND id = $2",
          caller.tenant_id, current.id(), next.display_name(), next.description(),
          pg::PgArray(new_perms.Texts()));
      nlohmann::json changes = nlohmann::json::object();
      AddChange(changes, "display_name", current.display_name(), next.display_name());
      AddChange(changes, "description", current.description(), next.description());
      AddChange(changes, "permissions", old_perms.Texts(), new_perms.Texts());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = caller.tenant_id,
                  .action = "role.update",
                  .target_type = "role",
                  .target_id = current.id(),
                  .target_display_name = next.display_name(),
                  .changes = changes});
      SB_ASSIGN_OR_RETURN(*response, LoadCustomRole(tx, caller.tenant_id, current.id(), false));
      return absl::OkStatus();
    }));
    if (permissions_changed) PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::DeleteRole(grpc::ServerContext* context,
                                         const v1::DeleteRoleRequest* request,
                                         google::protobuf::Empty* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireRolesManage(caller));
    if (FindBuiltinRole(request->role_id()) != nullptr) {
      return absl::FailedPreconditionError("built-in roles cannot be deleted");
    }
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Role role,
                          LoadCustomRole(tx, caller.tenant_id, request->role_id(), true));
      if (role.user_count() > 0) {
        return app::WithReason(
            absl::FailedPreconditionError(absl::StrCat("the role is held by ", role.user_count(),
                                                       " user(s): take it from them first")),
            "ROLE_IN_USE");
      }
      SB_ASSIGN_OR_RETURN(auth::PermissionSet perms, GrantsOf(role.permissions()));
      SB_RETURN_IF_ERROR(RequireCovers(caller, perms));
      // Deleted users may still list it; their rows go with it.
      tx.exec_params("DELETE FROM identity.user_roles WHERE tenant_id = $1 AND role_id = $2",
                     caller.tenant_id, role.id());
      tx.exec_params("DELETE FROM identity.roles WHERE tenant_id = $1 AND id = $2",
                     caller.tenant_id, role.id());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = caller.tenant_id,
                  .action = "role.delete",
                  .target_type = "role",
                  .target_id = role.id(),
                  .target_display_name = role.display_name()});
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GetUserPermissions(grpc::ServerContext* context,
                                                 const v1::GetUserPermissionsRequest* request,
                                                 v1::UserPermissions* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(auth::RequireUnrestricted(caller));
    return deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, request->user_id()));
      absl::Status access = authorizer_.Check(caller, auth::perm::kUsersRead,
                                              UserResource(rec.user.tenant_id(), rec.user.id()));
      if (absl::IsPermissionDenied(access)) return absl::NotFoundError("user not found");
      SB_RETURN_IF_ERROR(access);
      FillUserPermissions(LoadAccess(tx, rec.user.tenant_id(), rec.user.id()), rec.user.id(),
                          response);
      return absl::OkStatus();
    });
  }());
}

grpc::Status IdentityService::GrantUserPermission(grpc::ServerContext* context,
                                                  const v1::GrantUserPermissionRequest* request,
                                                  v1::UserPermissions* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireRolesManage(caller));
    const auth::Grant grant{request->grant().permission(),
                            static_cast<auth::Scope>(request->grant().scope())};
    SB_RETURN_IF_ERROR(auth::ValidateGrant(grant, "grant"));
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, request->user_id(), true));
      if (rec.user.id() == caller.user_id) {
        return app::WithReason(
            absl::PermissionDeniedError("you cannot change your own permissions"),
            "SELF_PERMISSION_CHANGE");
      }
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, caller.tenant_id, rec.user.id()));
      auth::PermissionSet wanted;
      wanted.Add(grant);
      SB_RETURN_IF_ERROR(RequireCovers(caller, wanted));
      tx.exec_params(
          "INSERT INTO identity.permission_overrides (tenant_id, user_id, permission, effect, "
          "scope, set_by_user_id) VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (user_id, "
          "permission) DO UPDATE SET effect = 1, scope = $4, set_by_user_id = $5, set_at = now()",
          caller.tenant_id, rec.user.id(), grant.permission, static_cast<int>(grant.scope),
          pg::NullIfEmpty(caller.user_id));
      RevocationPublisher::Record(tx, auth::Revocation::Kind::kUser, rec.user.id(),
                                  deps_.clock.Now());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = caller.tenant_id,
                  .action = "permission.grant",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name(),
                  .changes = {{"grant", auth::GrantText(grant)}}});
      FillUserPermissions(LoadAccess(tx, caller.tenant_id, rec.user.id()), rec.user.id(), response);
      return absl::OkStatus();
    }));
    PublishRevocations();
    return absl::OkStatus();
  }());
}

grpc::Status IdentityService::RevokeUserPermission(grpc::ServerContext* context,
                                                   const v1::RevokeUserPermissionRequest* request,
                                                   v1::UserPermissions* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireRolesManage(caller));
    if (auth::FindPermission(request->permission()) == nullptr) {
      return app::FieldError("permission", "UNKNOWN_PERMISSION", "is not in the catalog");
    }
    SB_RETURN_IF_ERROR(deps_.pg.Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(UserRecord rec, LoadUser(tx, caller.tenant_id, request->user_id(), true));
      if (rec.user.id() == caller.user_id) {
        return app::WithReason(
            absl::PermissionDeniedError("you cannot change your own permissions"),
            "SELF_PERMISSION_CHANGE");
      }
      SB_RETURN_IF_ERROR(
          CheckManage(tx, caller, auth::perm::kUsersManage, caller.tenant_id, rec.user.id()));
      tx.exec_params(
          "DELETE FROM identity.permission_overrides WHERE user_id = $1 AND permission = $2 AND "
          "effect = 1",
          rec.user.id(), request->permission());
      if (LoadAccess(tx, caller.tenant_id, rec.user.id()).effective.HasAny(request->permission())) {
        // Still given by a role: a DENY override takes it away.
        tx.exec_params(
            "INSERT INTO identity.permission_overrides (tenant_id, user_id, permission, effect, "
            "scope, set_by_user_id) VALUES ($1, $2, $3, 2, 0, $4) ON CONFLICT (user_id, "
            "permission) DO UPDATE SET effect = 2, scope = 0, set_by_user_id = $4, set_at = now()",
            caller.tenant_id, rec.user.id(), request->permission(),
            pg::NullIfEmpty(caller.user_id));
      }
      RevocationPublisher::Record(tx, auth::Revocation::Kind::kUser, rec.user.id(),
                                  deps_.clock.Now());
      WriteAudit(tx, AuditActor::Of(caller), ClientOf(*context),
                 {.tenant_id = caller.tenant_id,
                  .action = "permission.revoke",
                  .target_type = "user",
                  .target_id = rec.user.id(),
                  .target_display_name = rec.user.display_name(),
                  .changes = {{"permission", request->permission()}}});
      FillUserPermissions(LoadAccess(tx, caller.tenant_id, rec.user.id()), rec.user.id(), response);
      return absl::OkStatus();
    }));
    PublishRevocations();
    return absl::OkStatus();
  }());
}

}  // namespace sb::identity
