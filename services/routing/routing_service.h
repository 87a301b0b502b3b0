#pragma once

// The gRPC face of the `routing` target (proto/switchboard/routing/v1/routing_service.proto).
//
// Built now (issue #5), in their first, stateless form — all Internal (the service credential
// x-sb-internal-token; a person's token gets PermissionDenied, no credential Unauthenticated):
//   RouteCall              a new call -> its first instruction (CallRouter, call_router.h): a hunt
//                          ring plan over the agents who selected the number's project, an
//                          internal call to an extension, an authorised outbound call, or a
//                          rejection;
//   ReportCallEvent        ring_plan_failed -> the rejection that ends the call; other events
//                          need no answer yet;
//   AuthorizeOutboundCall  PIN, wallet, destination rules, trunk and caller id
//                          (OutboundAuthorizer, outbound_authorizer.h).
// What org and identity know comes through a Directory (directory.h). Issue #7 makes routing
// stateful (call flows and IVR, queues and ACD, agent states in Redis) and implements the other
// RPCs; until then they answer UNIMPLEMENTED (gRPC's generated default).
//
// Handlers check the credential, delegate, and map the result to a gRPC status with structured
// details (libs/app/rpc_errors.h). Thread-safe.

#include "libs/auth/authenticator.h"
#include "libs/common/clock.h"
#include "services/routing/call_router.h"
#include "services/routing/directory.h"
#include "services/routing/outbound_authorizer.h"
#include "switchboard/routing/v1/routing_service.grpc.pb.h"

namespace sb::routing {

namespace v1 = ::switchboard::routing::v1;

// What the service needs from outside; everything must outlive it.
struct RoutingDeps {
  const Clock& clock;
  const auth::Authenticator& authenticator;
  Directory& directory;
};

class RoutingService final : public v1::RoutingService::Service {
 public:
  explicit RoutingService(RoutingDeps deps, RouterOptions options = {});

  grpc::Status RouteCall(grpc::ServerContext* context, const v1::RouteCallRequest* request,
                         v1::RouteCallResponse* response) override;
  grpc::Status ReportCallEvent(grpc::ServerContext* context,
                               const v1::ReportCallEventRequest* request,
                               v1::ReportCallEventResponse* response) override;
  grpc::Status AuthorizeOutboundCall(grpc::ServerContext* context,
                                     const v1::AuthorizeOutboundCallRequest* request,
                                     v1::AuthorizeOutboundCallResponse* response) override;

 private:
  // OK for the service credential. PermissionDenied for a person's valid token (the RPC is the
  // platform's own), Unauthenticated otherwise.
  absl::Status RequireInternal(grpc::ServerContext& context) const;

  RoutingDeps deps_;
  OutboundAuthorizer outbound_;
  CallRouter router_;
};

}  // namespace sb::routing
