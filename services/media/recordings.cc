#include "services/media/recordings.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/auth/permissions.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"

namespace sb::media {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr char kColumns[] =
    "tenant_id::text, id::text, call_id, state, path, node_id, agent_user_id, on_demand, "
    "started_by_user_id, extract(epoch from started_at), extract(epoch from ended_at), "
    "duration_ms, paused_ms, size_bytes, sha256, extract(epoch from expires_at)";
constexpr int64_t kMaxChunk = 1 << 20;
constexpr int64_t kDefaultChunk = 64 << 10;

v1::Recording FromRow(const pqxx::row& row, std::string* path) {
  v1::Recording r;
  r.set_tenant_id(row[0].c_str());
  r.set_id(row[1].c_str());
  r.set_call_id(row[2].c_str());
  r.set_state(static_cast<v1::RecordingState>(row[3].as<int>()));
  if (path != nullptr) *path = row[4].c_str();
  r.set_node_id(row[5].c_str());
  r.set_agent_user_id(row[6].c_str());
  r.set_on_demand(row[7].as<bool>());
  r.set_started_by_user_id(row[8].c_str());
  pg::SetTimestamp(r.mutable_started_at(), row[9]);
  if (!row[10].is_null()) pg::SetTimestamp(r.mutable_ended_at(), row[10]);
  pg::SetDuration(r.mutable_duration(), absl::Milliseconds(row[11].as<int64_t>()));
  pg::SetDuration(r.mutable_paused_duration(), absl::Milliseconds(row[12].as<int64_t>()));
  r.set_size_bytes(row[13].as<int64_t>());
  r.set_sha256(row[14].c_str());
  if (!row[15].is_null()) pg::SetTimestamp(r.mutable_expires_at(), row[15]);
  r.set_content_type("audio/wav");
  r.set_sample_rate(kRecordingRate);
  r.set_channels(2);
  return r;
}

int64_t FramesToMs(int64_t frames) { return frames * 1000 / kRecordingRate; }

}  // namespace

struct Recordings::Active {
  std::string id;
  std::string tenant_id;
  std::string call_id;
  std::shared_ptr<RtpRelay::LegPair> pair;
  std::shared_ptr<Recording> recording;
  absl::Mutex mu;  // one control operation at a time
  bool paused = false;
};

Recordings::Recordings(pg::Pool& pg, Sessions& sessions, RtpRelay& relay, Recorder& recorder,
                       const Clock& clock, RecordingsOptions options)
    : pg_(pg),
      sessions_(sessions),
      relay_(relay),
      recorder_(recorder),
      clock_(clock),
      options_(std::move(options)) {}

Recordings::~Recordings() {
  std::vector<std::string> calls;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [call_id, a] : active_) calls.push_back(call_id);
  }
  for (const std::string& call_id : calls) (void)Stop(call_id);
}

size_t Recordings::active() const {
  absl::MutexLock lock(&mu_);
  return active_.size();
}

absl::StatusOr<v1::Recording> Recordings::Start(const v1::StartRecordingRequest& request) {
  if (options_.root.empty()) {
    return absl::FailedPreconditionError(
        "this media node does not record calls: --media_recording_root is not set");
  }
  if (request.call_id().empty()) return app::FieldError("call_id", "REQUIRED", "is required");
  if (!IsUuid(request.tenant_id())) {
    return app::FieldError("tenant_id", "NOT_UUID", "must be the call's tenant id");
  }
  if (!request.recording_id().empty() && !IsUuid(request.recording_id())) {
    return app::FieldError("recording_id", "NOT_UUID", "must be a UUID when given");
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(request.call_id());
    if (it != active_.end()) {
      if (!request.recording_id().empty() && it->second->id == request.recording_id()) {
        return Load(it->second->tenant_id, it->second->id);
      }
      return absl::FailedPreconditionError(absl::StrCat("call ", request.call_id(),
                                                        " is being recorded already (recording ",
                                                        it->second->id, ")"));
    }
  }
  SB_ASSIGN_OR_RETURN(Sessions::Anchor anchor, sessions_.Find(request.call_id()));
  if (!anchor.tenant_id.empty() && anchor.tenant_id != request.tenant_id()) {
    return absl::NotFoundError(absl::StrCat("call ", request.call_id(), " not found"));
  }
  auto side_of = [&](const std::string& tag, int fallback,
                     const char* field) -> absl::StatusOr<int> {
    if (tag.empty()) return fallback;
    if (tag == anchor.tags[0]) return 0;
    if (tag == anchor.tags[1]) return 1;
    return app::FieldError(absl::StatusCode::kNotFound, field, "NOT_A_LEG",
                           absl::StrCat("call ", request.call_id(), " has no leg '", tag, "'"));
  };
  SB_ASSIGN_OR_RETURN(int left, side_of(request.left_tag(), 0, "left_tag"));
  SB_ASSIGN_OR_RETURN(int right, side_of(request.right_tag(), 1 - left, "right_tag"));
  if (left == right) {
    return app::FieldError("right_tag", "SAME_LEG", "left and right must be different legs");
  }

  const std::string id = request.recording_id().empty() ? NewUuid() : request.recording_id();
  const absl::Time now = clock_.Now();
  const std::string relative =
      absl::StrCat(request.tenant_id(), "/", absl::FormatTime("%Y/%m/%d", now, absl::UTCTimeZone()),
                   "/", id, ".wav");
  std::optional<double> expires;
  if (request.has_retention() && pg::FromProto(request.retention()) > absl::ZeroDuration()) {
    expires = pg::ToEpoch(now + pg::FromProto(request.retention()));
  }
  SB_RETURN_IF_ERROR(pg_.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec_params(
        "INSERT INTO media.recordings (tenant_id, id, call_id, state, path, node_id, "
        "agent_user_id, on_demand, started_by_user_id, started_at, expires_at) VALUES ($1, $2, "
        "$3, $4, $5, $6, $7, $8, $9, to_timestamp($10), to_timestamp($11)) "
        "ON CONFLICT (tenant_id, id) DO NOTHING",
        request.tenant_id(), id, request.call_id(), static_cast<int>(v1::RECORDING_STATE_RECORDING),
        relative, options_.node_id, request.agent_user_id(), request.on_demand(),
        request.started_by_user_id(), pg::ToEpoch(now), expires);
    return absl::OkStatus();
  }));
  absl::StatusOr<std::shared_ptr<Recording>> recording =
      recorder_.Start(absl::StrCat(options_.root, "/", relative), left, MonotonicNanos());
  if (!recording.ok()) {
    (void)pg_.Run([&](pqxx::work& tx) -> absl::Status {
      tx.exec_params(
          "UPDATE media.recordings SET state = $3, ended_at = now() WHERE tenant_id = $1 AND "
          "id = $2",
          request.tenant_id(), id, static_cast<int>(v1::RECORDING_STATE_FAILED));
      return absl::OkStatus();
    });
    return recording.status();
  }
  auto active = std::make_shared<Active>();
  active->id = id;
  active->tenant_id = request.tenant_id();
  active->call_id = request.call_id();
  active->pair = anchor.pair;
  active->recording = *recording;
  relay_.SetTap(anchor.pair, *recording);
  {
    absl::MutexLock lock(&mu_);
    active_[request.call_id()] = active;
  }
  spdlog::info("media: call {}: recording {} started", request.call_id(), id);
  return Load(request.tenant_id(), id);
}

absl::StatusOr<std::shared_ptr<Recordings::Active>> Recordings::Recorded(const std::string& call_id,
                                                                         bool take) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(call_id);
  if (it == active_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("call ", call_id, " is not recorded"));
  }
  std::shared_ptr<Active> active = it->second;
  if (take) active_.erase(it);
  return active;
}

absl::StatusOr<v1::Recording> Recordings::Stop(const std::string& call_id) {
  SB_ASSIGN_OR_RETURN(std::shared_ptr<Active> active, Recorded(call_id, /*take=*/true));
  return Finish(active);
}

void Recordings::OnCallEnded(const std::string& call_id) {
  absl::StatusOr<v1::Recording> stopped = Stop(call_id);
  if (!stopped.ok() && stopped.status().code() != absl::StatusCode::kFailedPrecondition) {
    spdlog::warn("media: call {}: finishing its recording: {}", call_id,
                 std::string(stopped.status().message()));
  }
}

absl::StatusOr<v1::Recording> Recordings::Finish(const std::shared_ptr<Active>& active) {
  absl::MutexLock lock(&active->mu);
  relay_.SetTap(active->pair, nullptr);
  absl::StatusOr<RecordingFile> file = recorder_.Stop(active->recording, MonotonicNanos());
  const absl::Time now = clock_.Now();
  RecordingFile f = file.ok() ? *file : RecordingFile{};
  if (!file.ok()) {
    spdlog::error("media: recording {} failed: {}", active->id,
                  std::string(file.status().message()));
    if (auto seen = InspectRecording(active->recording->path()); seen.ok()) f = *seen;
  }
  const int state = file.ok() ? v1::RECORDING_STATE_COMPLETED : v1::RECORDING_STATE_FAILED;
  SB_RETURN_IF_ERROR(pg_.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec_params(
        "UPDATE media.recordings SET state = $3, ended_at = to_timestamp($4), duration_ms = $5, "
        "paused_ms = $6, size_bytes = $7, sha256 = $8 WHERE tenant_id = $1 AND id = $2",
        active->tenant_id, active->id, state, pg::ToEpoch(now), FramesToMs(f.frames),
        FramesToMs(f.paused_frames), f.size_bytes, f.sha256);
    return absl::OkStatus();
  }));
  spdlog::info("media: call {}: recording {} {} ({} ms, {} bytes)", active->call_id, active->id,
               file.ok() ? "completed" : "failed", FramesToMs(f.frames), f.size_bytes);
  return Load(active->tenant_id, active->id);
}

absl::StatusOr<v1::Recording> Recordings::SetPaused(const std::string& call_id, bool paused) {
  SB_ASSIGN_OR_RETURN(std::shared_ptr<Active> active, Recorded(call_id, /*take=*/false));
  absl::MutexLock lock(&active->mu);
  if (active->paused == paused) {
    return absl::FailedPreconditionError(paused ? "the recording is paused already"
                                                : "the recording is not paused");
  }
  const int64_t now = MonotonicNanos();
  if (paused) {
    recorder_.Pause(*active->recording, now);
  } else {
    recorder_.Resume(*active->recording, now);
  }
  active->paused = paused;
  SB_RETURN_IF_ERROR(pg_.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec_params(
        "UPDATE media.recordings SET state = $3 WHERE tenant_id = $1 AND id = $2",
        active->tenant_id, active->id,
        static_cast<int>(paused ? v1::RECORDING_STATE_PAUSED : v1::RECORDING_STATE_RECORDING));
    return absl::OkStatus();
  }));
  return Load(active->tenant_id, active->id);
}

absl::StatusOr<v1::Recording> Recordings::Pause(const std::string& call_id) {
  return SetPaused(call_id, true);
}

absl::StatusOr<v1::Recording> Recordings::Resume(const std::string& call_id) {
  return SetPaused(call_id, false);
}

absl::StatusOr<v1::Recording> Recordings::Load(const std::string& tenant_id,
                                               const std::string& id) {
  return pg_.Read([&](pqxx::nontransaction& tx) -> absl::StatusOr<v1::Recording> {
    pqxx::result r =
        tx.exec_params(absl::StrCat("SELECT ", kColumns,
                                    " FROM media.recordings WHERE tenant_id = $1 AND id = $2"),
                       tenant_id, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("recording ", id, " not found"));
    return FromRow(r[0], nullptr);
  });
}

absl::StatusOr<v1::Recording> Recordings::Visible(const auth::Principal& principal,
                                                  const auth::Authorizer& authorizer,
                                                  const std::string& id, std::string* path) {
  if (!IsUuid(id)) return app::FieldError("recording_id", "NOT_UUID", "must be a recording id");
  if (principal.tenant_id.empty()) {
    return absl::PermissionDeniedError("recordings belong to a tenant: sign in to one");
  }
  SB_ASSIGN_OR_RETURN(
      v1::Recording r, pg_.Read([&](pqxx::nontransaction& tx) -> absl::StatusOr<v1::Recording> {
        pqxx::result rows =
            tx.exec_params(absl::StrCat("SELECT ", kColumns,
                                        " FROM media.recordings WHERE tenant_id = $1 AND id = $2"),
                           principal.tenant_id, id);
        if (rows.empty()) {
          return absl::NotFoundError(absl::StrCat("recording ", id, " not found"));
        }
        return FromRow(rows[0], path);
      }));
  SB_RETURN_IF_ERROR(authorizer.Check(
      principal, auth::perm::kRecordingsListen,
      {.type = "recording", .tenant_id = r.tenant_id(), .owner_user_id = r.agent_user_id()}));
  return r;
}

absl::StatusOr<v1::Recording> Recordings::Get(const auth::Principal& principal,
                                              const auth::Authorizer& authorizer,
                                              const std::string& id) {
  return Visible(principal, authorizer, id);
}

absl::StatusOr<v1::ListRecordingsResponse> Recordings::List(
    const auth::Principal& principal, const auth::Authorizer& authorizer,
    const v1::ListRecordingsRequest& request) {
  if (principal.tenant_id.empty()) {
    return absl::PermissionDeniedError("recordings belong to a tenant: sign in to one");
  }
  SB_ASSIGN_OR_RETURN(auth::Reach reach,
                      authorizer.ReachFor(principal, auth::perm::kRecordingsListen));
  if (request.state() < 0 || request.state() > v1::RECORDING_STATE_DELETED) {
    return app::FieldError("state", "UNKNOWN", "unknown recording state");
  }
  const std::string fingerprint = absl::StrCat(request.call_id(), "|", request.state(), "|",
                                               request.time_range().ShortDebugString());
  SB_ASSIGN_OR_RETURN(app::Page page,
                      app::ParsePage(request.page_size(), request.page_token(), fingerprint));
  std::optional<double> from, to;
  if (request.time_range().has_start_time()) {
    from = pg::ToEpoch(pg::FromProto(request.time_range().start_time()));
  }
  if (request.time_range().has_end_time()) {
    to = pg::ToEpoch(pg::FromProto(request.time_range().end_time()));
  }
  std::vector<std::string> agents;
  if (!reach.all) {
    agents.assign(reach.user_ids.begin(), reach.user_ids.end());
    agents.push_back(principal.user_id);
  }
  return pg_.Read([&](pqxx::nontransaction& tx) -> absl::StatusOr<v1::ListRecordingsResponse> {
    const std::string where =
        "WHERE tenant_id = $1 AND ($2 = '' OR call_id = $2) AND ($3 = 0 OR state = $3) AND "
        "($4::float8 IS NULL OR started_at >= to_timestamp($4)) AND "
        "($5::float8 IS NULL OR started_at < to_timestamp($5)) AND "
        "($6 OR agent_user_id = ANY($7::text[]))";
    const std::string agent_array = pg::PgArray(agents);
    pqxx::result rows = tx.exec_params(
        absl::StrCat("SELECT ", kColumns, ", count(*) OVER () FROM media.recordings ", where,
                     " ORDER BY started_at DESC, id LIMIT $8 OFFSET $9"),
        principal.tenant_id, request.call_id(), static_cast<int>(request.state()), from, to,
        reach.all, agent_array, page.limit, page.offset);
    v1::ListRecordingsResponse out;
    int64_t total = 0;
    for (const auto& row : rows) {
      *out.add_recordings() = FromRow(row, nullptr);
      total = row[16].as<int64_t>();
    }
    if (rows.empty() && page.offset > 0) {
      // Past the last page: the count comes by itself.
      total =
          tx.exec_params(absl::StrCat("SELECT count(*) FROM media.recordings ", where),
                         principal.tenant_id, request.call_id(), static_cast<int>(request.state()),
                         from, to, reach.all, agent_array)[0][0]
              .as<int64_t>();
    }
    out.set_total_size(static_cast<int32_t>(total));
    out.set_next_page_token(app::NextPageToken(page, total, fingerprint));
    return out;
  });
}

absl::Status Recordings::Download(
    const auth::Principal& principal, const auth::Authorizer& authorizer,
    const v1::DownloadRecordingRequest& request,
    const std::function<bool(const v1::DownloadRecordingResponse&)>& write) {
  if (request.offset() < 0) return app::FieldError("offset", "NEGATIVE", "must be 0 or more");
  if (request.length() < 0) return app::FieldError("length", "NEGATIVE", "must be 0 or more");
  if (request.chunk_size() < 0 || request.chunk_size() > kMaxChunk) {
    return app::FieldError("chunk_size", "OUT_OF_RANGE", "must be at most 1 MiB");
  }
  std::string relative;
  SB_ASSIGN_OR_RETURN(v1::Recording r,
                      Visible(principal, authorizer, request.recording_id(), &relative));
  if (r.state() == v1::RECORDING_STATE_RECORDING || r.state() == v1::RECORDING_STATE_PAUSED) {
    return absl::FailedPreconditionError("the call is still being recorded");
  }
  if (r.state() == v1::RECORDING_STATE_DELETED) {
    return absl::NotFoundError(absl::StrCat("recording ", r.id(), " was deleted"));
  }
  std::ifstream in(absl::StrCat(options_.root, "/", relative), std::ios::binary);
  if (!in) {
    return absl::DataLossError(absl::StrCat("the file of recording ", r.id(), " is missing"));
  }
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (request.offset() >= size) {
    return absl::OutOfRangeError(
        absl::StrCat("offset ", request.offset(), " is at or past the end (", size, " bytes)"));
  }
  const int64_t end =
      request.length() == 0 ? size : std::min(size, request.offset() + request.length());
  const int64_t chunk = request.chunk_size() == 0 ? kDefaultChunk : request.chunk_size();
  in.seekg(request.offset());
  std::string buffer;
  for (int64_t at = request.offset(); at < end;) {
    const int64_t n = std::min(chunk, end - at);
    buffer.resize(static_cast<size_t>(n));
    in.read(buffer.data(), n);
    if (in.gcount() != n) return absl::DataLossError("the recording's file ended early");
    v1::DownloadRecordingResponse out;
    out.set_offset(at);
    out.set_data(buffer);
    if (at == request.offset()) {
      out.set_total_size(size);
      out.set_content_type("audio/wav");
      out.set_etag(absl::StrCat("\"", r.sha256(), "\""));
    }
    if (!write(out)) return absl::CancelledError("the reader went away");
    at += n;
  }
  return absl::OkStatus();
}

absl::Status Recordings::Delete(const auth::Principal& principal,
                                const auth::Authorizer& authorizer, const std::string& id) {
  std::string relative;
  SB_ASSIGN_OR_RETURN(v1::Recording r, Visible(principal, authorizer, id, &relative));
  SB_RETURN_IF_ERROR(authorizer.Check(
      principal, auth::perm::kObjectsDelete,
      {.type = "recording", .tenant_id = r.tenant_id(), .owner_user_id = r.agent_user_id()}));
  if (r.state() == v1::RECORDING_STATE_RECORDING || r.state() == v1::RECORDING_STATE_PAUSED) {
    return absl::FailedPreconditionError("the call is still being recorded: stop it first");
  }
  if (r.state() == v1::RECORDING_STATE_DELETED) {
    return absl::NotFoundError(absl::StrCat("recording ", id, " was deleted"));
  }
  std::error_code ec;
  std::filesystem::remove(absl::StrCat(options_.root, "/", relative), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("deleting the file of recording ", id, ": ", ec.message()));
  }
  return pg_.Run([&](pqxx::work& tx) -> absl::Status {
    tx.exec_params(
        "UPDATE media.recordings SET state = $3, deleted_at = now() WHERE tenant_id = $1 AND "
        "id = $2",
        r.tenant_id(), id, static_cast<int>(v1::RECORDING_STATE_DELETED));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<Recordings::FileRow>> Recordings::FileRows(const char* where,
                                                                      const std::string& param) {
  return pg_.Read([&](pqxx::nontransaction& tx) -> absl::StatusOr<std::vector<FileRow>> {
    std::vector<FileRow> out;
    for (const auto& row : tx.exec_params(
             absl::StrCat("SELECT tenant_id::text, id::text, path FROM media.recordings WHERE ",
                          where, " LIMIT 1000"),
             param)) {
      out.push_back({row[0].c_str(), row[1].c_str(), row[2].c_str()});
    }
    return out;
  });
}

absl::StatusOr<int> Recordings::Recover() {
  SB_ASSIGN_OR_RETURN(std::vector<FileRow> open,
                      FileRows("node_id = $1 AND state IN (1, 2)", options_.node_id));
  for (const FileRow& o : open) {
    absl::StatusOr<RecordingFile> f = InspectRecording(absl::StrCat(options_.root, "/", o.path));
    const RecordingFile file = f.ok() ? *f : RecordingFile{};
    SB_RETURN_IF_ERROR(pg_.Run([&](pqxx::work& tx) -> absl::Status {
      tx.exec_params(
          "UPDATE media.recordings SET state = $3, ended_at = coalesce(ended_at, now()), "
          "duration_ms = $4, size_bytes = $5, sha256 = $6 WHERE tenant_id = $1 AND id = $2",
          o.tenant_id, o.id, static_cast<int>(v1::RECORDING_STATE_FAILED), FramesToMs(file.frames),
          file.size_bytes, file.sha256);
      return absl::OkStatus();
    }));
    spdlog::warn("media: recording {} was interrupted (the process stopped mid-call); {} ms kept",
                 o.id, FramesToMs(file.frames));
  }
  return static_cast<int>(open.size());
}

absl::StatusOr<int> Recordings::Expire(absl::Time now) {
  SB_ASSIGN_OR_RETURN(std::vector<FileRow> due,
                      FileRows("state IN (3, 4) AND expires_at < to_timestamp($1::float8)",
                               absl::StrFormat("%.6f", pg::ToEpoch(now))));
  for (const FileRow& d : due) {
    std::error_code ec;
    std::filesystem::remove(absl::StrCat(options_.root, "/", d.path), ec);
    if (ec) {
      spdlog::warn("media: retention could not delete {}: {}", d.path, ec.message());
      continue;
    }
    SB_RETURN_IF_ERROR(pg_.Run([&](pqxx::work& tx) -> absl::Status {
      tx.exec_params(
          "UPDATE media.recordings SET state = $3, deleted_at = now() WHERE tenant_id = $1 AND "
          "id = $2",
          d.tenant_id, d.id, static_cast<int>(v1::RECORDING_STATE_DELETED));
      return absl::OkStatus();
    }));
  }
  return static_cast<int>(due.size());
}

}  // namespace sb::media
