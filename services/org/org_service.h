#pragma once

#include "switchboard/org/v1/org_service.grpc.pb.h"

namespace sb::org {

namespace v1 = ::switchboard::org::v1;

// The gRPC face of the `org` target. Its RPCs are implemented with issue #4; until then
// every RPC answers UNIMPLEMENTED (gRPC's generated default), while the target already runs in
// the process with health, metrics and its schema.
class OrgService final : public v1::OrgService::Service {};

}  // namespace sb::org
