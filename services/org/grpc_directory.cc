#include "services/org/grpc_directory.h"

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/grpc_status.h"

namespace sb::org {

namespace iv1 = ::switchboard::identity::v1;

GrpcDirectory::GrpcDirectory(auth::ChannelFactory identity, std::string internal_token,
                             const Clock& clock, absl::Duration deadline)
    : channel_(identity),
      internal_token_(internal_token),
      deadline_(deadline),
      countries_(std::move(identity), std::move(internal_token), clock, deadline) {}

iv1::IdentityService::Stub& GrpcDirectory::Stub() {
  std::call_once(once_, [this] { stub_ = iv1::IdentityService::NewStub(channel_()); });
  return *stub_;
}

std::unique_ptr<grpc::ClientContext> GrpcDirectory::Context(const std::string& tenant_id) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  context->AddMetadata(auth::kInternalTokenHeader, internal_token_);
  context->AddMetadata(app::kTenantIdHeader, tenant_id);
  return context;
}

namespace {

// Identity unreachable or overloaded: org cannot decide now (Unavailable, retry later). Identity
// refusing org's own credential is a deployment fault that retrying will not cure (Internal).
absl::Status Unavailable(const grpc::Status& s, std::string_view what) {
  const std::string message = absl::StrCat("identity ", std::string(what), ": ", s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::InternalError(
          absl::StrCat(message, " (is --internal_token the same in every service?)"));
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace

absl::Status GrpcDirectory::RequireUsers(const std::string& tenant_id,
                                         const std::vector<std::string>& user_ids,
                                         std::string_view field) {
  for (size_t begin = 0; begin < user_ids.size(); begin += 1000) {
    iv1::BatchGetUsersRequest req;
    const size_t end = std::min(user_ids.size(), begin + 1000);
    for (size_t i = begin; i < end; ++i) req.add_user_ids(user_ids[i]);
    iv1::BatchGetUsersResponse resp;
    auto context = Context(tenant_id);
    if (grpc::Status s = Stub().BatchGetUsers(context.get(), req, &resp); !s.ok()) {
      return Unavailable(s, "BatchGetUsers");
    }
    absl::flat_hash_set<std::string> found;
    for (const auto& u : resp.users()) {
      if (u.state() != iv1::USER_STATE_DELETED) found.insert(u.id());
    }
    for (size_t i = begin; i < end; ++i) {
      if (!found.contains(user_ids[i])) {
        return absl::NotFoundError(
            absl::StrCat(std::string(field), ": user '", user_ids[i].substr(0, 64), "' not found"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GrpcDirectory::TenantCountry(const std::string& tenant_id) {
  return countries_.Country(tenant_id);
}

}  // namespace sb::org
