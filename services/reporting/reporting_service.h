#pragma once

#include "switchboard/reporting/v1/reporting_service.grpc.pb.h"

namespace sb::reporting {

namespace v1 = ::switchboard::reporting::v1;

// The gRPC face of the `reporting` target. Its RPCs are implemented with issue #8; until then
// every RPC answers UNIMPLEMENTED (gRPC's generated default), while the target already runs in
// the process with health, metrics and its schema.
class ReportingService final : public v1::ReportingService::Service {};

}  // namespace sb::reporting
