#pragma once

#include "switchboard/identity/v1/identity_service.grpc.pb.h"

namespace sb::identity {

namespace v1 = ::switchboard::identity::v1;

// The gRPC face of the `identity` target. Its RPCs are implemented with issue #3; until then
// every RPC answers UNIMPLEMENTED (gRPC's generated default), while the target already runs in
// the process with health, metrics and its schema.
class IdentityService final : public v1::IdentityService::Service {};

}  // namespace sb::identity
