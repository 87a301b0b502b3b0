#pragma once

// The gRPC face of the `media` target. Internal (the service credential; a person's token gets
// PermissionDenied): the session RPCs (ProcessOffer, ProcessAnswer, DeleteSession, GetSession),
// StreamMediaEvents, GetNodeStats and recording control (Start/Stop/Pause/ResumeRecording).
// People (through the gateway): the recordings catalogue (Get/List/Download/DeleteRecording).
// Prompts, digits and live listen come with the rest of issue #6 and answer UNIMPLEMENTED (gRPC's
// generated default) until then.

#include "libs/auth/authenticator.h"
#include "services/media/recordings.h"
#include "services/media/sessions.h"
#include "switchboard/media/v1/media_service.grpc.pb.h"

namespace sb::media {

struct MediaDeps {
  const auth::Authenticator& authenticator;
  const auth::Authorizer& authorizer;
  Sessions& sessions;
  Recordings& recordings;
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
  grpc::Status StartRecording(grpc::ServerContext* context,
                              const v1::StartRecordingRequest* request,
                              v1::Recording* response) override;
  grpc::Status StopRecording(grpc::ServerContext* context, const v1::StopRecordingRequest* request,
                             v1::Recording* response) override;
  grpc::Status PauseRecording(grpc::ServerContext* context,
                              const v1::PauseRecordingRequest* request,
                              v1::Recording* response) override;
  grpc::Status ResumeRecording(grpc::ServerContext* context,
                               const v1::ResumeRecordingRequest* request,
                               v1::Recording* response) override;
  grpc::Status GetRecording(grpc::ServerContext* context, const v1::GetRecordingRequest* request,
                            v1::Recording* response) override;
  grpc::Status ListRecordings(grpc::ServerContext* context,
                              const v1::ListRecordingsRequest* request,
                              v1::ListRecordingsResponse* response) override;
  grpc::Status DownloadRecording(
      grpc::ServerContext* context, const v1::DownloadRecordingRequest* request,
      grpc::ServerWriter<v1::DownloadRecordingResponse>* writer) override;
  grpc::Status DeleteRecording(grpc::ServerContext* context,
                               const v1::DeleteRecordingRequest* request,
                               google::protobuf::Empty* response) override;

 private:
  MediaDeps deps_;
};

}  // namespace sb::media
