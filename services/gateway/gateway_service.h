#pragma once

#include "switchboard/gateway/v1/gateway_service.grpc.pb.h"

namespace sb::gateway {

namespace v1 = ::switchboard::gateway::v1;

// The gRPC face of the `gateway` target. Its RPCs are implemented with issue #9 and #10; until then
// every RPC answers UNIMPLEMENTED (gRPC's generated default), while the target already runs in
// the process with health, metrics and its schema.
class GatewayService final : public v1::GatewayService::Service {};

}  // namespace sb::gateway
