#include "libs/auth/org_scope_facts.h"

#include "absl/strings/str_cat.h"
#include "libs/auth/authenticator.h"

namespace sb::auth {

namespace ov1 = ::switchboard::org::v1;

OrgScopeFacts::OrgScopeFacts(ChannelFactory org, std::string internal_token,
                             absl::Duration deadline)
    : channel_(std::move(org)), internal_token_(std::move(internal_token)), deadline_(deadline) {}

ov1::OrgService::Stub& OrgScopeFacts::Stub() {
  std::call_once(once_, [this] { stub_ = ov1::OrgService::NewStub(channel_()); });
  return *stub_;
}

absl::StatusOr<std::shared_ptr<const Reach>> OrgScopeFacts::Resolve(std::string_view tenant_id,
                                                                    std::string_view user_id,
                                                                    Scope scope) {
  ov1::ResolveScopeRequest req;
  req.set_tenant_id(std::string(tenant_id));
  req.set_user_id(std::string(user_id));
  req.set_scope(static_cast<switchboard::common::v1::Scope>(scope));
  ov1::ResolveScopeResponse resp;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  context.AddMetadata(kInternalTokenHeader, internal_token_);
  grpc::Status s = Stub().ResolveScope(&context, req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
    return absl::NotFoundError(absl::StrCat("org: ", s.error_message()));
  }
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("org ResolveScope: ", s.error_message()));
  }
  auto reach = std::make_shared<Reach>();
  reach->all = resp.all();
  reach->user_ids.insert(resp.user_ids().begin(), resp.user_ids().end());
  reach->team_ids.insert(resp.team_ids().begin(), resp.team_ids().end());
  reach->org_unit_ids.insert(resp.org_unit_ids().begin(), resp.org_unit_ids().end());
  reach->user_ids.insert(std::string(user_id));
  return reach;
}

}  // namespace sb::auth
