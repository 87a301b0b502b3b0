#pragma once

// Recordings: the calls this node records and the tenant's recording catalogue.
//
// Control (internal: sip, routing): Start puts a Recording (recorder.h) on the call's relay pair
// as its tap and a RECORDING row in media.recordings; Pause/Resume write silence for the span;
// Stop (or the call's media session ending) finishes the file and stores its duration, paused
// time, size and SHA-256 as COMPLETED. A call has one recording at a time; a repeated Start with
// the same recording_id is the same recording.
//
// Files live under `root` as <tenant>/<yyyy>/<mm>/<dd>/<id>.wav; rows keep the path relative to
// the root. Recover() runs at start-up: recordings this node left RECORDING or PAUSED (the process
// died mid-call) become FAILED with what their file holds (the recorder keeps the WAV header valid
// as it writes, so the file plays).
//
// Catalogue (people, through the gateway): Get, List, Download (from an offset, in chunks: HTTP
// Range), Delete. Listening needs recordings.listen with a scope that reaches the recording's
// agent; deleting needs objects.delete as well. Expire() deletes recordings past their
// `expires_at` (the tenant's retention when recorded).
//
// Thread-safe.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/auth/authorizer.h"
#include "libs/common/clock.h"
#include "libs/pg/pool.h"
#include "services/media/recorder.h"
#include "services/media/sessions.h"
#include "switchboard/media/v1/media_service.pb.h"

namespace sb::media {

struct RecordingsOptions {
  std::string root;
  std::string node_id;
};

class Recordings {
 public:
  Recordings(pg::Pool& pg, Sessions& sessions, RtpRelay& relay, Recorder& recorder,
             const Clock& clock, RecordingsOptions options);
  ~Recordings();

  absl::StatusOr<v1::Recording> Start(const v1::StartRecordingRequest& request);
  absl::StatusOr<v1::Recording> Stop(const std::string& call_id);
  absl::StatusOr<v1::Recording> Pause(const std::string& call_id);
  absl::StatusOr<v1::Recording> Resume(const std::string& call_id);
  // The call's media ended: its recording, if any, is finished.
  void OnCallEnded(const std::string& call_id);

  absl::StatusOr<v1::Recording> Get(const auth::Principal& principal,
                                    const auth::Authorizer& authorizer, const std::string& id);
  absl::StatusOr<v1::ListRecordingsResponse> List(const auth::Principal& principal,
                                                  const auth::Authorizer& authorizer,
                                                  const v1::ListRecordingsRequest& request);
  // Sends the file's bytes from the request's offset in chunks to `write` (false: stop). OutOfRange
  // for an offset at or past the end; FailedPrecondition while it is still being recorded.
  absl::Status Download(const auth::Principal& principal, const auth::Authorizer& authorizer,
                        const v1::DownloadRecordingRequest& request,
                        const std::function<bool(const v1::DownloadRecordingResponse&)>& write);
  absl::Status Delete(const auth::Principal& principal, const auth::Authorizer& authorizer,
                      const std::string& id);

  // Start-up: this node's recordings left open by a crash become FAILED; how many.
  absl::StatusOr<int> Recover();
  // Deletes the files of recordings whose expires_at is before `now`; how many.
  absl::StatusOr<int> Expire(absl::Time now);

  size_t active() const;

 private:
  struct Active;
  struct FileRow {
    std::string tenant_id, id, path;
  };
  // Up to 1000 recordings matching `where` (SQL with one parameter, $1 = param).
  absl::StatusOr<std::vector<FileRow>> FileRows(const char* where, const std::string& param);
  absl::StatusOr<v1::Recording> Load(const std::string& tenant_id, const std::string& id);
  // The recording row `id` once the principal may listen to it.
  absl::StatusOr<v1::Recording> Visible(const auth::Principal& principal,
                                        const auth::Authorizer& authorizer, const std::string& id,
                                        std::string* path = nullptr);
  // The call's recording in progress (taken out of active_ when `take`); FailedPrecondition.
  absl::StatusOr<std::shared_ptr<Active>> Recorded(const std::string& call_id, bool take);
  absl::StatusOr<v1::Recording> Finish(const std::shared_ptr<Active>& active);
  absl::StatusOr<v1::Recording> SetPaused(const std::string& call_id, bool paused);

  pg::Pool& pg_;
  Sessions& sessions_;
  RtpRelay& relay_;
  Recorder& recorder_;
  const Clock& clock_;
  const RecordingsOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Active>> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sb::media
