// Recordings end to end inside one process: a relayed call on loopback, recorded into a temporary
// root, its metadata in a fresh PostgreSQL database; then the catalogue as people see it, what a
// crashed node leaves, and retention.

#include "services/media/recordings.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/pg/migrate.h"
#include "libs/testing/child_process.h"
#include "libs/testing/eventually.h"
#include "libs/testing/pg_server.h"
#include "libs/testing/ports.h"
#include "services/media/media_migrations.h"
#include "tests/support/udp_party.h"

namespace sb::media {
namespace {

using test::Rtp;
using test::UdpParty;

class NoFacts final : public auth::ScopeFacts {
 public:
  absl::StatusOr<std::shared_ptr<const auth::Reach>> Resolve(std::string_view, std::string_view,
                                                             auth::Scope) override {
    return std::make_shared<auth::Reach>();
  }
};

auth::Principal Person(const std::string& tenant, std::initializer_list<auth::Grant> grants) {
  auth::Principal p;
  p.tenant_id = tenant;
  p.user_id = NewUuid();
  for (const auth::Grant& g : grants) p.permissions.Add(g);
  return p;
}

std::unique_ptr<pg::Pool> MigratedPool() {
  absl::StatusOr<std::string> server = testing::SharedTestPgDsn();
  REQUIRE(server.ok());
  absl::StatusOr<std::string> dsn = testing::CreateTestDatabase(*server);
  REQUIRE(dsn.ok());
  auto pool = pg::Pool::Create({.dsn = *dsn, .size = 4});
  REQUIRE(pool.ok());
  REQUIRE(pg::Migrate(**pool, MediaMigrations()).ok());
  return *std::move(pool);
}

struct World {
  SystemClock clock;
  testing::TempDir root;
  std::unique_ptr<pg::Pool> pg = MigratedPool();
  const int port_min = 2 * (testing::FreeTcpUdpPort() / 2);
  RtpRelay relay{RelayOptions{.port_min = port_min, .port_max = port_min + 40}};
  Sessions sessions{relay, clock, {.node_id = "media-test"}};
  Recorder recorder;
  Recordings recordings{*pg,      sessions, relay,
                        recorder, clock,    {.root = root.path(), .node_id = "media-test"}};
  NoFacts facts;
  auth::Authorizer authorizer{facts};
  const std::string tenant = NewUuid();
  const auth::Principal admin =
      Person(tenant, {{auth::perm::kRecordingsListen, auth::Scope::kTenant},
                      {auth::perm::kObjectsDelete, auth::Scope::kTenant}});
  UdpParty caller, agent;

  World() {
    // As the module wires it: a call's media ending finishes its recording.
    sessions.set_release_handler([this](const std::string& id) { recordings.OnCallEnded(id); });
    REQUIRE(relay.Start().ok());
  }

  // A call relayed between the two parties; returns its id.
  std::string Call() {
    const std::string call_id = NewUuid();
    v1::ProcessOfferRequest offer;
    offer.set_call_id(call_id);
    offer.set_tenant_id(tenant);
    offer.set_from_tag("caller");
    offer.set_sdp(caller.Sdp("0"));
    REQUIRE(sessions.Offer(offer).ok());
    v1::ProcessAnswerRequest answer;
    answer.set_call_id(call_id);
    answer.set_from_tag("caller");
    answer.set_to_tag("agent");
    answer.set_sdp(agent.Sdp("0"));
    REQUIRE(sessions.Answer(answer).ok());
    return call_id;
  }

  absl::StatusOr<v1::Recording> Record(const std::string& call_id, absl::Duration retention = {}) {
    v1::StartRecordingRequest req;
    req.set_call_id(call_id);
    req.set_tenant_id(tenant);
    req.set_left_tag("caller");
    req.set_right_tag("agent");
    if (retention > absl::ZeroDuration()) {
      req.mutable_retention()->set_seconds(absl::ToInt64Seconds(retention));
    }
    return recordings.Start(req);
  }

  // Half a second of the caller's 20 ms packets, in real time.
  void Talk(const std::string& call_id) {
    auto anchor = sessions.Find(call_id);
    REQUIRE(anchor.ok());
    const int to = anchor->pair->local_port(0);
    const absl::Time start = absl::Now();
    for (int i = 0; i < 25; ++i) {
      absl::SleepFor(start + absl::Milliseconds(20 * i) - absl::Now());
      std::string packet = Rtp(static_cast<uint16_t>(i), std::string(160, '\x55'));
      packet[4] = static_cast<char>((i * 160) >> 24);
      packet[5] = static_cast<char>(((i * 160) >> 16) & 0xff);
      packet[6] = static_cast<char>(((i * 160) >> 8) & 0xff);
      packet[7] = static_cast<char>((i * 160) & 0xff);
      caller.SendTo(to, packet);
    }
  }

  std::string PathOf(const v1::Recording& r) {
    return absl::StrCat(root.path(), "/", r.tenant_id(), "/",
                        absl::FormatTime("%Y/%m/%d", absl::Now(), absl::UTCTimeZone()), "/", r.id(),
                        ".wav");
  }
};

TEST_CASE("recordings: start, pause, stop, and the catalogue as people see it",
          "[media][recordings]") {
  World w;
  const std::string call_id = w.Call();
  auto started = w.Record(call_id);
  INFO(started.status().message());
  REQUIRE(started.ok());
  CHECK(started->state() == v1::RECORDING_STATE_RECORDING);
  CHECK(started->node_id() == "media-test");
  // One recording per call at a time; the same id again is the same recording.
  CHECK(w.Record(call_id).status().code() == absl::StatusCode::kFailedPrecondition);
  v1::StartRecordingRequest again;
  again.set_call_id(call_id);
  again.set_tenant_id(w.tenant);
  again.set_recording_id(started->id());
  CHECK(w.recordings.Start(again)->id() == started->id());
  // Bad requests name the field.
  v1::StartRecordingRequest bad = again;
  bad.set_call_id(w.Call());
  bad.set_recording_id("");
  bad.set_left_tag("nobody");
  CHECK(w.recordings.Start(bad).status().message().find("left_tag") != std::string::npos);
  bad.set_left_tag("");
  bad.set_tenant_id("acme");
  CHECK(w.recordings.Start(bad).status().message().find("tenant_id") != std::string::npos);

  w.Talk(call_id);
  CHECK(w.recordings.Pause(call_id)->state() == v1::RECORDING_STATE_PAUSED);
  CHECK(w.recordings.Pause(call_id).status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(w.recordings.Resume(call_id)->state() == v1::RECORDING_STATE_RECORDING);
  // The call's media ends: the recording is finished with it.
  v1::DeleteSessionRequest del;
  del.set_call_id(call_id);
  w.sessions.Delete(del);
  CHECK(w.recordings.active() == 0);

  const auth::Principal& admin = w.admin;
  auto done = w.recordings.Get(admin, w.authorizer, started->id());
  REQUIRE(done.ok());
  CHECK(done->state() == v1::RECORDING_STATE_COMPLETED);
  CHECK(done->duration().seconds() * 1000 + done->duration().nanos() / 1'000'000 >= 450);
  CHECK(done->size_bytes() == static_cast<int64_t>(std::filesystem::file_size(w.PathOf(*done))));
  CHECK(done->sha256() == InspectRecording(w.PathOf(*done))->sha256);

  // Someone without recordings.listen sees nothing; another tenant does not even find it.
  const auth::Principal stranger = Person(w.tenant, {});
  CHECK(w.recordings.Get(stranger, w.authorizer, started->id()).status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(w.recordings.List(stranger, w.authorizer, {}).status().code() ==
        absl::StatusCode::kPermissionDenied);
  const auth::Principal other =
      Person(NewUuid(), {{auth::perm::kRecordingsListen, auth::Scope::kTenant}});
  CHECK(w.recordings.Get(other, w.authorizer, started->id()).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(w.recordings.List(other, w.authorizer, {})->recordings_size() == 0);
  auto listed = w.recordings.List(admin, w.authorizer, {});
  REQUIRE(listed.ok());
  REQUIRE(listed->recordings_size() == 1);
  CHECK(listed->total_size() == 1);

  // Download: chunks from an offset; past the end is OutOfRange.
  v1::DownloadRecordingRequest dl;
  dl.set_recording_id(started->id());
  dl.set_offset(40);
  dl.set_chunk_size(100);
  std::string bytes;
  int chunks = 0;
  REQUIRE(w.recordings
              .Download(admin, w.authorizer, dl,
                        [&](const v1::DownloadRecordingResponse& c) {
                          if (chunks++ == 0) CHECK(c.total_size() == done->size_bytes());
                          bytes += c.data();
                          return true;
                        })
              .ok());
  CHECK(static_cast<int64_t>(bytes.size()) == done->size_bytes() - 40);
  CHECK(chunks == (done->size_bytes() - 40 + 99) / 100);
  dl.set_offset(done->size_bytes());
  CHECK(w.recordings.Download(admin, w.authorizer, dl, [](const auto&) { return true; }).code() ==
        absl::StatusCode::kOutOfRange);

  // Delete: the file goes, the row stays as DELETED.
  CHECK(w.recordings.Delete(stranger, w.authorizer, started->id()).code() ==
        absl::StatusCode::kPermissionDenied);
  REQUIRE(w.recordings.Delete(admin, w.authorizer, started->id()).ok());
  CHECK(!std::filesystem::exists(w.PathOf(*done)));
  CHECK(w.recordings.Get(admin, w.authorizer, started->id())->state() ==
        v1::RECORDING_STATE_DELETED);
  CHECK(w.recordings.Delete(admin, w.authorizer, started->id()).code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("recordings: a node that died mid-call leaves a readable WAV, marked FAILED at restart",
          "[media][recordings]") {
  World w;
  const std::string call_id = w.Call();
  auto started = w.Record(call_id);
  REQUIRE(started.ok());
  w.Talk(call_id);
  // The recorder keeps the header valid as it writes: wait until it has written some audio.
  REQUIRE(testing::Eventually([&] {
    auto seen = InspectRecording(w.PathOf(*started));
    return seen.ok() && seen->frames > 0;
  }));
  // The node "restarts": a new Recordings on the same database and node id, while the file of the
  // old one was never finished.
  Recorder recorder;
  Recordings restarted(*w.pg, w.sessions, w.relay, recorder, w.clock,
                       {.root = w.root.path(), .node_id = "media-test"});
  REQUIRE(restarted.Recover().value_or(-1) == 1);
  auto failed = restarted.Get(w.admin, w.authorizer, started->id());
  REQUIRE(failed.ok());
  CHECK(failed->state() == v1::RECORDING_STATE_FAILED);
  CHECK(failed->size_bytes() > 44);
  CHECK(failed->duration().seconds() * 1000 + failed->duration().nanos() / 1'000'000 > 0);
  CHECK(restarted.Recover().value_or(-1) == 0);
}

TEST_CASE("recordings: retention deletes what is past its time, and only that",
          "[media][recordings]") {
  World w;
  const std::string kept_call = w.Call();
  auto kept = w.Record(kept_call);
  REQUIRE(kept.ok());
  const std::string short_call = w.Call();
  auto expiring = w.Record(short_call, absl::Seconds(60));
  REQUIRE(expiring.ok());
  CHECK(expiring->has_expires_at());
  REQUIRE(w.recordings.Stop(kept_call).ok());
  REQUIRE(w.recordings.Stop(short_call).ok());
  CHECK(w.recordings.Expire(absl::Now()).value_or(-1) == 0);
  CHECK(w.recordings.Expire(absl::Now() + absl::Minutes(2)).value_or(-1) == 1);
  CHECK(w.recordings.Get(w.admin, w.authorizer, expiring->id())->state() ==
        v1::RECORDING_STATE_DELETED);
  CHECK(!std::filesystem::exists(w.PathOf(*expiring)));
  CHECK(w.recordings.Get(w.admin, w.authorizer, kept->id())->state() ==
        v1::RECORDING_STATE_COMPLETED);
  CHECK(std::filesystem::exists(w.PathOf(*kept)));
}

}  // namespace
}  // namespace sb::media
