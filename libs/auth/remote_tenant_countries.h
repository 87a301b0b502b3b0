#pragma once

// RemoteTenantCountries: a tenant's settings as identity has them (GetTenant under the service
// credential), cached for `ttl`: its default country (Tenant.default_country, ISO 3166-1
// alpha-2, "" when unset; org reads one on every contact save, routing on every outbound call, to
// read national phone numbers with libs/phone) and the rest of the tenant (routing reads the
// recording policy and retention on every inbound call). Tenant settings change rarely.
//
//   auth::RemoteTenantCountries countries(identity_channel, internal_token, clock);
//   SB_ASSIGN_OR_RETURN(std::string country, countries.Country(tenant_id));
//
// Thread-safe.

#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/auth/org_scope_facts.h"
#include "libs/common/clock.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"

namespace sb::auth {

class RemoteTenantCountries {
 public:
  RemoteTenantCountries(ChannelFactory identity, std::string internal_token, const Clock& clock,
                        absl::Duration deadline = absl::Seconds(3),
                        absl::Duration ttl = absl::Minutes(1));

  // The tenant's default country. NotFound (no such tenant); Unavailable when identity cannot be
  // reached; Internal when identity refuses the service credential (a deployment fault).
  absl::StatusOr<std::string> Country(const std::string& tenant_id);
  // The whole tenant, with the same errors.
  absl::StatusOr<::switchboard::identity::v1::Tenant> Tenant(const std::string& tenant_id);

 private:
  ::switchboard::identity::v1::IdentityService::Stub& Stub();

  ChannelFactory channel_;
  const std::string internal_token_;
  const Clock& clock_;
  const absl::Duration deadline_;
  const absl::Duration ttl_;
  std::once_flag once_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> stub_;
  struct Entry {
    ::switchboard::identity::v1::Tenant tenant;
    absl::Time fetched;
  };
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> tenants_;  // guarded by mu_
};

}  // namespace sb::auth
