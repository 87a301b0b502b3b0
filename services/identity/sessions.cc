#include "services/identity/identity_service.h"

namespace sb::identity {

grpc::Status IdentityService::Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                      v1::LoginResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::CompleteLogin(grpc::ServerContext* context, const v1::CompleteLoginRequest* request,
                      v1::LoginResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ChangePassword(grpc::ServerContext* context, const v1::ChangePasswordRequest* request,
                      v1::ChangePasswordResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::RefreshToken(grpc::ServerContext* context, const v1::RefreshTokenRequest* request,
                      v1::RefreshTokenResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::Logout(grpc::ServerContext* context, const v1::LogoutRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetSigningKeys(grpc::ServerContext* context, const v1::GetSigningKeysRequest* request,
                      v1::GetSigningKeysResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::IntrospectToken(grpc::ServerContext* context, const v1::IntrospectTokenRequest* request,
                      v1::IntrospectTokenResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::EnrollTotp(grpc::ServerContext* context, const v1::EnrollTotpRequest* request,
                      v1::TotpEnrollment* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ActivateTotp(grpc::ServerContext* context, const v1::ActivateTotpRequest* request,
                      v1::ActivateTotpResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ResetTotp(grpc::ServerContext* context, const v1::ResetTotpRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::RegenerateRecoveryCodes(grpc::ServerContext* context, const v1::RegenerateRecoveryCodesRequest* request,
                      v1::RegenerateRecoveryCodesResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

}  // namespace sb::identity
