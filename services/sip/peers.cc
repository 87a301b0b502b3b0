#include "services/sip/peers.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/grpc_status.h"
#include "libs/common/utf8.h"

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

// One asynchronous report: what gRPC reads and writes while it is on its way.
struct GrpcSipPeers::AsyncReport {
  grpc::ClientContext context;
  rv1::ReportCallEventRequest request;
  rv1::ReportCallEventResponse response;
};

GrpcSipPeers::GrpcSipPeers(auth::ChannelFactory identity, auth::ChannelFactory org,
                           auth::ChannelFactory routing, auth::ChannelFactory media,
                           const Clock& clock, Options options)
    : identity_channel_(std::move(identity)),
      org_channel_(std::move(org)),
      routing_channel_(std::move(routing)),
      media_channel_(std::move(media)),
      clock_(clock),
      options_(std::move(options)) {
  reporter_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sip-reports");
    RunReporter();
  });
}

// The reports' callbacks use this object.
GrpcSipPeers::~GrpcSipPeers() {
  StopMediaEvents();
  StopReports();
}

void GrpcSipPeers::StopReports() {
  {
    absl::MutexLock lock(&reports_mu_);
    reports_stopped_ = true;
    // The reporter starts what is queued; each report ends by its deadline.
    reports_mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &reports_in_flight_));
  }
  if (reporter_.joinable()) reporter_.join();
}

void GrpcSipPeers::RunReporter() {
  for (;;) {
    std::vector<rv1::ReportCallEventRequest> batch;
    {
      absl::MutexLock lock(&reports_mu_);
      reports_mu_.Await(absl::Condition(
          +[](GrpcSipPeers* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->reports_mu_) {
            return !self->report_queue_.empty() || self->reports_stopped_;
          },
          this));
      if (report_queue_.empty()) return;  // stopped, and nothing left to start
      batch.swap(report_queue_);
    }
    for (rv1::ReportCallEventRequest& req : batch) {
      auto* report = new AsyncReport{.request = std::move(req)};
      Prepare(report->context);
      // The callback runs on a gRPC thread (or at once on this one if the call cannot start): it
      // only logs and counts.
      Routing().async()->ReportCallEvent(
          &report->context, &report->request, &report->response, [this, report](grpc::Status s) {
            if (!s.ok() && s.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
              spdlog::debug("sip: report to routing failed: {}",
                            std::string(PeerError(s, "routing", "ReportCallEvent").message()));
            }
            // The context (and its call reference) goes before the count does: once the count is
            // zero the destructor may tear down the stubs and channels, and a context destroyed
            // after that raced with it (a gRPC "prior > 0" abort, seen once under load).
            delete report;
            absl::MutexLock lock(&reports_mu_);
            --reports_in_flight_;
          });
    }
  }
}

void GrpcSipPeers::Prepare(grpc::ClientContext& context, const std::string& tenant_id) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  context.AddMetadata(auth::kInternalTokenHeader, options_.internal_token);
  if (!tenant_id.empty()) context.AddMetadata(app::kTenantIdHeader, tenant_id);
}

std::unique_ptr<grpc::ClientContext> GrpcSipPeers::Context(const std::string& tenant_id) const {
  auto context = std::make_unique<grpc::ClientContext>();
  Prepare(*context, tenant_id);
  return context;
}

template <typename T, typename Fetch>
absl::StatusOr<T> GrpcSipPeers::CachedOr(Cache<T>& cache,
                                         std::initializer_list<absl::StatusCode> refusals,
                                         const std::string& key, Fetch fetch) {
  const absl::Time now = clock_.Now();
  if (std::optional<absl::StatusOr<T>> hit = cache.Get(key, now)) return *std::move(hit);
  absl::StatusOr<T> result = fetch();
  if (result.ok() || absl::c_linear_search(refusals, result.status().code())) {
    cache.Put(key, result, now + (result.ok() ? options_.cache_ttl : options_.negative_cache_ttl));
  }
  return result;
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

mv1::MediaService::Stub& GrpcSipPeers::Media() {
  absl::MutexLock lock(&stubs_mu_);
  if (media_ == nullptr) media_ = mv1::MediaService::NewStub(media_channel_());
  return *media_;
}

absl::StatusOr<SipDigest> GrpcSipPeers::GetSipDigest(const std::string& realm,
                                                     const std::string& username) {
  // Identity keeps only UTF-8 names: other octets (a scanner's junk) name nobody.
  if (!IsValidUtf8(realm) || !IsValidUtf8(username)) {
    return absl::NotFoundError("the SIP username or realm is not UTF-8");
  }
  return CachedOr(digests_, {absl::StatusCode::kNotFound}, absl::StrCat(realm, "\n", username),
                  [&]() -> absl::StatusOr<SipDigest> {
                    iv1::GetSipDigestRequest req;
                    req.set_realm(realm);
                    req.set_username(username);
                    iv1::GetSipDigestResponse resp;
                    auto context = Context();
                    if (grpc::Status s = Identity().GetSipDigest(context.get(), req, &resp);
                        !s.ok()) {
                      return PeerError(s, "identity", "GetSipDigest");
                    }
                    return SipDigest{.tenant_id = resp.tenant_id(),
                                     .user_id = resp.user_id(),
                                     .ha1_md5 = resp.ha1_md5(),
                                     .ha1_sha256 = resp.ha1_sha256()};
                  });
}

absl::StatusOr<ov1::MatchInboundTrunkResponse> GrpcSipPeers::MatchInboundTrunk(
    const std::string& source_ip, const std::string& number) {
  return CachedOr(matches_, {absl::StatusCode::kNotFound, absl::StatusCode::kPermissionDenied},
                  absl::StrCat(source_ip, "\n", number),
                  [&]() -> absl::StatusOr<ov1::MatchInboundTrunkResponse> {
                    ov1::MatchInboundTrunkRequest req;
                    req.set_source_address(source_ip);
                    req.set_number(number);
                    ov1::MatchInboundTrunkResponse resp;
                    auto context = Context();
                    if (grpc::Status s = Org().MatchInboundTrunk(context.get(), req, &resp);
                        !s.ok()) {
                      return PeerError(s, "org", "MatchInboundTrunk");
                    }
                    return resp;
                  });
}

absl::StatusOr<ov1::Trunk> GrpcSipPeers::GetTrunk(const std::string& tenant_id,
                                                  const std::string& trunk_id) {
  return CachedOr(trunks_, {}, absl::StrCat(tenant_id, "/", trunk_id),
                  [&]() -> absl::StatusOr<ov1::Trunk> {
                    ov1::GetTrunkRequest req;
                    req.set_tenant_id(tenant_id);
                    req.set_trunk_id(trunk_id);
                    ov1::Trunk trunk;
                    auto context = Context();
                    if (grpc::Status s = Org().GetTrunk(context.get(), req, &trunk); !s.ok()) {
                      return PeerError(s, "org", "GetTrunk");
                    }
                    return trunk;
                  });
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

absl::StatusOr<mv1::ProcessOfferResponse> GrpcSipPeers::ProcessOffer(
    const mv1::ProcessOfferRequest& req) {
  mv1::ProcessOfferResponse resp;
  auto context = Context(req.tenant_id());
  if (grpc::Status s = Media().ProcessOffer(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "media", "ProcessOffer");
  }
  return resp;
}

absl::StatusOr<mv1::ProcessAnswerResponse> GrpcSipPeers::ProcessAnswer(
    const mv1::ProcessAnswerRequest& req) {
  mv1::ProcessAnswerResponse resp;
  auto context = Context();
  if (grpc::Status s = Media().ProcessAnswer(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "media", "ProcessAnswer");
  }
  return resp;
}

absl::Status GrpcSipPeers::DeleteMediaSession(const mv1::DeleteSessionRequest& req) {
  mv1::DeleteSessionResponse resp;
  auto context = Context();
  if (grpc::Status s = Media().DeleteSession(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "media", "DeleteSession");
  }
  return absl::OkStatus();
}

absl::StatusOr<mv1::Recording> GrpcSipPeers::StartRecording(const mv1::StartRecordingRequest& req) {
  mv1::Recording resp;
  auto context = Context(req.tenant_id());
  if (grpc::Status s = Media().StartRecording(context.get(), req, &resp); !s.ok()) {
    return PeerError(s, "media", "StartRecording");
  }
  return resp;
}

void GrpcSipPeers::WatchMediaEvents(std::function<void(const mv1::MediaEvent&)> on_event) {
  StopMediaEvents();
  {
    absl::MutexLock lock(&watch_mu_);
    watch_stopped_ = false;
  }
  watcher_ = std::thread([this, on_event = std::move(on_event)] {
    pthread_setname_np(pthread_self(), "sip-media-evts");
    absl::Duration pause = absl::Milliseconds(100);
    for (;;) {
      grpc::ClientContext context;
      context.AddMetadata(auth::kInternalTokenHeader, options_.internal_token);
      {
        absl::MutexLock lock(&watch_mu_);
        if (watch_stopped_) return;
        watch_context_ = &context;
      }
      mv1::StreamMediaEventsRequest request;  // every call on the node
      auto reader = Media().StreamMediaEvents(&context, request);
      mv1::MediaEvent event;
      bool received = false;
      while (reader->Read(&event)) {
        received = true;
        on_event(event);
      }
      const grpc::Status s = reader->Finish();
      absl::MutexLock lock(&watch_mu_);
      watch_context_ = nullptr;
      if (watch_stopped_) return;
      if (received) pause = absl::Milliseconds(100);
      spdlog::log(pause > absl::Seconds(1) ? spdlog::level::debug : spdlog::level::warn,
                  "sip: media event stream ended ({}); opening it again in {}",
                  std::string(PeerError(s, "media", "StreamMediaEvents").message()),
                  absl::FormatDuration(pause));
      // Woken early by StopMediaEvents.
      watch_mu_.AwaitWithTimeout(absl::Condition(&watch_stopped_), pause);
      if (watch_stopped_) return;
      pause = std::min(pause * 2, absl::Seconds(5));
    }
  });
}

void GrpcSipPeers::StopMediaEvents() {
  {
    absl::MutexLock lock(&watch_mu_);
    watch_stopped_ = true;
    if (watch_context_ != nullptr) watch_context_->TryCancel();
  }
  if (watcher_.joinable()) watcher_.join();
}

void GrpcSipPeers::ReportCallEventAsync(rv1::ReportCallEventRequest req) {
  {
    absl::MutexLock lock(&reports_mu_);
    if (reports_stopped_) return;
    if (reports_in_flight_ >= options_.max_reports_in_flight) {
      const int64_t dropped = reports_dropped_.fetch_add(1) + 1;
      // One line for the first drop and one per thousand after it: an overload must not become a
      // log storm as well.
      if (dropped % 1000 == 1) {
        spdlog::warn("sip: {} reports to routing in flight; report for call {} dropped ({} so far)",
                     reports_in_flight_, req.call_id(), dropped);
      }
      return;
    }
    ++reports_in_flight_;
    report_queue_.push_back(std::move(req));
  }
}

int GrpcSipPeers::reports_in_flight() const {
  absl::MutexLock lock(&reports_mu_);
  return reports_in_flight_;
}

}  // namespace sb::sip
