#include "services/identity/identity_service.h"

namespace sb::identity {

grpc::Status IdentityService::CreateApiKey(grpc::ServerContext* context, const v1::CreateApiKeyRequest* request,
                      v1::CreateApiKeyResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ListApiKeys(grpc::ServerContext* context, const v1::ListApiKeysRequest* request,
                      v1::ListApiKeysResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetApiKey(grpc::ServerContext* context, const v1::GetApiKeyRequest* request,
                      v1::ApiKey* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::RevokeApiKey(grpc::ServerContext* context, const v1::RevokeApiKeyRequest* request,
                      v1::ApiKey* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::CreatePin(grpc::ServerContext* context, const v1::CreatePinRequest* request,
                      v1::CreatePinResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ListPins(grpc::ServerContext* context, const v1::ListPinsRequest* request,
                      v1::ListPinsResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DeletePin(grpc::ServerContext* context, const v1::DeletePinRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::VerifyPin(grpc::ServerContext* context, const v1::VerifyPinRequest* request,
                      v1::VerifyPinResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ResetSipCredential(grpc::ServerContext* context, const v1::ResetSipCredentialRequest* request,
                      v1::ResetSipCredentialResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetSipCredential(grpc::ServerContext* context, const v1::GetSipCredentialRequest* request,
                      v1::SipCredential* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::DeleteSipCredential(grpc::ServerContext* context, const v1::DeleteSipCredentialRequest* request,
                      google::protobuf::Empty* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::GetSipDigest(grpc::ServerContext* context, const v1::GetSipDigestRequest* request,
                      v1::GetSipDigestResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

grpc::Status IdentityService::ListAuditEntries(grpc::ServerContext* context, const v1::ListAuditEntriesRequest* request,
                      v1::ListAuditEntriesResponse* response) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not yet");
}

}  // namespace sb::identity
