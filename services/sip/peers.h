#pragma once

// SipPeers: what the sip service asks of other services (identity, org, routing, media). Blocking
// calls, made from sip's worker threads, never from a SIP loop — except ReportCallEventAsync,
// which never blocks, and WatchMediaEvents, which has its own thread. Behind an interface so that
// the B2BUA and the registrar can be tested against fakes; GrpcSipPeers is the real one.
// Implementations are thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/auth/identity_clients.h"
#include "libs/common/clock.h"
#include "libs/common/expiring_cache.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/media/v1/media_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"
#include "switchboard/routing/v1/routing_service.grpc.pb.h"

namespace sb::sip {

namespace rv1 = ::switchboard::routing::v1;
namespace ov1 = ::switchboard::org::v1;
namespace mv1 = ::switchboard::media::v1;

// The digest credential behind a SIP username in a realm (a tenant's SIP domain).
struct SipDigest {
  std::string tenant_id;
  std::string user_id;
  std::string ha1_md5;
  std::string ha1_sha256;
};

class SipPeers {
 public:
  virtual ~SipPeers() = default;
  // NotFound: no such realm or username (or the tenant or user is disabled).
  virtual absl::StatusOr<SipDigest> GetSipDigest(const std::string& realm,
                                                 const std::string& username) = 0;
  // NotFound: the number is not one of ours (404); PermissionDenied: the source may not send
  // calls for it (403).
  virtual absl::StatusOr<ov1::MatchInboundTrunkResponse> MatchInboundTrunk(
      const std::string& source_ip, const std::string& number) = 0;
  // NotFound: no such trunk.
  virtual absl::StatusOr<ov1::Trunk> GetTrunk(const std::string& tenant_id,
                                              const std::string& trunk_id) = 0;
  // An agent's profile (their extension, for click-to-call). NotFound.
  virtual absl::StatusOr<ov1::AgentProfile> GetAgentProfile(const std::string& tenant_id,
                                                            const std::string& user_id) = 0;
  virtual absl::StatusOr<rv1::RouteCallResponse> RouteCall(const rv1::RouteCallRequest& req) = 0;
  // Blocking; for the reports whose answer the call needs (ring_plan_failed,
  // transfer_requested: the next instruction).
  virtual absl::StatusOr<rv1::ReportCallEventResponse> ReportCallEvent(
      const rv1::ReportCallEventRequest& req) = 0;
  // Fire and forget, for the reports whose answer nobody reads (target_ringing, target_answered,
  // call_ended, ...): returns at once without waiting for routing, from any thread, including a
  // SIP loop (it only queues; one reporter thread starts the calls, and no thread waits while a
  // report is on its way). Best effort, like the reports
  // the B2BUA used to queue on its workers: the answer and any failure are dropped (failures
  // logged at debug), and when too many reports are already in flight the report is dropped at
  // once (logged and counted).
  virtual void ReportCallEventAsync(rv1::ReportCallEventRequest req) = 0;

  // Anchored media (issue #6): each session description a leg sends goes to media, and the other
  // leg gets the one media returns, which names media's ports.
  virtual absl::StatusOr<mv1::ProcessOfferResponse> ProcessOffer(
      const mv1::ProcessOfferRequest& req) = 0;
  virtual absl::StatusOr<mv1::ProcessAnswerResponse> ProcessAnswer(
      const mv1::ProcessAnswerRequest& req) = 0;
  virtual absl::Status DeleteMediaSession(const mv1::DeleteSessionRequest& req) = 0;
  virtual absl::StatusOr<mv1::Recording> StartRecording(const mv1::StartRecordingRequest& req) = 0;
  // Media's events for every call (RTP timeouts, ...) go to `on_event`, on a thread of the
  // peers' own, from now until StopMediaEvents(); a broken stream is opened again (a media
  // restart), after a pause that grows to a few seconds while it keeps failing.
  virtual void WatchMediaEvents(std::function<void(const mv1::MediaEvent&)> on_event) = 0;
  virtual void StopMediaEvents() = 0;
};

// Over gRPC with the internal credential and a deadline on every call. Digest credentials,
// trunks and inbound-trunk matches are cached for `cache_ttl` (a REGISTER storm must not become
// an identity storm, nor a call storm an org storm): a new or rotated SIP password, or a trunk's
// or number's change, takes up to that long to apply. Refusals — an unknown SIP user, a number
// that is not ours (NotFound) or a source that may not send calls for it (PermissionDenied) — are
// kept for `negative_cache_ttl`; failures (Unavailable, Internal, ...) are never kept.
// ReportCallEventAsync uses gRPC's callback API, at most `max_reports_in_flight` at a time;
// StopReports() (and the destructor) waits for those in flight (each ends within `deadline`).
class GrpcSipPeers final : public SipPeers {
 public:
  struct Options {
    std::string internal_token;
    absl::Duration deadline = absl::Seconds(2);
    absl::Duration cache_ttl = absl::Seconds(30);
    absl::Duration negative_cache_ttl = absl::Seconds(5);
    int max_reports_in_flight = 1024;
  };
  GrpcSipPeers(auth::ChannelFactory identity, auth::ChannelFactory org,
               auth::ChannelFactory routing, auth::ChannelFactory media, const Clock& clock,
               Options options);
  ~GrpcSipPeers() override;

  absl::StatusOr<SipDigest> GetSipDigest(const std::string& realm,
                                         const std::string& username) override;
  absl::StatusOr<ov1::MatchInboundTrunkResponse> MatchInboundTrunk(
      const std::string& source_ip, const std::string& number) override;
  absl::StatusOr<ov1::Trunk> GetTrunk(const std::string& tenant_id,
                                      const std::string& trunk_id) override;
  absl::StatusOr<ov1::AgentProfile> GetAgentProfile(const std::string& tenant_id,
                                                    const std::string& user_id) override;
  absl::StatusOr<rv1::RouteCallResponse> RouteCall(const rv1::RouteCallRequest& req) override;
  absl::StatusOr<rv1::ReportCallEventResponse> ReportCallEvent(
      const rv1::ReportCallEventRequest& req) override;
  void ReportCallEventAsync(rv1::ReportCallEventRequest req) override;
  absl::StatusOr<mv1::ProcessOfferResponse> ProcessOffer(
      const mv1::ProcessOfferRequest& req) override;
  absl::StatusOr<mv1::ProcessAnswerResponse> ProcessAnswer(
      const mv1::ProcessAnswerRequest& req) override;
  absl::Status DeleteMediaSession(const mv1::DeleteSessionRequest& req) override;
  absl::StatusOr<mv1::Recording> StartRecording(const mv1::StartRecordingRequest& req) override;
  void WatchMediaEvents(std::function<void(const mv1::MediaEvent&)> on_event) override;
  void StopMediaEvents() override;

  // Waits for the asynchronous reports in flight; reports after it are dropped without a word.
  // For the module's stop, while the services it reports to still answer: in-process channels
  // must not start calls once the process's gRPC servers have shut down (Platform::ChannelTo).
  void StopReports();

  // For metrics: asynchronous reports on their way now, and those dropped because too many were.
  int reports_in_flight() const;
  int64_t reports_dropped() const { return reports_dropped_.load(); }

 private:
  template <typename T>
  using Cache = ExpiringCache<absl::StatusOr<T>>;
  struct AsyncReport;

  // `key`'s answer from `cache` while it is fresh, else fetch()'s, kept for cache_ttl when OK,
  // for negative_cache_ttl when its code is one of `refusals`, not at all otherwise.
  template <typename T, typename Fetch>
  absl::StatusOr<T> CachedOr(Cache<T>& cache, std::initializer_list<absl::StatusCode> refusals,
                             const std::string& key, Fetch fetch);
  // The credential and the deadline (and the tenant, when given) on an outgoing call.
  void Prepare(grpc::ClientContext& context, const std::string& tenant_id = {}) const;
  std::unique_ptr<grpc::ClientContext> Context(const std::string& tenant_id = {}) const;
  ::switchboard::identity::v1::IdentityService::Stub& Identity();
  ov1::OrgService::Stub& Org();
  rv1::RoutingService::Stub& Routing();
  mv1::MediaService::Stub& Media();

  auth::ChannelFactory identity_channel_, org_channel_, routing_channel_, media_channel_;
  const Clock& clock_;
  const Options options_;
  absl::Mutex stubs_mu_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> identity_
      ABSL_GUARDED_BY(stubs_mu_);
  std::unique_ptr<ov1::OrgService::Stub> org_ ABSL_GUARDED_BY(stubs_mu_);
  std::unique_ptr<rv1::RoutingService::Stub> routing_ ABSL_GUARDED_BY(stubs_mu_);
  std::unique_ptr<mv1::MediaService::Stub> media_ ABSL_GUARDED_BY(stubs_mu_);

  Cache<SipDigest> digests_{100'000};
  Cache<ov1::Trunk> trunks_{10'000};
  Cache<ov1::MatchInboundTrunkResponse> matches_{100'000};

  // The reporter thread: starts the queued reports' asynchronous calls, so that a SIP loop only
  // queues (gRPC's call set-up was about 5% of the loop's time under load).
  void RunReporter();

  mutable absl::Mutex reports_mu_;
  // Queued and on their way: what max_reports_in_flight bounds.
  int reports_in_flight_ ABSL_GUARDED_BY(reports_mu_) = 0;
  bool reports_stopped_ ABSL_GUARDED_BY(reports_mu_) = false;
  std::vector<rv1::ReportCallEventRequest> report_queue_ ABSL_GUARDED_BY(reports_mu_);
  std::thread reporter_;
  std::atomic<int64_t> reports_dropped_{0};

  // The media events watcher: one stream at a time, cancelled by StopMediaEvents.
  absl::Mutex watch_mu_;
  bool watch_stopped_ ABSL_GUARDED_BY(watch_mu_) = false;
  grpc::ClientContext* watch_context_ ABSL_GUARDED_BY(watch_mu_) = nullptr;
  std::thread watcher_;
};

}  // namespace sb::sip
