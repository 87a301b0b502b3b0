#include "services/media/media_service.h"

#include "libs/app/rpc_errors.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace sb::media {
namespace {

std::string_view Short(const std::string& id) { return std::string_view(id).substr(0, 64); }

}  // namespace

grpc::Status MediaService::ProcessOffer(grpc::ServerContext* context,
                                        const v1::ProcessOfferRequest* request,
                                        v1::ProcessOfferResponse* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.sessions.Offer(*request));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::ProcessAnswer(grpc::ServerContext* context,
                                         const v1::ProcessAnswerRequest* request,
                                         v1::ProcessAnswerResponse* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.sessions.Answer(*request));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::DeleteSession(grpc::ServerContext* context,
                                         const v1::DeleteSessionRequest* request,
                                         v1::DeleteSessionResponse* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    *response = deps_.sessions.Delete(*request);
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::GetSession(grpc::ServerContext* context,
                                      const v1::GetSessionRequest* request,
                                      v1::MediaSession* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.sessions.Get(request->call_id()));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::StreamMediaEvents(grpc::ServerContext* context,
                                             const v1::StreamMediaEventsRequest* request,
                                             grpc::ServerWriter<v1::MediaEvent>* writer) {
  if (absl::Status s = deps_.authenticator.RequireInternal(*context); !s.ok()) {
    return app::ToGrpc(*context, s);
  }
  std::shared_ptr<Sessions::Subscription> subscription =
      deps_.sessions.Subscribe(request->call_id());
  // Polled, so that a cancelled stream (the client gone, the server stopping) ends within the
  // half second.
  while (!context->IsCancelled() && !subscription->closed()) {
    for (const v1::MediaEvent& event : subscription->Next(absl::Milliseconds(500))) {
      if (!writer->Write(event)) {
        deps_.sessions.Unsubscribe(subscription);
        return grpc::Status::OK;
      }
    }
  }
  deps_.sessions.Unsubscribe(subscription);
  return context->IsCancelled() ? grpc::Status::CANCELLED : grpc::Status::OK;
}

grpc::Status MediaService::GetNodeStats(grpc::ServerContext* context,
                                        const v1::GetNodeStatsRequest* /*request*/,
                                        v1::MediaNodeStats* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    *response = deps_.sessions.Stats();
    return absl::OkStatus();
  }());
}

namespace {

// A person's request to the recordings catalogue: who, once the credential holds.
absl::StatusOr<auth::Principal> Person(const MediaDeps& deps, grpc::ServerContext& context) {
  SB_ASSIGN_OR_RETURN(auth::Principal principal, deps.authenticator.Authenticate(context));
  SB_RETURN_IF_ERROR(auth::RequireUnrestricted(principal));
  return principal;
}

}  // namespace

grpc::Status MediaService::StartRecording(grpc::ServerContext* context,
                                          const v1::StartRecordingRequest* request,
                                          v1::Recording* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.recordings.Start(*request));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::StopRecording(grpc::ServerContext* context,
                                         const v1::StopRecordingRequest* request,
                                         v1::Recording* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.recordings.Stop(request->call_id()));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::PauseRecording(grpc::ServerContext* context,
                                          const v1::PauseRecordingRequest* request,
                                          v1::Recording* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.recordings.Pause(request->call_id()));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::ResumeRecording(grpc::ServerContext* context,
                                           const v1::ResumeRecordingRequest* request,
                                           v1::Recording* response) {
  ScopedLogFields fields({{"call_id", Short(request->call_id())}});
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_RETURN_IF_ERROR(deps_.authenticator.RequireInternal(*context));
    SB_ASSIGN_OR_RETURN(*response, deps_.recordings.Resume(request->call_id()));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::GetRecording(grpc::ServerContext* context,
                                        const v1::GetRecordingRequest* request,
                                        v1::Recording* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal principal, Person(deps_, *context));
    SB_ASSIGN_OR_RETURN(*response,
                        deps_.recordings.Get(principal, deps_.authorizer, request->recording_id()));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::ListRecordings(grpc::ServerContext* context,
                                          const v1::ListRecordingsRequest* request,
                                          v1::ListRecordingsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal principal, Person(deps_, *context));
    SB_ASSIGN_OR_RETURN(*response, deps_.recordings.List(principal, deps_.authorizer, *request));
    return absl::OkStatus();
  }());
}

grpc::Status MediaService::DownloadRecording(
    grpc::ServerContext* context, const v1::DownloadRecordingRequest* request,
    grpc::ServerWriter<v1::DownloadRecordingResponse>* writer) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal principal, Person(deps_, *context));
    return deps_.recordings.Download(
        principal, deps_.authorizer, *request,
        [&](const v1::DownloadRecordingResponse& chunk) { return writer->Write(chunk); });
  }());
}

grpc::Status MediaService::DeleteRecording(grpc::ServerContext* context,
                                           const v1::DeleteRecordingRequest* request,
                                           google::protobuf::Empty* /*response*/) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal principal, Person(deps_, *context));
    return deps_.recordings.Delete(principal, deps_.authorizer, request->recording_id());
  }());
}

}  // namespace sb::media
