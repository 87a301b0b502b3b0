#pragma once

// Directory: what routing asks the org and identity services while it routes a call — one method
// per RPC it makes, in the shapes those services answer with. GrpcDirectory (grpc_directory.h)
// calls them over gRPC with the service credential and a deadline; tests of the domain classes
// can put a fake behind it.
//
// Errors, for every method: Unavailable when the service cannot be reached or fails (retry later:
// sip answers 503), Internal when it refuses routing's service credential (a deployment fault),
// NotFound where a method says so. Implementations must be thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "switchboard/org/v1/org_service.pb.h"

namespace sb::routing {

namespace orgv1 = ::switchboard::org::v1;

class Directory {
 public:
  virtual ~Directory() = default;

  // --- org ---

  // The enabled number with this E.164 form (OrgService.ResolveNumber). NotFound: not one of any
  // tenant's numbers, or disabled.
  virtual absl::StatusOr<orgv1::Number> ResolveNumber(const std::string& e164) = 0;
  // OPEN, CLOSED or HOLIDAY for a stored schedule at `at` (OrgService.EvaluateSchedule). NotFound.
  virtual absl::StatusOr<orgv1::ScheduleStatus> EvaluateSchedule(const std::string& tenant_id,
                                                                 const std::string& schedule_id,
                                                                 absl::Time at) = 0;
  // The live selections naming the project, those who chose it as primary first (as org orders
  // them), at most `max` (OrgService.ListProjectSelections). NotFound (project).
  virtual absl::StatusOr<std::vector<orgv1::ProjectSelection>> ProjectSelections(
      const std::string& tenant_id, const std::string& project_id, int max) = 0;
  // The agent profiles of these users that exist, in no particular order
  // (OrgService.ListAgentProfiles).
  virtual absl::StatusOr<std::vector<orgv1::AgentProfile>> AgentProfiles(
      const std::string& tenant_id, const std::vector<std::string>& user_ids) = 0;
  // One user's agent profile (OrgService.GetAgentProfile). NotFound.
  virtual absl::StatusOr<orgv1::AgentProfile> AgentProfile(const std::string& tenant_id,
                                                           const std::string& user_id) = 0;
  // The profile holding an extension (OrgService.LookupExtension). NotFound, also for text that
  // cannot be an extension.
  virtual absl::StatusOr<orgv1::AgentProfile> LookupExtension(const std::string& tenant_id,
                                                              const std::string& extension) = 0;
  // The best contact's name for a caller's number, "" when no contact has it
  // (OrgService.LookupContacts). Callers treat any error as "no name".
  virtual absl::StatusOr<std::string> CallerName(const std::string& tenant_id,
                                                 const std::string& number) = 0;
  // The tenant's wallet (OrgService.GetWallet).
  virtual absl::StatusOr<orgv1::Wallet> Wallet(const std::string& tenant_id) = 0;
  // The tenant's trunks, ordered by name (OrgService.ListTrunks).
  virtual absl::StatusOr<std::vector<orgv1::Trunk>> Trunks(const std::string& tenant_id) = 0;
  // The tenant's numbers carried by a trunk, ordered by number (OrgService.ListNumbers).
  virtual absl::StatusOr<std::vector<orgv1::Number>> NumbersOnTrunk(
      const std::string& tenant_id, const std::string& trunk_id) = 0;

  // Whether a project's answered calls are recorded, and for how long recordings are kept: the
  // project's recording policy (OrgService.GetProject), or the tenant's when the project says
  // INHERIT or there is no project (IdentityService.GetTenant); the tenant's retention.
  struct RecordingRule {
    bool record = false;
    int retention_days = 0;  // 0: kept until deleted
  };
  virtual absl::StatusOr<RecordingRule> Recording(const std::string& tenant_id,
                                                  const std::string& project_id) = 0;

  // --- identity ---

  // The tenant's default country, ISO 3166-1 alpha-2, "" when unset (IdentityService.GetTenant).
  // NotFound.
  virtual absl::StatusOr<std::string> TenantCountry(const std::string& tenant_id) = 0;
  // Whether `pin` is one of the user's valid PINs (IdentityService.VerifyPin, which counts
  // failures per user). ResourceExhausted when too many wrong PINs lock the user out for now.
  virtual absl::StatusOr<bool> VerifyPin(const std::string& tenant_id, const std::string& user_id,
                                         const std::string& pin, const std::string& call_id) = 0;
};

}  // namespace sb::routing
