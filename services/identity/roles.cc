#include "services/identity/identity_service.h"

namespace sb::identity {

grpc::Status IdentityService::ListPermissions(grpc::ServerContext* context, const v1::ListPermissionsRequest* request,
                      v1::ListPermissionsResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ListRoles(grpc::ServerContext* context, const v1::ListRolesRequest* request,
                      v1::ListRolesResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetRole(grpc::ServerContext* context, const v1::GetRoleRequest* request,
                      v1::Role* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::CreateRole(grpc::ServerContext* context, const v1::CreateRoleRequest* request,
                      v1::Role* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::UpdateRole(grpc::ServerContext* context, const v1::UpdateRoleRequest* request,
                      v1::Role* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DeleteRole(grpc::ServerContext* context, const v1::DeleteRoleRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetUserPermissions(grpc::ServerContext* context, const v1::GetUserPermissionsRequest* request,
                      v1::UserPermissions* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GrantUserPermission(grpc::ServerContext* context, const v1::GrantUserPermissionRequest* request,
                      v1::UserPermissions* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::RevokeUserPermission(grpc::ServerContext* context, const v1::RevokeUserPermissionRequest* request,
                      v1::UserPermissions* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

}  // namespace sb::identity
