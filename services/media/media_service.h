#pragma once

#include "switchboard/media/v1/media_service.grpc.pb.h"

namespace sb::media {

namespace v1 = ::switchboard::media::v1;

// The gRPC face of the `media` target. Its RPCs are implemented with issue #6; until then
// every RPC answers UNIMPLEMENTED (gRPC's generated default), while the target already runs in
// the process with health, metrics and its schema.
class MediaService final : public v1::MediaService::Service {};

}  // namespace sb::media
