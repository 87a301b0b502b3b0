#pragma once

// GrpcDirectory: org's Directory over identity's RPCs, with the service credential and the tenant
// in the x-sb-tenant-id metadata. Tenant countries come from auth::RemoteTenantCountries (shared
// with routing), cached for a minute (they change rarely and every contact save reads one).

#include <memory>
#include <mutex>
#include <string>

#include "libs/auth/org_scope_facts.h"
#include "libs/auth/remote_tenant_countries.h"
#include "libs/common/clock.h"
#include "services/org/org_service.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"

namespace sb::org {

class GrpcDirectory final : public Directory {
 public:
  GrpcDirectory(auth::ChannelFactory identity, std::string internal_token, const Clock& clock,
                absl::Duration deadline = absl::Seconds(3));

  absl::Status RequireUsers(const std::string& tenant_id, const std::vector<std::string>& user_ids,
                            std::string_view field) override;
  absl::StatusOr<std::string> TenantCountry(const std::string& tenant_id) override;

 private:
  ::switchboard::identity::v1::IdentityService::Stub& Stub();
  std::unique_ptr<grpc::ClientContext> Context(const std::string& tenant_id) const;

  auth::ChannelFactory channel_;
  const std::string internal_token_;
  const absl::Duration deadline_;
  std::once_flag once_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> stub_;
  auth::RemoteTenantCountries countries_;
};

}  // namespace sb::org
