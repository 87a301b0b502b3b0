#include "services/media/media_module.h"

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/auth/identity_clients.h"
#include "libs/common/ids.h"
#include "services/media/media_migrations.h"
#include "services/media/media_service.h"
#include "services/media/recorder.h"
#include "services/media/recordings.h"
#include "services/media/rtp_relay.h"
#include "services/media/sessions.h"
#include "spdlog/spdlog.h"

namespace sb::media {
namespace {

struct MediaFlags {
  std::string rtp_address = "127.0.0.1";
  std::string advertised_address;
  int64_t port_min = 30000;
  int64_t port_max = 40000;
  int64_t threads = 1;
  absl::Duration rtp_timeout = absl::Seconds(60);
  std::string node_id;
  std::string recording_root;
  absl::Duration retention_interval = absl::Minutes(10);
};

// Releases delayed deletions about once a second; runs recording retention every
// `retention_interval`.
class Sweeper {
 public:
  Sweeper(Sessions& sessions, Recordings& recordings, absl::Duration retention_interval)
      : sessions_(sessions), recordings_(recordings), retention_interval_(retention_interval) {}
  ~Sweeper() { Stop(); }
  void Start() {
    thread_ = std::thread([this] {
      absl::Time next_retention = absl::Now();
      while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
        sessions_.Sweep();
        if (absl::Now() < next_retention) continue;
        next_retention = absl::Now() + retention_interval_;
        absl::StatusOr<int> expired = recordings_.Expire(absl::Now());
        if (!expired.ok()) {
          spdlog::warn("media: recording retention: {}", std::string(expired.status().message()));
        } else if (*expired > 0) {
          spdlog::info("media: retention deleted {} recordings", *expired);
        }
      }
    });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stop_.Notify();
    thread_.join();
  }

 private:
  Sessions& sessions_;
  Recordings& recordings_;
  const absl::Duration retention_interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace

app::ModuleSpec MediaModule() {
  auto flags = std::make_shared<MediaFlags>();
  return {
      .name = "media",
      .deps = {"pg", "redis"},
      .migrations = &MediaMigrations(),
      .declare_flags =
          [flags](app::FlagSet& set) {
            set.Add("media_rtp_address", &flags->rtp_address,
                    "The IP address media binds its RTP ports on.");
            set.Add("media_advertised_address", &flags->advertised_address,
                    "The IP address put in SDP for phones and carriers to send RTP to (a public "
                    "or load-balancer address); empty: --media_rtp_address.");
            set.Add("media_rtp_port_min", &flags->port_min,
                    "The first RTP port (even); RTCP uses the next port of each pair.",
                    [](const int64_t& v) -> std::string {
                      return v >= 1024 && v <= 65534 ? "" : "must be between 1024 and 65534";
                    });
            set.Add("media_rtp_port_max", &flags->port_max,
                    "One past the last RTP/RTCP port. The range holds (max - min) / 4 calls.",
                    [](const int64_t& v) -> std::string {
                      return v >= 1028 && v <= 65536 ? "" : "must be between 1028 and 65536";
                    });
            set.Add("media_threads", &flags->threads,
                    "Relay threads (one per core the node may use).",
                    [](const int64_t& v) -> std::string {
                      return v >= 1 && v <= 256 ? "" : "must be between 1 and 256";
                    });
            set.Add("media_rtp_timeout", &flags->rtp_timeout,
                    "A leg whose party sends no RTP for this long (while its SDP says it sends) "
                    "is reported to sip, which hangs the call up. 0: never.");
            set.Add("media_node_id", &flags->node_id,
                    "This media node's id (sessions name it); empty: the host name.");
            set.Add("media_recording_root", &flags->recording_root,
                    "The directory call recordings are written under (a persistent volume); "
                    "empty: this node does not record (StartRecording fails).");
            set.Add("media_retention_interval", &flags->retention_interval,
                    "How often recordings past their retention are deleted.");
          },
      .create = [flags](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        if (flags->port_max - flags->port_min < 4) {
          return absl::InvalidArgumentError(
              "--media_rtp_port_max: must be at least 4 above --media_rtp_port_min");
        }
        if (absl::Status s = UdpAddress::Parse(flags->rtp_address, 0).status(); !s.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("--media_rtp_address: ", s.message()));
        }
        if (!flags->advertised_address.empty()) {
          if (absl::Status s = UdpAddress::Parse(flags->advertised_address, 0).status(); !s.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat("--media_advertised_address: ", s.message()));
          }
        }
        auto module = std::make_unique<app::OwningModule>();
        auto& auth = module->Own(std::make_unique<auth::ServiceAuth>(platform));
        auto& relay = module->Own(std::make_unique<RtpRelay>(
            RelayOptions{.bind_address = flags->rtp_address,
                         .port_min = static_cast<int>(flags->port_min + (flags->port_min % 2)),
                         .port_max = static_cast<int>(flags->port_max),
                         .threads = static_cast<int>(flags->threads),
                         .rtp_timeout = flags->rtp_timeout}));
        const std::string node_id = flags->node_id.empty() ? HostNameOr("media-0") : flags->node_id;
        auto& sessions = module->Own(std::make_unique<Sessions>(
            relay, platform.clock(),
            SessionsOptions{.node_id = node_id, .advertised_address = flags->advertised_address}));
        if (flags->retention_interval < absl::Seconds(1)) {
          return absl::InvalidArgumentError("--media_retention_interval: at least 1s");
        }
        auto& recorder = module->Own(std::make_unique<Recorder>());
        // Relative roots are taken from the working directory at start, once.
        std::error_code cwd_error;
        const std::string recording_root =
            flags->recording_root.empty()
                ? ""
                : std::filesystem::absolute(flags->recording_root, cwd_error)
                      .lexically_normal()
                      .string();
        auto& recordings = module->Own(std::make_unique<Recordings>(
            platform.pg(), sessions, relay, recorder, platform.clock(),
            RecordingsOptions{.root = recording_root, .node_id = node_id}));
        sessions.set_release_handler(
            [&recordings](const std::string& call_id) { recordings.OnCallEnded(call_id); });
        auto& sweeper =
            module->Own(std::make_unique<Sweeper>(sessions, recordings, flags->retention_interval));
        auto& service = module->Own(
            std::make_unique<MediaService>(MediaDeps{.authenticator = auth.authenticator(),
                                                     .authorizer = auth.authorizer(),
                                                     .sessions = sessions,
                                                     .recordings = recordings}));
        platform.services().Add<v1::MediaService>(&service, {"pg"});
        const std::string root = recording_root;
        module->OnStart([&auth, &relay, &sweeper, &recordings, root]() -> absl::Status {
          if (!root.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(root, ec);
            if (ec) {
              return absl::InvalidArgumentError(
                  absl::StrCat("--media_recording_root: cannot create ", root, ": ", ec.message()));
            }
            // Recordings a crash left open become FAILED with what their files hold.
            if (absl::StatusOr<int> recovered = recordings.Recover(); !recovered.ok()) {
              spdlog::warn("media: recovering interrupted recordings: {}",
                           std::string(recovered.status().message()));
            }
          }
          if (absl::Status s = auth.Start(); !s.ok()) return s;
          if (absl::Status s = relay.Start(); !s.ok()) return s;
          sweeper.Start();
          return absl::OkStatus();
        });
        module->OnStop([&auth, &relay, &sweeper, &sessions] {
          sweeper.Stop();
          // Recordings end with their calls: the files are finished before the relay stops.
          sessions.CloseAll();
          relay.Stop();
          auth.Stop();
        });
        return module;
      },
  };
}

}  // namespace sb::media
