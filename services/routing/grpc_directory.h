#pragma once

// GrpcDirectory: routing's Directory over the org and identity services' RPCs. Every call carries
// the service credential (x-sb-internal-token), the tenant in x-sb-tenant-id where the RPC reads it
// from there, and a deadline (`deadline`, 2 s by default; the best-effort caller-name lookup gets
// the shorter `caller_name_deadline` so that it never holds a call up for long). Tenant countries
// come from auth::RemoteTenantCountries, cached for a minute.
//
// With a `number_cache_ttl`, the answers about a call that do not depend on who is working are
// reused for that long: the dialled number (ResolveNumber, found ones only), its schedule's status
// (for instants from the one org evaluated up to the status's next change, which EvaluateSchedule
// says) and the caller's name from the contacts. So a number disabled, moved or given another
// project, trunk or schedule, a schedule edited, or a contact added or renamed, reaches calls up to
// that long later.
//
// With an `agent_cache_ttl` (meant to be short: a second), who may take a project's calls is reused
// for that long: the project's selections (ListProjectSelections, per project) and the agents'
// profiles (per agent, "has none" included). So an agent who selects or leaves a project, or whose
// profile (extension, phones, ring preference) changes, is offered calls by the new state up to
// that long later. Whether the agent's phone is registered or busy is sip's to know, never cached
// here.
//
// Thread-safe.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>

#include "libs/auth/org_scope_facts.h"
#include "libs/auth/remote_tenant_countries.h"
#include "libs/common/clock.h"
#include "libs/common/expiring_cache.h"
#include "services/routing/directory.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace sb::routing {

struct GrpcDirectoryOptions {
  absl::Duration deadline = absl::Seconds(2);
  absl::Duration caller_name_deadline = absl::Milliseconds(500);
  // Zero: ask org on every call.
  absl::Duration number_cache_ttl = absl::ZeroDuration();
  absl::Duration agent_cache_ttl = absl::ZeroDuration();
};

class GrpcDirectory final : public Directory {
 public:
  GrpcDirectory(auth::ChannelFactory org, auth::ChannelFactory identity, std::string internal_token,
                const Clock& clock, GrpcDirectoryOptions options = {});

  absl::StatusOr<orgv1::Number> ResolveNumber(const std::string& e164) override;
  absl::StatusOr<orgv1::ScheduleStatus> EvaluateSchedule(const std::string& tenant_id,
                                                         const std::string& schedule_id,
                                                         absl::Time at) override;
  absl::StatusOr<std::vector<orgv1::ProjectSelection>> ProjectSelections(
      const std::string& tenant_id, const std::string& project_id, int max) override;
  absl::StatusOr<std::vector<orgv1::AgentProfile>> AgentProfiles(
      const std::string& tenant_id, const std::vector<std::string>& user_ids) override;
  absl::StatusOr<orgv1::AgentProfile> AgentProfile(const std::string& tenant_id,
                                                   const std::string& user_id) override;
  absl::StatusOr<orgv1::AgentProfile> LookupExtension(const std::string& tenant_id,
                                                      const std::string& extension) override;
  absl::StatusOr<std::string> CallerName(const std::string& tenant_id,
                                         const std::string& number) override;
  absl::StatusOr<orgv1::Wallet> Wallet(const std::string& tenant_id) override;
  absl::StatusOr<std::vector<orgv1::Trunk>> Trunks(const std::string& tenant_id) override;
  absl::StatusOr<std::vector<orgv1::Number>> NumbersOnTrunk(const std::string& tenant_id,
                                                            const std::string& trunk_id) override;
  absl::StatusOr<std::string> TenantCountry(const std::string& tenant_id) override;
  absl::StatusOr<RecordingRule> Recording(const std::string& tenant_id,
                                          const std::string& project_id) override;
  absl::StatusOr<bool> VerifyPin(const std::string& tenant_id, const std::string& user_id,
                                 const std::string& pin, const std::string& call_id) override;

 private:
  orgv1::OrgService::Stub& Org();
  ::switchboard::identity::v1::IdentityService::Stub& Identity();
  // A context with the credential, the deadline and (when given) the tenant.
  std::unique_ptr<grpc::ClientContext> Context(const std::string& tenant_id,
                                               absl::Duration deadline) const;
  std::unique_ptr<grpc::ClientContext> Context(const std::string& tenant_id) const {
    return Context(tenant_id, options_.deadline);
  }

  auth::ChannelFactory org_channel_;
  auth::ChannelFactory identity_channel_;
  const std::string internal_token_;
  const GrpcDirectoryOptions options_;
  std::once_flag org_once_;
  std::unique_ptr<orgv1::OrgService::Stub> org_;
  std::once_flag identity_once_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> identity_;
  auth::RemoteTenantCountries countries_;

  const Clock& clock_;
  // A schedule's status, the same for every instant in [from, until).
  struct CachedStatus {
    orgv1::ScheduleStatus status;
    absl::Time from;
    absl::Time until;
  };
  ExpiringCache<orgv1::Number> numbers_;
  ExpiringCache<CachedStatus> statuses_;
  ExpiringCache<std::string> caller_names_;
  ExpiringCache<::switchboard::common::v1::RecordingPolicy> project_policies_;
  ExpiringCache<std::vector<orgv1::ProjectSelection>> selections_;
  // By tenant/user; nullopt: the user has no agent profile.
  ExpiringCache<std::optional<orgv1::AgentProfile>> profiles_;
};

}  // namespace sb::routing
