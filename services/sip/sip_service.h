#pragma once

#include "switchboard/sip/v1/sip_service.grpc.pb.h"

namespace sb::sip {

namespace v1 = ::switchboard::sip::v1;

// The gRPC face of the `sip` target. Its RPCs are implemented with issue #5; until then
// every RPC answers UNIMPLEMENTED (gRPC's generated default), while the target already runs in
// the process with health, metrics and its schema.
class SipService final : public v1::SipService::Service {};

}  // namespace sb::sip
