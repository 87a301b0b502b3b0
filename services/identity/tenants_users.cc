#include "services/identity/identity_service.h"

namespace sb::identity {

grpc::Status IdentityService::CreateTenant(grpc::ServerContext* context, const v1::CreateTenantRequest* request,
                      v1::CreateTenantResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetTenant(grpc::ServerContext* context, const v1::GetTenantRequest* request,
                      v1::Tenant* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ListTenants(grpc::ServerContext* context, const v1::ListTenantsRequest* request,
                      v1::ListTenantsResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::UpdateTenant(grpc::ServerContext* context, const v1::UpdateTenantRequest* request,
                      v1::Tenant* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DeleteTenant(grpc::ServerContext* context, const v1::DeleteTenantRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::CreateUser(grpc::ServerContext* context, const v1::CreateUserRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetUser(grpc::ServerContext* context, const v1::GetUserRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetCurrentUser(grpc::ServerContext* context, const v1::GetCurrentUserRequest* request,
                      v1::GetCurrentUserResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::BatchGetUsers(grpc::ServerContext* context, const v1::BatchGetUsersRequest* request,
                      v1::BatchGetUsersResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest* request,
                      v1::ListUsersResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::UpdateUser(grpc::ServerContext* context, const v1::UpdateUserRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DeleteUser(grpc::ServerContext* context, const v1::DeleteUserRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DisableUser(grpc::ServerContext* context, const v1::DisableUserRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::EnableUser(grpc::ServerContext* context, const v1::EnableUserRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::CloneUser(grpc::ServerContext* context, const v1::CloneUserRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ResetUserPassword(grpc::ServerContext* context, const v1::ResetUserPasswordRequest* request,
                      v1::ResetUserPasswordResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::UploadUserAvatar(grpc::ServerContext* context, const v1::UploadUserAvatarRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetUserAvatar(grpc::ServerContext* context, const v1::GetUserAvatarRequest* request,
                      v1::GetUserAvatarResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DeleteUserAvatar(grpc::ServerContext* context, const v1::DeleteUserAvatarRequest* request,
                      v1::User* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

}  // namespace sb::identity

namespace sb::identity {
absl::Status IdentityService::EnsurePlatformAdmin(const std::string& login_name,
                                                  const std::string& password) {
  return absl::UnimplementedError("not yet");
}
}  // namespace sb::identity
