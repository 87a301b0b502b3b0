#pragma once

// OrgPlacement over the org service's gRPC API. Every call has a deadline; org's errors come back
// as they are (Unavailable when org is down; Unimplemented until org's issue #4 lands).

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include <functional>
#include <mutex>

#include "libs/auth/org_scope_facts.h"
#include "services/identity/org_placement.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace sb::identity {

using auth::ChannelFactory;

class GrpcOrgPlacement final : public OrgPlacement {
 public:
  GrpcOrgPlacement(ChannelFactory channel, std::string internal_token,
                   absl::Duration deadline = absl::Seconds(3));

  absl::Status Place(const OrgCall& call, const std::string& user_id,
                     const std::vector<std::string>& org_unit_ids,
                     const std::vector<std::string>& team_ids) override;
  absl::Status Clone(const OrgCall& call, const std::string& source_user_id,
                     const std::string& target_user_id) override;
  absl::Status Release(const OrgCall& call, const std::string& user_id) override;
  absl::StatusOr<std::vector<std::string>> UsersInOrgUnit(const OrgCall& call,
                                                          const std::string& org_unit_id,
                                                          bool include_subtree) override;
  absl::StatusOr<std::vector<std::string>> UsersInTeam(const OrgCall& call,
                                                       const std::string& team_id) override;

 private:
  // A context with the deadline and either the caller's token or the service credential.
  std::unique_ptr<grpc::ClientContext> Context(const OrgCall& call, bool internal) const;

  ::switchboard::org::v1::OrgService::Stub& Stub();

  ChannelFactory channel_;
  std::once_flag once_;
  std::unique_ptr<::switchboard::org::v1::OrgService::Stub> stub_;
  const std::string internal_token_;
  const absl::Duration deadline_;
};

}  // namespace sb::identity
