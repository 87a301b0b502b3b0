#include "services/identity/grpc_org_placement.h"

#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/grpc_status.h"

namespace sb::identity {

namespace ov1 = ::switchboard::org::v1;

GrpcOrgPlacement::GrpcOrgPlacement(ChannelFactory channel, std::string internal_token,
                                   absl::Duration deadline)
    : channel_(std::move(channel)),
      internal_token_(std::move(internal_token)),
      deadline_(deadline) {}

ov1::OrgService::Stub& GrpcOrgPlacement::Stub() {
  std::call_once(once_, [this] { stub_ = ov1::OrgService::NewStub(channel_()); });
  return *stub_;
}

std::unique_ptr<grpc::ClientContext> GrpcOrgPlacement::Context(const OrgCall& call,
                                                               bool internal) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  context->AddMetadata(app::kTenantIdHeader, call.tenant_id);
  // Identity vouches for the user it names (it has checked the caller's rights over them, and a
  // user it has just created is one org has never seen); the caller's own token, when there is one,
  // bounds what org lets the call do (units and teams within the caller's reach).
  context->AddMetadata(auth::kInternalTokenHeader, internal_token_);
  if (!internal && !call.bearer_token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", call.bearer_token));
  }
  return context;
}

absl::Status GrpcOrgPlacement::Place(const OrgCall& call, const std::string& user_id,
                                     const std::vector<std::string>& org_unit_ids,
                                     const std::vector<std::string>& team_ids) {
  if (!org_unit_ids.empty()) {
    ov1::SetUserOrgUnitsRequest req;
    req.set_user_id(user_id);
    for (const auto& id : org_unit_ids) req.add_org_unit_ids(id);
    ov1::UserPlacement resp;
    auto context = Context(call, false);
    if (grpc::Status s = Stub().SetUserOrgUnits(context.get(), req, &resp); !s.ok()) {
      return FromGrpcStatus(s);
    }
  }
  for (const auto& team : team_ids) {
    ov1::AddTeamMembersRequest req;
    req.set_team_id(team);
    req.add_user_ids(user_id);
    ov1::AddTeamMembersResponse resp;
    auto context = Context(call, false);
    if (grpc::Status s = Stub().AddTeamMembers(context.get(), req, &resp); !s.ok()) {
      return FromGrpcStatus(s);
    }
  }
  return absl::OkStatus();
}

absl::Status GrpcOrgPlacement::Clone(const OrgCall& call, const std::string& source_user_id,
                                     const std::string& target_user_id) {
  ov1::CloneUserPlacementRequest req;
  req.set_tenant_id(call.tenant_id);
  req.set_source_user_id(source_user_id);
  req.set_target_user_id(target_user_id);
  ov1::UserPlacement resp;
  // With the caller's token: org copies only the units and teams the caller manages.
  auto context = Context(call, false);
  return FromGrpcStatus(Stub().CloneUserPlacement(context.get(), req, &resp));
}

absl::Status GrpcOrgPlacement::Release(const OrgCall& call, const std::string& user_id) {
  ov1::ReleaseUserRequest req;
  req.set_tenant_id(call.tenant_id);
  req.set_user_id(user_id);
  google::protobuf::Empty resp;
  auto context = Context(call, true);
  return FromGrpcStatus(Stub().ReleaseUser(context.get(), req, &resp));
}

absl::StatusOr<std::vector<std::string>> GrpcOrgPlacement::UsersInOrgUnit(
    const OrgCall& call, const std::string& org_unit_id, bool include_subtree) {
  std::vector<std::string> out;
  ov1::ListOrgUnitUsersRequest req;
  req.set_org_unit_id(org_unit_id);
  req.set_include_subtree(include_subtree);
  req.set_page_size(1000);
  do {
    ov1::ListOrgUnitUsersResponse resp;
    auto context = Context(call, false);
    if (grpc::Status s = Stub().ListOrgUnitUsers(context.get(), req, &resp); !s.ok()) {
      return FromGrpcStatus(s);
    }
    out.insert(out.end(), resp.user_ids().begin(), resp.user_ids().end());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

absl::StatusOr<std::vector<std::string>> GrpcOrgPlacement::UsersInTeam(const OrgCall& call,
                                                                       const std::string& team_id) {
  std::vector<std::string> out;
  ov1::ListTeamMembersRequest req;
  req.set_team_id(team_id);
  req.set_page_size(1000);
  do {
    ov1::ListTeamMembersResponse resp;
    auto context = Context(call, false);
    if (grpc::Status s = Stub().ListTeamMembers(context.get(), req, &resp); !s.ok()) {
      return FromGrpcStatus(s);
    }
    for (const auto& m : resp.members()) out.push_back(m.user_id());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

}  // namespace sb::identity
