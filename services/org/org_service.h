#pragma once

// The gRPC face of the `org` target (proto/switchboard/org/v1/org_service.proto): the org-unit
// tree, teams, reporting managers, projects and live project selection, agent profiles, working
// hours, numbers and trunks, contacts, the tenant wallet, the licence and org settings.
//
// Handlers authenticate the caller (libs/auth), check access with an Authorizer over org's own
// scope facts (read fresh from PostgreSQL, not through its own ResolveScope), do their work in one
// PostgreSQL transaction and map the result to a gRPC status with structured details
// (libs/app/rpc_errors.h). Users and tenants belong to identity: org asks it (Directory) whether
// user ids that people send exist.
//
// The RPCs are implemented in one file per area (see the sections below); org_service.cc holds
// construction and the shared helpers.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "libs/auth/authenticator.h"
#include "libs/auth/authorizer.h"
#include "libs/auth/revocation_list.h"
#include "libs/common/clock.h"
#include "libs/pg/pool.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace sb::redis {
class Client;
class Reply;
}  // namespace sb::redis

namespace sb::org {

namespace v1 = ::switchboard::org::v1;

// What org asks identity about. GrpcDirectory (grpc_directory.h) calls identity's RPCs with the
// service credential.
class Directory {
 public:
  virtual ~Directory() = default;
  // NotFound naming `field` when one of `user_ids` is not a user of the tenant (or is deleted);
  // Unavailable when identity cannot be reached.
  virtual absl::Status RequireUsers(const std::string& tenant_id,
                                    const std::vector<std::string>& user_ids,
                                    std::string_view field) = 0;
  // The tenant's default country (ISO 3166-1 alpha-2, "" when unset), for reading national
  // phone numbers. Unavailable when identity cannot be reached.
  virtual absl::StatusOr<std::string> TenantCountry(const std::string& tenant_id) = 0;
};

struct OrgOptions {
  // Extensions of tenants that have not set their own range (OrgSettings).
  int default_extension_range_start = 100;
  int default_extension_range_end = 999;
  // How long a project selection lives without being set again (a working day and then some).
  absl::Duration selection_ttl = absl::Hours(12);
  // Prefix of org's Redis keys.
  std::string redis_prefix = "sb:org:";
};

// What the service needs from outside; everything must outlive it.
struct OrgDeps {
  pg::Pool& pg;
  redis::Client& redis;
  const Clock& clock;
  const auth::Authenticator& authenticator;
  Directory& directory;
  // Where ended sessions show (project selections end with their session). May be null.
  const auth::RevocationList* revocations = nullptr;
};

class OrgService final : public v1::OrgService::Service {
 public:
  OrgService(OrgDeps deps, OrgOptions options = {});
  ~OrgService() override;

  // Helpers the area files share.
  // The distinct ids of a repeated field, lowercased; InvalidArgument naming field[i] for one that
  // is not a UUID, or `field` when there are more than `max`.
  static absl::StatusOr<std::vector<std::string>> UuidList(
      const google::protobuf::RepeatedPtrField<std::string>& ids, std::string_view field,
      size_t max = 1000);
  // Ids that a request's fields refer to (a parent unit, a project, a schedule...) that do not
  // exist are bad input: InvalidArgument with a FieldViolation naming the field (reason
  // NOT_FOUND), so that a form shows the error on the field. The resource a request addresses
  // (GetTeam's team_id) stays NotFound.
  static absl::Status AsBadReference(absl::Status status, std::string_view field);
  // InvalidArgument naming `field` unless the schedule exists in the tenant ("" passes: none).
  static absl::Status RequireSchedule(pqxx::work& tx, const std::string& tenant_id,
                                      const std::string& id, std::string_view field);

  // What a user reaches with a scope, read in `tx` (ResolveScope and org's own access checks).
  // The reach always includes the user.
  absl::StatusOr<auth::Reach> ResolveReach(pqxx::work& tx, const std::string& tenant_id,
                                           const std::string& user_id, auth::Scope scope) const;

  // --- units.cc: org units, placement and scope ---
  grpc::Status CreateOrgUnit(grpc::ServerContext* context, const v1::CreateOrgUnitRequest* request,
                             v1::OrgUnit* response) override;
  grpc::Status GetOrgUnit(grpc::ServerContext* context, const v1::GetOrgUnitRequest* request,
                          v1::OrgUnit* response) override;
  grpc::Status ListOrgUnits(grpc::ServerContext* context, const v1::ListOrgUnitsRequest* request,
                            v1::ListOrgUnitsResponse* response) override;
  grpc::Status UpdateOrgUnit(grpc::ServerContext* context, const v1::UpdateOrgUnitRequest* request,
                             v1::OrgUnit* response) override;
  grpc::Status MoveOrgUnit(grpc::ServerContext* context, const v1::MoveOrgUnitRequest* request,
                           v1::OrgUnit* response) override;
  grpc::Status DeleteOrgUnit(grpc::ServerContext* context, const v1::DeleteOrgUnitRequest* request,
                             google::protobuf::Empty* response) override;
  grpc::Status ListOrgUnitUsers(grpc::ServerContext* context,
                                const v1::ListOrgUnitUsersRequest* request,
                                v1::ListOrgUnitUsersResponse* response) override;
  grpc::Status GetUserPlacement(grpc::ServerContext* context,
                                const v1::GetUserPlacementRequest* request,
                                v1::UserPlacement* response) override;
  grpc::Status SetUserOrgUnits(grpc::ServerContext* context,
                               const v1::SetUserOrgUnitsRequest* request,
                               v1::UserPlacement* response) override;
  grpc::Status SetReportingManager(grpc::ServerContext* context,
                                   const v1::SetReportingManagerRequest* request,
                                   v1::UserPlacement* response) override;
  grpc::Status ListReports(grpc::ServerContext* context, const v1::ListReportsRequest* request,
                           v1::ListReportsResponse* response) override;
  grpc::Status ResolveScope(grpc::ServerContext* context, const v1::ResolveScopeRequest* request,
                            v1::ResolveScopeResponse* response) override;
  grpc::Status CloneUserPlacement(grpc::ServerContext* context,
                                  const v1::CloneUserPlacementRequest* request,
                                  v1::UserPlacement* response) override;
  grpc::Status ReleaseUser(grpc::ServerContext* context, const v1::ReleaseUserRequest* request,
                           google::protobuf::Empty* response) override;

  // --- teams.cc: teams ---
  grpc::Status CreateTeam(grpc::ServerContext* context, const v1::CreateTeamRequest* request,
                          v1::Team* response) override;
  grpc::Status GetTeam(grpc::ServerContext* context, const v1::GetTeamRequest* request,
                       v1::Team* response) override;
  grpc::Status ListTeams(grpc::ServerContext* context, const v1::ListTeamsRequest* request,
                         v1::ListTeamsResponse* response) override;
  grpc::Status UpdateTeam(grpc::ServerContext* context, const v1::UpdateTeamRequest* request,
                          v1::Team* response) override;
  grpc::Status DeleteTeam(grpc::ServerContext* context, const v1::DeleteTeamRequest* request,
                          google::protobuf::Empty* response) override;
  grpc::Status AddTeamMembers(grpc::ServerContext* context,
                              const v1::AddTeamMembersRequest* request,
                              v1::AddTeamMembersResponse* response) override;
  grpc::Status RemoveTeamMembers(grpc::ServerContext* context,
                                 const v1::RemoveTeamMembersRequest* request,
                                 google::protobuf::Empty* response) override;
  grpc::Status ListTeamMembers(grpc::ServerContext* context,
                               const v1::ListTeamMembersRequest* request,
                               v1::ListTeamMembersResponse* response) override;

  // --- projects.cc: projects and live project selection (Redis) ---
  grpc::Status CreateProject(grpc::ServerContext* context, const v1::CreateProjectRequest* request,
                             v1::Project* response) override;
  grpc::Status GetProject(grpc::ServerContext* context, const v1::GetProjectRequest* request,
                          v1::Project* response) override;
  grpc::Status ListProjects(grpc::ServerContext* context, const v1::ListProjectsRequest* request,
                            v1::ListProjectsResponse* response) override;
  grpc::Status UpdateProject(grpc::ServerContext* context, const v1::UpdateProjectRequest* request,
                             v1::Project* response) override;
  grpc::Status DeleteProject(grpc::ServerContext* context, const v1::DeleteProjectRequest* request,
                             google::protobuf::Empty* response) override;
  grpc::Status GetProjectSelection(grpc::ServerContext* context,
                                   const v1::GetProjectSelectionRequest* request,
                                   v1::ProjectSelection* response) override;
  grpc::Status SetProjectSelection(grpc::ServerContext* context,
                                   const v1::SetProjectSelectionRequest* request,
                                   v1::ProjectSelection* response) override;
  grpc::Status ListProjectSelections(grpc::ServerContext* context,
                                     const v1::ListProjectSelectionsRequest* request,
                                     v1::ListProjectSelectionsResponse* response) override;

  // --- agents.cc: agent profiles and extensions ---
  grpc::Status CreateAgentProfile(grpc::ServerContext* context,
                                  const v1::CreateAgentProfileRequest* request,
                                  v1::AgentProfile* response) override;
  grpc::Status GetAgentProfile(grpc::ServerContext* context,
                               const v1::GetAgentProfileRequest* request,
                               v1::AgentProfile* response) override;
  grpc::Status ListAgentProfiles(grpc::ServerContext* context,
                                 const v1::ListAgentProfilesRequest* request,
                                 v1::ListAgentProfilesResponse* response) override;
  grpc::Status UpdateAgentProfile(grpc::ServerContext* context,
                                  const v1::UpdateAgentProfileRequest* request,
                                  v1::AgentProfile* response) override;
  grpc::Status DeleteAgentProfile(grpc::ServerContext* context,
                                  const v1::DeleteAgentProfileRequest* request,
                                  google::protobuf::Empty* response) override;
  grpc::Status LookupExtension(grpc::ServerContext* context,
                               const v1::LookupExtensionRequest* request,
                               v1::AgentProfile* response) override;

  // --- schedules.cc: working-hour schedules (libs/schedule evaluates them) ---
  grpc::Status CreateSchedule(grpc::ServerContext* context,
                              const v1::CreateScheduleRequest* request,
                              v1::Schedule* response) override;
  grpc::Status GetSchedule(grpc::ServerContext* context, const v1::GetScheduleRequest* request,
                           v1::Schedule* response) override;
  grpc::Status ListSchedules(grpc::ServerContext* context, const v1::ListSchedulesRequest* request,
                             v1::ListSchedulesResponse* response) override;
  grpc::Status UpdateSchedule(grpc::ServerContext* context,
                              const v1::UpdateScheduleRequest* request,
                              v1::Schedule* response) override;
  grpc::Status DeleteSchedule(grpc::ServerContext* context,
                              const v1::DeleteScheduleRequest* request,
                              google::protobuf::Empty* response) override;
  grpc::Status EvaluateSchedule(grpc::ServerContext* context,
                                const v1::EvaluateScheduleRequest* request,
                                v1::EvaluateScheduleResponse* response) override;

  // --- numbers.cc: numbers (DIDs) and trunks ---
  grpc::Status CreateNumber(grpc::ServerContext* context, const v1::CreateNumberRequest* request,
                            v1::Number* response) override;
  grpc::Status GetNumber(grpc::ServerContext* context, const v1::GetNumberRequest* request,
                         v1::Number* response) override;
  grpc::Status ListNumbers(grpc::ServerContext* context, const v1::ListNumbersRequest* request,
                           v1::ListNumbersResponse* response) override;
  grpc::Status UpdateNumber(grpc::ServerContext* context, const v1::UpdateNumberRequest* request,
                            v1::Number* response) override;
  grpc::Status DeleteNumber(grpc::ServerContext* context, const v1::DeleteNumberRequest* request,
                            google::protobuf::Empty* response) override;
  grpc::Status ResolveNumber(grpc::ServerContext* context, const v1::ResolveNumberRequest* request,
                             v1::Number* response) override;
  grpc::Status CreateTrunk(grpc::ServerContext* context, const v1::CreateTrunkRequest* request,
                           v1::Trunk* response) override;
  grpc::Status GetTrunk(grpc::ServerContext* context, const v1::GetTrunkRequest* request,
                        v1::Trunk* response) override;
  grpc::Status ListTrunks(grpc::ServerContext* context, const v1::ListTrunksRequest* request,
                          v1::ListTrunksResponse* response) override;
  grpc::Status UpdateTrunk(grpc::ServerContext* context, const v1::UpdateTrunkRequest* request,
                           v1::Trunk* response) override;
  grpc::Status DeleteTrunk(grpc::ServerContext* context, const v1::DeleteTrunkRequest* request,
                           google::protobuf::Empty* response) override;
  grpc::Status MatchInboundTrunk(grpc::ServerContext* context,
                                 const v1::MatchInboundTrunkRequest* request,
                                 v1::MatchInboundTrunkResponse* response) override;

  // --- contacts.cc: contacts; CRM lookup settings (issue 13) ---
  grpc::Status CreateContact(grpc::ServerContext* context, const v1::CreateContactRequest* request,
                             v1::Contact* response) override;
  grpc::Status GetContact(grpc::ServerContext* context, const v1::GetContactRequest* request,
                          v1::Contact* response) override;
  grpc::Status ListContacts(grpc::ServerContext* context, const v1::ListContactsRequest* request,
                            v1::ListContactsResponse* response) override;
  grpc::Status UpdateContact(grpc::ServerContext* context, const v1::UpdateContactRequest* request,
                             v1::Contact* response) override;
  grpc::Status DeleteContact(grpc::ServerContext* context, const v1::DeleteContactRequest* request,
                             google::protobuf::Empty* response) override;
  grpc::Status LookupContacts(grpc::ServerContext* context,
                              const v1::LookupContactsRequest* request,
                              v1::LookupContactsResponse* response) override;
  grpc::Status GetCrmLookupConfig(grpc::ServerContext* context,
                                  const v1::GetCrmLookupConfigRequest* request,
                                  v1::CrmLookupConfig* response) override;
  grpc::Status UpdateCrmLookupConfig(grpc::ServerContext* context,
                                     const v1::UpdateCrmLookupConfigRequest* request,
                                     v1::CrmLookupConfig* response) override;

  // --- wallet.cc: wallet ---
  grpc::Status GetWallet(grpc::ServerContext* context, const v1::GetWalletRequest* request,
                         v1::Wallet* response) override;
  grpc::Status UpdateWallet(grpc::ServerContext* context, const v1::UpdateWalletRequest* request,
                            v1::Wallet* response) override;
  grpc::Status ListWalletTransactions(grpc::ServerContext* context,
                                      const v1::ListWalletTransactionsRequest* request,
                                      v1::ListWalletTransactionsResponse* response) override;
  grpc::Status TopUpWallet(grpc::ServerContext* context, const v1::TopUpWalletRequest* request,
                           v1::WalletTransaction* response) override;
  grpc::Status DebitWallet(grpc::ServerContext* context, const v1::DebitWalletRequest* request,
                           v1::DebitWalletResponse* response) override;
  grpc::Status AdjustWallet(grpc::ServerContext* context, const v1::AdjustWalletRequest* request,
                            v1::WalletTransaction* response) override;

  // --- agents.cc: licence and org settings ---
  grpc::Status GetLicence(grpc::ServerContext* context, const v1::GetLicenceRequest* request,
                          v1::Licence* response) override;
  grpc::Status UpdateLicence(grpc::ServerContext* context, const v1::UpdateLicenceRequest* request,
                             v1::Licence* response) override;
  grpc::Status GetOrgSettings(grpc::ServerContext* context,
                              const v1::GetOrgSettingsRequest* request,
                              v1::OrgSettings* response) override;
  grpc::Status UpdateOrgSettings(grpc::ServerContext* context,
                                 const v1::UpdateOrgSettingsRequest* request,
                                 v1::OrgSettings* response) override;

 private:
  class LocalScopeFacts;

  // --- shared helpers (org_service.cc) ---

  // The authenticated caller; restricted tokens (password change pending) are refused.
  // Unauthenticated / PermissionDenied / Unavailable.
  absl::StatusOr<auth::Principal> Caller(grpc::ServerContext& context) const;
  // OK when the request carries the service credential ("Internal:" RPCs); Unauthenticated else.
  absl::Status RequireInternal(grpc::ServerContext& context) const;
  // The tenant the caller acts in: their own, or for platform admins the one named (a UUID).
  absl::StatusOr<std::string> TenantFor(const auth::Principal& caller,
                                        const std::string& requested) const;

  // Who calls an RPC that both people and services use.
  struct Access {
    std::optional<auth::Principal> caller;  // empty for the service credential
    std::string tenant_id;
    bool internal() const { return !caller.has_value(); }
  };
  // With the service credential the tenant is `requested_tenant` or the x-sb-tenant-id metadata
  // (a UUID is required); otherwise as Caller + TenantFor.
  absl::StatusOr<Access> CallerOrService(grpc::ServerContext& context,
                                         const std::string& requested_tenant) const;

  // For calls identity makes on a person's behalf — the service credential and the person's own
  // token together — the person, with `vouched` set: identity answers for the user it names (one it
  // may just have created, whom org has never seen), while the person's reach still bounds the
  // units and teams. Without both, as CallerOrService (vouched stays false).
  struct OnBehalf {
    Access access;
    bool vouched = false;
  };
  absl::StatusOr<OnBehalf> CallerOnBehalf(grpc::ServerContext& context) const;
  // What the caller reaches with users.manage and org.manage together (placing users needs
  // either). PermissionDenied when they hold neither.
  absl::StatusOr<auth::Reach> PlacementReach(const auth::Principal& caller) const;

  const auth::Authorizer& authorizer() const { return *authorizer_; }

  // deps_.pg.Run with the transaction made ambient on this thread: access checks made inside it
  // (authorizer() asks org's own scope facts) read in the same transaction — they see its writes
  // and take no second connection. Handlers use this instead of deps_.pg.Run.
  template <typename Fn>
  std::invoke_result_t<Fn&, pqxx::work&> Run(Fn&& fn) const {
    return deps_.pg.Run([&](pqxx::work& tx) {
      struct Restore {
        pqxx::work* outer;
        ~Restore() { ambient_tx_ = outer; }
      } restore{ambient_tx_};
      ambient_tx_ = &tx;
      return fn(tx);
    });
  }

  // Where a user sits: units, teams, led teams, reporting manager.
  v1::UserPlacement LoadPlacement(pqxx::work& tx, const std::string& tenant_id,
                                  const std::string& user_id) const;
  // A user as a resource for the authorizer (owner, teams, units).
  auth::Resource UserResource(pqxx::work& tx, const std::string& tenant_id,
                              const std::string& user_id) const;
  // Checks `permission` on the user `user_id` (as owner) of `tenant_id`.
  absl::Status CheckOnUser(pqxx::work& tx, const auth::Principal& caller,
                           std::string_view permission, const std::string& tenant_id,
                           const std::string& user_id) const;

  // teams.cc
  // OK when `permission` reaches the team (tenant-wide, or a team the caller leads).
  absl::Status RequireTeamReached(const auth::Principal& caller, std::string_view permission,
                                  const std::string& team_id) const;
  // NotFound unless the caller may see the team: tenant-wide readers, its members, those whose
  // org.manage reaches it.
  absl::Status RequireTeamVisible(pqxx::work& tx, const auth::Principal& caller,
                                  const std::string& team_id) const;
  static bool SeesAllTeams(const auth::Principal& caller);

  // Serialises writers of one tenant's `topic` ("tree", "managers", "extensions", "wallet") until
  // the transaction ends (pg_advisory_xact_lock).
  static void LockTenant(pqxx::work& tx, const std::string& tenant_id, std::string_view topic);

  // Releases the user's extension, selection and memberships (ReleaseUser, DeleteAgentProfile).
  void DeleteSelection(const std::string& tenant_id, const std::string& user_id);

  // --- per-area state (declared by the area's file owner) ---
  // agents.cc
  // org.manage or users.manage on the user (admins, local managers of their subtree).
  absl::Status CheckProfileManage(pqxx::work& tx, const auth::Principal& caller,
                                  const std::string& tenant_id, const std::string& user_id) const;
  // Gives `target` a profile with the source's settings and a newly allocated extension (no-op
  // when the source has none). FailedPrecondition (seat limit), ResourceExhausted (range full).
  absl::Status CloneAgentProfile(pqxx::work& tx, const std::string& tenant_id,
                                 const std::string& source_user_id,
                                 const std::string& target_user_id) const;

  // projects.cc
  std::string SelectionKey(const std::string& tenant_id, const std::string& user_id) const;
  std::string SelectionIndexKey(const std::string& tenant_id) const;
  // The selection in a HGETALL reply; none when the hash is empty or its session has ended
  // (then `ended_session` names that session).
  std::optional<v1::ProjectSelection> SelectionFromHash(const std::string& tenant_id,
                                                        const std::string& user_id,
                                                        const redis::Reply& hash,
                                                        std::string* ended_session) const;
  // Removes a selection a reader found gone or ended — only if it is still that one.
  void DropEndedSelection(const std::string& tenant_id, const std::string& user_id,
                          const std::string& session);
  // NotFound naming field[i] for a team that is not the tenant's.
  absl::Status RequireTeams(pqxx::work& tx, const std::string& tenant_id,
                            const std::vector<std::string>& team_ids, std::string_view field) const;
  // Replaces who works a project.
  void SetProjectWorkers(pqxx::work& tx, const std::string& tenant_id,
                         const std::string& project_id, const std::vector<std::string>& team_ids,
                         const std::vector<std::string>& agent_ids) const;

  // schedules.cc
  // Compiled schedules for EvaluateSchedule, by id and updated_at (defined in schedules.cc).
  class ScheduleCache;
  static std::shared_ptr<ScheduleCache> MakeScheduleCache();
  std::shared_ptr<ScheduleCache> schedule_cache_ = MakeScheduleCache();

  inline static thread_local pqxx::work* ambient_tx_ = nullptr;

  OrgDeps deps_;
  OrgOptions options_;
  std::unique_ptr<LocalScopeFacts> facts_;
  std::unique_ptr<auth::Authorizer> authorizer_;
};

}  // namespace sb::org
