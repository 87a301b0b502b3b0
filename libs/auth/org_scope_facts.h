#pragma once

// ScopeFacts from the org service (OrgService.ResolveScope, an Internal RPC). Wrap it in
// CachedScopeFacts: every call here is a network round trip with a deadline.

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include <functional>
#include <mutex>

#include "libs/auth/scope_facts.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace sb::auth {

// Makes the channel on first use (Platform::ChannelTo is valid only once the server listens).
using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;

class OrgScopeFacts final : public ScopeFacts {
 public:
  OrgScopeFacts(ChannelFactory org, std::string internal_token,
                absl::Duration deadline = absl::Seconds(2));

  // Unavailable when org cannot answer (including Unimplemented, until org's scope queries
  // exist); NotFound for an unknown user.
  absl::StatusOr<std::shared_ptr<const Reach>> Resolve(std::string_view tenant_id,
                                                       std::string_view user_id,
                                                       Scope scope) override;

 private:
  ::switchboard::org::v1::OrgService::Stub& Stub();

  ChannelFactory channel_;
  std::once_flag once_;
  std::unique_ptr<::switchboard::org::v1::OrgService::Stub> stub_;
  const std::string internal_token_;
  const absl::Duration deadline_;
};

}  // namespace sb::auth
