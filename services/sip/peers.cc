#include "services/sip/peers.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/grpc_status.h"

namespace sb::sip {

namespace iv1 = ::switchboard::identity::v1;

namespace {

// Peers refusing sip's own credential is a deployment fault; everything else from the transport
// (deadline, connection refused) means "not now".
absl::Status PeerError(const grpc::Status& s, const char* peer, const char* rpc) {
  const std::string where = absl::StrCat(peer, " ", rpc, ": ", s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(where);
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::PermissionDeniedError(where);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return absl::InvalidArgumentError(where);
    case grpc::StatusCode::FAILED_PRECONDITION:
      return absl::FailedPreconditionError(where);
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::InternalError(
          absl::StrCat(where, " (is --internal_token the same in every service?)"));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(where);
    default:
      return absl::UnavailableError(where);
  }
}

}  // namespace

GrpcSipPeers::GrpcSipPeers(auth::ChannelFactory identity, auth::ChannelFactory org,
                           auth::ChannelFactory routing, const Clock& clock, Options options)
    : identity_channel_(std::move(identity)),
      org_channel_(std::move(org)),
      routing_channel_(std::move(routing)),
      clock_(clock),
      options_(std::move(options)) {}

std::unique_ptr<grpc::ClientContext> GrpcSipPeers::Context(const std::string& tenant_id) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  context->AddMetadata(auth::kInternalTokenHeader, options_.internal_token);
  if (!tenant_id.empty()) context->AddMetadata(app::kTenantIdHeader, tenant_id);
  return context;
}

iv1::IdentityService::Stub& GrpcSipPeers::Identity() {
  absl::MutexLock lock(&stubs_mu_);
  if (identity_ == nullptr) identity_ = iv1::IdentityService::NewStub(identity_channel_());
  return *identity_;
}

ov1::OrgService::Stub& GrpcSipPeers::Org() {
  absl::MutexLock lock(&stubs_mu_);
  if (org_ == nullptr) org_ = ov1::OrgService::NewStub(org_channel_());
  return *org_;
}

rv1::RoutingService::Stub& GrpcSipPeers::Routing() {
  absl::MutexLock lock(&stubs_mu_);
  if (routing_ == nullptr) routing_ = rv1::RoutingService::NewStub(routing_channel_());
  return *routing_;
}

absl::StatusOr<SipDigest> GrpcSipPeers::GetSipDigest(const std::string& realm,
                                                     const std::string& username) {
  const std::string key = absl::StrCat(realm, "\n", username);
  const absl::Time now = clock_.Now();
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = digests_.find(key);
    if (it != digests_.end() && it->second.expires > now) return it->second.value;
  }
  iv1::GetSipDigestRequest req;
  req.set_realm(realm);
  req.set_username(username);
  iv1::GetSipDigestResponse resp;
  auto context = Context();
  const grpc::Status s = Identity().GetSipDigest(context.get(), req, &resp);
  absl::StatusOr<SipDigest> result;
  if (s.ok()) {
    result = SipDigest{.tenant_id = resp.tenant_id(),
                       .user_id = resp.user_id(),
                       .ha1_md5 = resp.ha1_md5(),
                       .ha1_sha256 = resp.ha1_sha256()};
  } else {
    result = PeerError(s, "identity", "GetSipDigest");
  }
  if (result.ok() || result.status().code() == absl::StatusCode::kNotFound) {
    absl::MutexLock lock(&cache_mu_);
    if (digests_.size() > 100'000) digests_.clear();
    digests_[key] = {result,
                     now + (result.ok() ? options_.cache_ttl : options_.negative_cache_ttl)};
  }
  return result;
}

absl::StatusOr<ov1::MatchInboundTrunkResponse> GrpcSipPeers::MatchInboundTrunk(
    const std::string& source_ip, const std::string& number) {
  ov1::MatchInboundTrunkRequest req;
  req.set_source_address(source_ip);
  req.set_number(number);
  ov1::MatchInboundTrunkResponse resp;
  auto context = Context();
  if (grpc::Status s = Org().MatchInboundTrunk(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "org", "MatchInboundTrunk");
  }
  return resp;
}

absl::StatusOr<ov1::Trunk> GrpcSipPeers::GetTrunk(const std::string& tenant_id,
                                                  const std::string& trunk_id) {
  const std::string key = absl::StrCat(tenant_id, "/", trunk_id);
  const absl::Time now = clock_.Now();
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = trunks_.find(key);
    if (it != trunks_.end() && it->second.expires > now) return it->second.value;
  }
  ov1::GetTrunkRequest req;
  req.set_tenant_id(tenant_id);
  req.set_trunk_id(trunk_id);
  ov1::Trunk trunk;
  auto context = Context();
  absl::StatusOr<ov1::Trunk> result;
  if (grpc::Status s = Org().GetTrunk(context.get(), req, &trunk); !s.ok()) {
    result = PeerError(s, "org", "GetTrunk");
  } else {
    result = std::move(trunk);
  }
  if (result.ok()) {
    absl::MutexLock lock(&cache_mu_);
    if (trunks_.size() > 10'000) trunks_.clear();
    trunks_[key] = {result, now + options_.cache_ttl};
  }
  return result;
}

absl::StatusOr<ov1::AgentProfile> GrpcSipPeers::GetAgentProfile(const std::string& tenant_id,
                                                                const std::string& user_id) {
  ov1::GetAgentProfileRequest req;
  req.set_tenant_id(tenant_id);
  req.set_user_id(user_id);
  ov1::AgentProfile profile;
  auto context = Context();
  if (grpc::Status s = Org().GetAgentProfile(context.get(), req, &profile); !s.ok()) {
    return PeerError(s, "org", "GetAgentProfile");
  }
  return profile;
}

absl::StatusOr<rv1::RouteCallResponse> GrpcSipPeers::RouteCall(const rv1::RouteCallRequest& req) {
  rv1::RouteCallResponse resp;
  auto context = Context();
  if (grpc::Status s = Routing().RouteCall(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "routing", "RouteCall");
  }
  return resp;
}

absl::StatusOr<rv1::ReportCallEventResponse> GrpcSipPeers::ReportCallEvent(
    const rv1::ReportCallEventRequest& req) {
  rv1::ReportCallEventResponse resp;
  auto context = Context();
  if (grpc::Status s = Routing().ReportCallEvent(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "routing", "ReportCallEvent");
  }
  return resp;
}

}  // namespace sb::sip
