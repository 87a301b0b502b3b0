#pragma once

// RemoteTenantCountries: a tenant's default country (identity's Tenant.default_country, ISO
// 3166-1 alpha-2, "" when unset), read with identity's GetTenant under the service credential and
// cached for `ttl` (countries change rarely; org reads one on every contact save, routing on every
// outbound call). Services use it to read national phone numbers with libs/phone.
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
    std::string code;
    absl::Time fetched;
  };
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> countries_;  // guarded by mu_
};

}  // namespace sb::auth
