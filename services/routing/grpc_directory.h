#pragma once

// GrpcDirectory: routing's Directory over the org and identity services' RPCs. Every call carries
// the service credential (x-sb-internal-token), the tenant in x-sb-tenant-id where the RPC reads it
// from there, and a deadline (`deadline`, 2 s by default; the best-effort caller-name lookup gets
// the shorter `caller_name_deadline` so that it never holds a call up for long). Tenant countries
// come from auth::RemoteTenantCountries, cached for a minute.
//
// With a `number_cache_ttl`, the two answers about a dialled number that do not depend on who is
// working are reused for that long: the number itself (ResolveNumber, found ones only) and its
// schedule's status — for instants from the one org evaluated up to the status's next change
// (EvaluateSchedule says when). So a number disabled, moved or given another project, trunk or
// schedule, or a schedule edited, reaches calls up to that long later. Agents' project selections
// and profiles and contacts are never cached: they take effect on the next call. Thread-safe.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "libs/auth/org_scope_facts.h"
#include "libs/auth/remote_tenant_countries.h"
#include "libs/common/clock.h"
#include "services/routing/directory.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace sb::routing {

struct GrpcDirectoryOptions {
  absl::Duration deadline = absl::Seconds(2);
  absl::Duration caller_name_deadline = absl::Milliseconds(500);
  // Zero: ask org on every call.
  absl::Duration number_cache_ttl = absl::ZeroDuration();
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
  struct CachedNumber {
    orgv1::Number number;
    absl::Time expires;
  };
  // A schedule's status, the same for every instant in [from, until).
  struct CachedStatus {
    orgv1::ScheduleStatus status;
    absl::Time from;
    absl::Time until;
    absl::Time expires;
  };
  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, CachedNumber> numbers_ ABSL_GUARDED_BY(cache_mu_);
  absl::flat_hash_map<std::string, CachedStatus> statuses_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace sb::routing
