#pragma once

// The gRPC face of the `media` target: the session RPCs (ProcessOffer, ProcessAnswer,
// DeleteSession, GetSession), StreamMediaEvents and GetNodeStats, all Internal (the service
// credential; a person's token gets PermissionDenied). Prompts, digits, recordings and live listen
// come with the rest of issue #6 and answer UNIMPLEMENTED (gRPC's generated default) until then.

#include "libs/auth/authenticator.h"
#include "services/media/sessions.h"
#include "switchboard/media/v1/media_service.grpc.pb.h"

namespace sb::media {

struct MediaDeps {
  const auth::Authenticator& authenticator;
  Sessions& sessions;
};

class MediaService final : public v1::MediaService::Service {
 public:
  explicit MediaService(MediaDeps deps) : deps_(deps) {}

  grpc::Status ProcessOffer(grpc::ServerContext* context, const v1::ProcessOfferRequest* request,
                            v1::ProcessOfferResponse* response) override;
  grpc::Status ProcessAnswer(grpc::ServerContext* context, const v1::ProcessAnswerRequest* request,
                             v1::ProcessAnswerResponse* response) override;
  grpc::Status DeleteSession(grpc::ServerContext* context, const v1::DeleteSessionRequest* request,
                             v1::DeleteSessionResponse* response) override;
  grpc::Status GetSession(grpc::ServerContext* context, const v1::GetSessionRequest* request,
                          v1::MediaSession* response) override;
  grpc::Status StreamMediaEvents(grpc::ServerContext* context,
                                 const v1::StreamMediaEventsRequest* request,
                                 grpc::ServerWriter<v1::MediaEvent>* writer) override;
  grpc::Status GetNodeStats(grpc::ServerContext* context, const v1::GetNodeStatsRequest* request,
                            v1::MediaNodeStats* response) override;

 private:
  MediaDeps deps_;
};

}  // namespace sb::media
