#pragma once

// SipPeers: what the sip service asks of other services (identity, org, routing). Blocking calls,
// made from sip's worker threads, never from a SIP loop. Behind an interface so that the B2BUA and
// the registrar can be tested against fakes; GrpcSipPeers is the real one.

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/auth/identity_clients.h"
#include "libs/common/clock.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"
#include "switchboard/routing/v1/routing_service.grpc.pb.h"

namespace sb::sip {

namespace rv1 = ::switchboard::routing::v1;
namespace ov1 = ::switchboard::org::v1;

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
  virtual absl::StatusOr<rv1::ReportCallEventResponse> ReportCallEvent(
      const rv1::ReportCallEventRequest& req) = 0;
};

// Over gRPC with the internal credential and a deadline on every call. Digest credentials and
// trunks are cached for `cache_ttl` (a REGISTER storm must not become an identity storm): a new or
// rotated SIP password takes up to that long to apply.
class GrpcSipPeers final : public SipPeers {
 public:
  struct Options {
    std::string internal_token;
    absl::Duration deadline = absl::Seconds(2);
    absl::Duration cache_ttl = absl::Seconds(30);
    absl::Duration negative_cache_ttl = absl::Seconds(5);
  };
  GrpcSipPeers(auth::ChannelFactory identity, auth::ChannelFactory org,
               auth::ChannelFactory routing, const Clock& clock, Options options);

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

 private:
  template <typename T>
  struct Cached {
    absl::StatusOr<T> value;
    absl::Time expires;
  };
  std::unique_ptr<grpc::ClientContext> Context(const std::string& tenant_id = {}) const;
  ::switchboard::identity::v1::IdentityService::Stub& Identity();
  ov1::OrgService::Stub& Org();
  rv1::RoutingService::Stub& Routing();

  auth::ChannelFactory identity_channel_, org_channel_, routing_channel_;
  const Clock& clock_;
  const Options options_;
  absl::Mutex stubs_mu_;
  std::unique_ptr<::switchboard::identity::v1::IdentityService::Stub> identity_
      ABSL_GUARDED_BY(stubs_mu_);
  std::unique_ptr<ov1::OrgService::Stub> org_ ABSL_GUARDED_BY(stubs_mu_);
  std::unique_ptr<rv1::RoutingService::Stub> routing_ ABSL_GUARDED_BY(stubs_mu_);

  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, Cached<SipDigest>> digests_ ABSL_GUARDED_BY(cache_mu_);
  absl::flat_hash_map<std::string, Cached<ov1::Trunk>> trunks_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace sb::sip
