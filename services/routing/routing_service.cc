#include "services/routing/routing_service.h"

#include "absl/strings/ascii.h"
#include "libs/app/call_context.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace sb::routing {
namespace {

// Ids from requests as log fields: unvalidated, so bounded.
std::string_view Short(const std::string& id) { return std::string_view(id).substr(0, 64); }

}  // namespace

RoutingService::RoutingService(RoutingDeps deps, RouterOptions options)
    : deps_(deps),
      outbound_(deps.directory),
      router_(deps.directory, outbound_, deps.clock, options) {}

absl::Status RoutingService::RequireInternal(grpc::ServerContext& context) const {
  return deps_.authenticator.RequireInternal(context);
}

grpc::Status RoutingService::RouteCall(grpc::ServerContext* context,
                                       const v1::RouteCallRequest* request,
                                       v1::RouteCallResponse* response) {
  const std::string& tenant =
      request->has_phone() ? request->phone().tenant_id() : request->trunk().tenant_id();
  ScopedLogFields fields({{"call_id", Short(request->call_id())}, {"tenant", Short(tenant)}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, router_.RouteCall(*request));
    return absl::OkStatus();
  }());
}

grpc::Status RoutingService::ReportCallEvent(grpc::ServerContext* context,
                                             const v1::ReportCallEventRequest* request,
                                             v1::ReportCallEventResponse* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, router_.ReportCallEvent(*request));
    return absl::OkStatus();
  }());
}

grpc::Status RoutingService::AuthorizeOutboundCall(grpc::ServerContext* context,
                                                   const v1::AuthorizeOutboundCallRequest* request,
                                                   v1::AuthorizeOutboundCallResponse* response) {
  ScopedLogFields fields(
      {{"call_id", Short(request->call_id())}, {"tenant", Short(request->tenant_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, outbound_.Authorize(*request));
    return absl::OkStatus();
  }());
}

}  // namespace sb::routing
