#include "libs/auth/remote_tenant_countries.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/grpc_status.h"

namespace sb::auth {

namespace iv1 = ::switchboard::identity::v1;

RemoteTenantCountries::RemoteTenantCountries(ChannelFactory identity, std::string internal_token,
                                             const Clock& clock, absl::Duration deadline,
                                             absl::Duration ttl)
    : channel_(std::move(identity)),
      internal_token_(std::move(internal_token)),
      clock_(clock),
      deadline_(deadline),
      ttl_(ttl) {}

iv1::IdentityService::Stub& RemoteTenantCountries::Stub() {
  std::call_once(once_, [this] { stub_ = iv1::IdentityService::NewStub(channel_()); });
  return *stub_;
}

absl::StatusOr<std::string> RemoteTenantCountries::Country(const std::string& tenant_id) {
  absl::StatusOr<iv1::Tenant> tenant = Tenant(tenant_id);
  if (!tenant.ok()) return tenant.status();
  return tenant->default_country();
}

absl::StatusOr<iv1::Tenant> RemoteTenantCountries::Tenant(const std::string& tenant_id) {
  {
    std::lock_guard lock(mu_);
    auto it = tenants_.find(tenant_id);
    if (it != tenants_.end() && clock_.Now() - it->second.fetched < ttl_) {
      return it->second.tenant;
    }
  }
  iv1::GetTenantRequest req;
  req.set_tenant_id(tenant_id);
  iv1::Tenant tenant;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  context.AddMetadata(kInternalTokenHeader, internal_token_);
  context.AddMetadata(app::kTenantIdHeader, tenant_id);
  if (grpc::Status s = Stub().GetTenant(&context, req, &tenant); !s.ok()) {
    const std::string message = absl::StrCat("identity GetTenant: ", s.error_message());
    switch (s.error_code()) {
      case grpc::StatusCode::NOT_FOUND:
        return FromGrpcStatus(s);
      // Identity refusing our own credential is a deployment fault that retrying will not cure.
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
        return absl::InternalError(
            absl::StrCat(message, " (is --internal_token the same in every service?)"));
      default:
        return absl::UnavailableError(message);
    }
  }
  std::lock_guard lock(mu_);
  tenants_[tenant_id] = {tenant, clock_.Now()};
  return tenant;
}

}  // namespace sb::auth
