#pragma once

// The gRPC face of the `identity` target (proto/switchboard/identity/v1/identity_service.proto).
// Handlers authenticate the caller (libs/auth), check access with the Authorizer, run their work
// in one PostgreSQL transaction together with its audit entry, and map the result to a gRPC
// status with structured details (libs/app/rpc_errors.h).
//
// The RPCs are implemented in several files, one per area:
//   identity_service.cc        construction, shared helpers (caller, users, access, tokens)
//   tenants_users.cc           tenants and users
//   roles.cc                   roles, permissions, per-user overrides
//   sessions.cc                login, 2FA, tokens, sessions, signing keys, introspection
//   credentials.cc             API keys, PINs, SIP digest credentials, the audit log

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "libs/auth/authenticator.h"
#include "libs/auth/authorizer.h"
#include "libs/auth/jwt.h"
#include "libs/common/clock.h"
#include "libs/pg/pool.h"
#include "services/identity/audit.h"
#include "services/identity/crypto/password_hasher.h"
#include "services/identity/crypto/sealer.h"
#include "services/identity/key_ring.h"
#include "services/identity/org_placement.h"
#include "services/identity/revocation_publisher.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"

namespace sb::redis {
class Client;
}

namespace sb::identity {

namespace v1 = ::switchboard::identity::v1;

struct IdentityOptions {
  std::string issuer = "switchboard-identity";
  std::string audience = "switchboard";
  absl::Duration access_token_ttl = absl::Minutes(15);
  absl::Duration session_ttl = absl::Hours(12);           // default when the tenant sets none
  absl::Duration remember_me_ttl = absl::Hours(24 * 30);  // default when the tenant sets none
  absl::Duration max_session_ttl = absl::Hours(24 * 90);  // platform maximum
  absl::Duration challenge_ttl = absl::Minutes(5);        // TOTP step of a login
  absl::Duration totp_enrollment_ttl = absl::Minutes(15);
  int min_password_length = 10;  // default when the tenant sets none (never below 8)
  PasswordHasher::Params password_hash;
  // The shared service credential for "Internal:" RPCs.
  std::string internal_token;
  // 32 bytes, base64: seals TOTP secrets and signing private keys at rest (crypto/sealer.h).
  // Empty: stored as they are (local runs).
  std::string secrets_key;
  // The Redis sorted set revocations are published to (libs/auth/revocation_list.h).
  std::string revocation_key = "sb:auth:revocations";
  // Clock skew allowed when verifying tokens.
  absl::Duration token_leeway = absl::Seconds(30);
  // Where the gateway serves avatars: avatar_url = <prefix>/users/<id>/avatar.
  std::string avatar_url_prefix = "/api/v1";
};

// What the service needs from outside; everything must outlive it.
struct IdentityDeps {
  pg::Pool& pg;
  const Clock& clock;
  auth::ScopeFacts& scope_facts;  // org's scope facts (cached)
  OrgPlacement& org;              // org placement of users
  auth::RevocationList& revocations;
  redis::Client* redis = nullptr;  // where revocations are published; null: not published
};

// A user row as the handlers need it (more than the User message: credentials state).
struct UserRecord {
  v1::User user;
  std::string password_hash;
  bool totp_enabled = false;
};

// A user's roles, overrides and effective permissions.
struct UserAccess {
  std::vector<std::string> role_ids;
  std::vector<v1::PermissionOverride> overrides;
  auth::PermissionSet effective;
};

class IdentityService final : public v1::IdentityService::Service {
 public:
  // Loads (or creates) the signing keys. Unavailable when PostgreSQL is down.
  static absl::StatusOr<std::unique_ptr<IdentityService>> Create(IdentityDeps deps,
                                                                 IdentityOptions options);
  ~IdentityService() override;

  // Background work: revocation publishing, key rotation checks.
  void Start();
  void Stop();

  // For other code in this process that must verify tokens the way identity does (tests).
  const auth::Authenticator& authenticator() const { return *authenticator_; }

  // Creates the platform tenant and a platform admin with `password` when no platform admin
  // exists yet (first start). OK when one exists already.
  absl::Status EnsurePlatformAdmin(const std::string& login_name, const std::string& password);
  // Creates the demo tenant "demo" (SIP domain demo.sip.localhost) with the logins admin,
  // supervisor, agent1, agent2 and agent3, all with `password`, unless it exists (tools/run).
  absl::Status SeedDemoTenant(const std::string& password);

  // --- RPCs ---
  grpc::Status CreateTenant(grpc::ServerContext* context, const v1::CreateTenantRequest* request,
                            v1::CreateTenantResponse* response) override;
  grpc::Status GetTenant(grpc::ServerContext* context, const v1::GetTenantRequest* request,
                         v1::Tenant* response) override;
  grpc::Status ListTenants(grpc::ServerContext* context, const v1::ListTenantsRequest* request,
                           v1::ListTenantsResponse* response) override;
  grpc::Status UpdateTenant(grpc::ServerContext* context, const v1::UpdateTenantRequest* request,
                            v1::Tenant* response) override;
  grpc::Status DeleteTenant(grpc::ServerContext* context, const v1::DeleteTenantRequest* request,
                            google::protobuf::Empty* response) override;
  grpc::Status CreateUser(grpc::ServerContext* context, const v1::CreateUserRequest* request,
                          v1::User* response) override;
  grpc::Status GetUser(grpc::ServerContext* context, const v1::GetUserRequest* request,
                       v1::User* response) override;
  grpc::Status GetCurrentUser(grpc::ServerContext* context,
                              const v1::GetCurrentUserRequest* request,
                              v1::GetCurrentUserResponse* response) override;
  grpc::Status BatchGetUsers(grpc::ServerContext* context, const v1::BatchGetUsersRequest* request,
                             v1::BatchGetUsersResponse* response) override;
  grpc::Status ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest* request,
                         v1::ListUsersResponse* response) override;
  grpc::Status UpdateUser(grpc::ServerContext* context, const v1::UpdateUserRequest* request,
                          v1::User* response) override;
  grpc::Status DeleteUser(grpc::ServerContext* context, const v1::DeleteUserRequest* request,
                          google::protobuf::Empty* response) override;
  grpc::Status DisableUser(grpc::ServerContext* context, const v1::DisableUserRequest* request,
                           v1::User* response) override;
  grpc::Status EnableUser(grpc::ServerContext* context, const v1::EnableUserRequest* request,
                          v1::User* response) override;
  grpc::Status CloneUser(grpc::ServerContext* context, const v1::CloneUserRequest* request,
                         v1::User* response) override;
  grpc::Status ResetUserPassword(grpc::ServerContext* context,
                                 const v1::ResetUserPasswordRequest* request,
                                 v1::ResetUserPasswordResponse* response) override;
  grpc::Status UploadUserAvatar(grpc::ServerContext* context,
                                const v1::UploadUserAvatarRequest* request,
                                v1::User* response) override;
  grpc::Status GetUserAvatar(grpc::ServerContext* context, const v1::GetUserAvatarRequest* request,
                             v1::GetUserAvatarResponse* response) override;
  grpc::Status DeleteUserAvatar(grpc::ServerContext* context,
                                const v1::DeleteUserAvatarRequest* request,
                                v1::User* response) override;
  grpc::Status ListPermissions(grpc::ServerContext* context,
                               const v1::ListPermissionsRequest* request,
                               v1::ListPermissionsResponse* response) override;
  grpc::Status ListRoles(grpc::ServerContext* context, const v1::ListRolesRequest* request,
                         v1::ListRolesResponse* response) override;
  grpc::Status GetRole(grpc::ServerContext* context, const v1::GetRoleRequest* request,
                       v1::Role* response) override;
  grpc::Status CreateRole(grpc::ServerContext* context, const v1::CreateRoleRequest* request,
                          v1::Role* response) override;
  grpc::Status UpdateRole(grpc::ServerContext* context, const v1::UpdateRoleRequest* request,
                          v1::Role* response) override;
  grpc::Status DeleteRole(grpc::ServerContext* context, const v1::DeleteRoleRequest* request,
                          google::protobuf::Empty* response) override;
  grpc::Status GetUserPermissions(grpc::ServerContext* context,
                                  const v1::GetUserPermissionsRequest* request,
                                  v1::UserPermissions* response) override;
  grpc::Status GrantUserPermission(grpc::ServerContext* context,
                                   const v1::GrantUserPermissionRequest* request,
                                   v1::UserPermissions* response) override;
  grpc::Status RevokeUserPermission(grpc::ServerContext* context,
                                    const v1::RevokeUserPermissionRequest* request,
                                    v1::UserPermissions* response) override;
  grpc::Status Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                     v1::LoginResponse* response) override;
  grpc::Status CompleteLogin(grpc::ServerContext* context, const v1::CompleteLoginRequest* request,
                             v1::LoginResponse* response) override;
  grpc::Status ChangePassword(grpc::ServerContext* context,
                              const v1::ChangePasswordRequest* request,
                              v1::ChangePasswordResponse* response) override;
  grpc::Status RefreshToken(grpc::ServerContext* context, const v1::RefreshTokenRequest* request,
                            v1::RefreshTokenResponse* response) override;
  grpc::Status Logout(grpc::ServerContext* context, const v1::LogoutRequest* request,
                      google::protobuf::Empty* response) override;
  grpc::Status GetSigningKeys(grpc::ServerContext* context,
                              const v1::GetSigningKeysRequest* request,
                              v1::GetSigningKeysResponse* response) override;
  grpc::Status IntrospectToken(grpc::ServerContext* context,
                               const v1::IntrospectTokenRequest* request,
                               v1::IntrospectTokenResponse* response) override;
  grpc::Status EnrollTotp(grpc::ServerContext* context, const v1::EnrollTotpRequest* request,
                          v1::TotpEnrollment* response) override;
  grpc::Status ActivateTotp(grpc::ServerContext* context, const v1::ActivateTotpRequest* request,
                            v1::ActivateTotpResponse* response) override;
  grpc::Status ResetTotp(grpc::ServerContext* context, const v1::ResetTotpRequest* request,
                         google::protobuf::Empty* response) override;
  grpc::Status RegenerateRecoveryCodes(grpc::ServerContext* context,
                                       const v1::RegenerateRecoveryCodesRequest* request,
                                       v1::RegenerateRecoveryCodesResponse* response) override;
  grpc::Status CreateApiKey(grpc::ServerContext* context, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* response) override;
  grpc::Status ListApiKeys(grpc::ServerContext* context, const v1::ListApiKeysRequest* request,
                           v1::ListApiKeysResponse* response) override;
  grpc::Status GetApiKey(grpc::ServerContext* context, const v1::GetApiKeyRequest* request,
                         v1::ApiKey* response) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* context, const v1::RevokeApiKeyRequest* request,
                            v1::ApiKey* response) override;
  grpc::Status CreatePin(grpc::ServerContext* context, const v1::CreatePinRequest* request,
                         v1::CreatePinResponse* response) override;
  grpc::Status ListPins(grpc::ServerContext* context, const v1::ListPinsRequest* request,
                        v1::ListPinsResponse* response) override;
  grpc::Status DeletePin(grpc::ServerContext* context, const v1::DeletePinRequest* request,
                         google::protobuf::Empty* response) override;
  grpc::Status VerifyPin(grpc::ServerContext* context, const v1::VerifyPinRequest* request,
                         v1::VerifyPinResponse* response) override;
  grpc::Status ResetSipCredential(grpc::ServerContext* context,
                                  const v1::ResetSipCredentialRequest* request,
                                  v1::ResetSipCredentialResponse* response) override;
  grpc::Status GetSipCredential(grpc::ServerContext* context,
                                const v1::GetSipCredentialRequest* request,
                                v1::SipCredential* response) override;
  grpc::Status DeleteSipCredential(grpc::ServerContext* context,
                                   const v1::DeleteSipCredentialRequest* request,
                                   google::protobuf::Empty* response) override;
  grpc::Status GetSipDigest(grpc::ServerContext* context, const v1::GetSipDigestRequest* request,
                            v1::GetSipDigestResponse* response) override;
  grpc::Status ListAuditEntries(grpc::ServerContext* context,
                                const v1::ListAuditEntriesRequest* request,
                                v1::ListAuditEntriesResponse* response) override;

 private:
  class LocalApiKeys;
  IdentityService(IdentityDeps deps, IdentityOptions options);

  // --- shared helpers (identity_service.cc) ---
  // The authenticated caller. Unauthenticated / Unavailable.
  absl::StatusOr<auth::Principal> Caller(grpc::ServerContext& context) const;
  // Address and user agent from the request (the gateway forwards them as metadata), or from
  // the ClientInfo a login request carries.
  // Only the gateway (or another service, with the service credential) may speak for the client:
  // from anyone else the address is the connection's peer, or a caller could dodge the per-address
  // throttle and write any address into the audit log.
  ClientAddress ClientOf(const grpc::ServerContext& context,
                         const v1::ClientInfo* given = nullptr) const;
  // The tenant the caller acts in: their own, or for platform admins the one named.
  absl::StatusOr<std::string> TenantFor(const auth::Principal& caller,
                                        const std::string& requested) const;

  // Users. Load returns NotFound for unknown ids and ids of other tenants (unless tenant_id is
  // empty, which platform-wide callers use).
  absl::StatusOr<UserRecord> LoadUser(pqxx::work& tx, const std::string& tenant_id,
                                      const std::string& user_id, bool for_update = false) const;
  // LoadUser in the caller's tenant, or in any tenant for platform admins.
  absl::StatusOr<UserRecord> LoadUserFor(pqxx::work& tx, const auth::Principal& caller,
                                         const std::string& user_id,
                                         bool for_update = false) const {
    return LoadUser(tx, caller.is_platform_admin() ? "" : caller.tenant_id, user_id, for_update);
  }
  UserAccess LoadAccess(pqxx::work& tx, const std::string& tenant_id,
                        const std::string& user_id) const;
  // The authorizer's view of a user as a resource (tenant, owner, org placement from org).
  auth::Resource UserResource(const std::string& tenant_id, const std::string& user_id) const;
  // Checks `permission` on the user `user_id` of `tenant_id`.
  absl::Status CheckOnUser(const auth::Principal& caller, std::string_view permission,
                           const std::string& tenant_id, const std::string& user_id) const;
  // For management actions on another user (update, disable, delete, reset password, clone,
  // credentials): CheckOnUser, and the caller must hold everything the target holds — a local
  // manager cannot take over an admin who sits in their subtree by resetting their password.
  absl::Status CheckManage(pqxx::work& tx, const auth::Principal& caller,
                           std::string_view permission, const std::string& tenant_id,
                           const std::string& user_id) const;
  // The permissions a role set gives in a tenant (built-in and custom roles). InvalidArgument
  // naming `field` for an unknown role.
  absl::StatusOr<auth::PermissionSet> RolePermissions(pqxx::work& tx, const std::string& tenant_id,
                                                      const std::vector<std::string>& role_ids,
                                                      std::string_view field) const;
  // PermissionDenied unless the caller holds everything in `wanted` ("never grant more than
  // you hold"), naming the first grant they lack.
  static absl::Status RequireCovers(const auth::Principal& caller,
                                    const auth::PermissionSet& wanted);

  // Sessions and tokens.
  struct IssuedSession {
    v1::TokenPair tokens;
    std::string session_id;
  };
  // Starts a session (refresh-token family) for the user and issues its first token pair.
  absl::StatusOr<IssuedSession> StartSession(pqxx::work& tx, const UserRecord& user,
                                             bool remember_me, bool restricted,
                                             const std::string& amr, const ClientAddress& client);
  // A signed access token for the user in the given session.
  absl::StatusOr<std::pair<std::string, absl::Time>> IssueAccessToken(pqxx::work& tx,
                                                                      const UserRecord& user,
                                                                      const std::string& session_id,
                                                                      bool restricted,
                                                                      const std::string& amr);
  // Revokes every live session of a user (disable, delete, password reset) and records one
  // revocation per session; PublishRevocations() after the commit makes them visible everywhere.
  void RevokeUserSessions(pqxx::work& tx, const std::string& user_id, const std::string& reason);
  void PublishRevocations();
  // Records revocations of the user's API keys so that other services drop their cached
  // introspections at once (identity itself refuses keys whose creator is not active).
  void RevokeApiKeysInCaches(pqxx::work& tx, const std::string& user_id);

  // Removes a user just created (and committed) whom org then refused to place or clone into,
  // and returns org's answer for the caller.
  absl::Status UndoNewUser(const std::string& tenant_id, const std::string& user_id,
                           absl::Status org_answer);

  // The tenant's security settings with defaults filled in.
  v1::TenantSecurity SecurityOf(pqxx::work& tx, const std::string& tenant_id) const;

  IdentityDeps deps_;
  IdentityOptions options_;
  std::unique_ptr<auth::JwtVerifier> verifier_;
  std::unique_ptr<KeyRing> keys_;
  std::unique_ptr<LocalApiKeys> api_keys_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  auth::Authorizer authorizer_;
  PasswordHasher hasher_;
  Sealer sealer_;
  RevocationPublisher publisher_;

  // Background upkeep (Start/Stop): publishing revocations every second, reloading the signing
  // keys every few minutes.
  std::mutex upkeep_mu_;
  std::condition_variable upkeep_wake_;
  bool stopping_ = false;  // guarded by upkeep_mu_
  std::thread upkeep_;

  // sessions.cc
  // What follows a passed password step (and, with second_factor_done, a passed TOTP or recovery
  // code): a TOTP challenge, a restricted session (password change or TOTP enrolment pending) or
  // a full one; fills `response` and writes the audit entry. Errors only from signing.
  absl::Status FinishLogin(pqxx::work& tx, UserRecord& user, bool remember_me,
                           bool second_factor_done, const ClientAddress& client,
                           v1::LoginResponse* response);
  // True when the tenant's policy (require_totp, or a role in require_totp_role_ids) asks the
  // user for TOTP.
  bool TotpRequired(pqxx::work& tx, const v1::User& user) const;
};

// The tenant that holds the platform admins.
inline constexpr char kPlatformTenantSlug[] = "platform";

// Converts one users row (selected with kUserColumns) to a record.
extern const char kUserColumns[];
UserRecord UserFromRow(const pqxx::row& row, const std::string& avatar_url_prefix);

}  // namespace sb::identity
