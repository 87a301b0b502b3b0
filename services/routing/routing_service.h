#pragma once

#include "switchboard/routing/v1/routing_service.grpc.pb.h"

namespace sb::routing {

namespace v1 = ::switchboard::routing::v1;

// The gRPC face of the `routing` target. Its RPCs are implemented with issue #7 (RouteCall's first
// form with #5); until then every RPC answers UNIMPLEMENTED (gRPC's generated default), while the
// target already runs in the process with health, metrics and its schema.
class RoutingService final : public v1::RoutingService::Service {};

}  // namespace sb::routing
