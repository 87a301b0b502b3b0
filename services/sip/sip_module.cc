#include "services/sip/sip_module.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/auth/identity_clients.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/metrics/registry.h"
#include "services/sip/peers.h"
#include "services/sip/sip_server.h"
#include "services/sip/sip_service.h"
#include "spdlog/spdlog.h"

namespace sb::sip {
namespace {

struct SipFlags {
  std::string host = "127.0.0.1";
  int64_t port = 5060;
  std::string public_host;
  std::string transports = "udp,tcp";
  std::string tls_dir;
  int64_t tls_port = 5061;
  std::string node_id;
  int64_t workers = 8;
  int64_t max_calls = 10'000;
  int64_t max_cps = 0;
  std::string nonce_secret;
  absl::Duration max_call_duration = absl::Hours(4);
  absl::Duration min_session_expires = absl::Seconds(90);
  absl::Duration keepalive_interval = absl::Seconds(30);
  absl::Duration tcp_idle_timeout = absl::Seconds(120);
  absl::Duration dead_node_sweep = absl::Seconds(15);
  int64_t min_expires = 60;
  int64_t max_expires = 3600;
  int64_t default_expires = 600;
  std::string digest_algorithms = "sha-256,md5";
  std::string media = "anchor";
};

}  // namespace

app::ModuleSpec SipModule() {
  auto flags = std::make_shared<SipFlags>();
  return {
      .name = "sip",
      .deps = {"redis"},
      .declare_flags =
          [flags](app::FlagSet& set) {
            set.Add("sip_host", &flags->host,
                    "Address the SIP transports listen on (0.0.0.0 for every IPv4 address).");
            set.Add("sip_port", &flags->port, "SIP port for UDP and TCP.");
            set.Add("sip_public_host", &flags->public_host,
                    "Host written in Contact and Via: the address phones and trunks reach this "
                    "node at (default: --sip_host).");
            set.Add("sip_transports", &flags->transports, "Comma list of udp, tcp.");
            set.Add("sip_tls_dir", &flags->tls_dir,
                    "Directory with agent.pem (key + certificate) and cafile.pem: enables SIP "
                    "over TLS on --sip_tls_port.");
            set.Add("sip_tls_port", &flags->tls_port, "SIP over TLS port.");
            set.Add("sip_node_id", &flags->node_id,
                    "This SIP node's id in live call state (default: the host name).");
            set.Add("sip_workers", &flags->workers,
                    "Threads for the registrar's and the B2BUA's lookups (identity, org, routing, "
                    "Redis).");
            set.Add("sip_max_calls", &flags->max_calls,
                    "Calls in progress on this node past which new INVITEs get 503.");
            set.Add("sip_max_cps", &flags->max_cps,
                    "New calls a second this node admits (bursts of up to a second's worth); "
                    "past it new INVITEs get 503 with Retry-After at once. 0: no limit (the "
                    "routing-delay admission still applies).");
            set.Add("sip_nonce_secret", &flags->nonce_secret,
                    "Secret (at least 16 bytes) for digest nonces, the same on every SIP node; "
                    "empty: a random one per process.");
            set.Add("sip_keepalive_interval", &flags->keepalive_interval,
                    "How often registered contacts get an OPTIONS keepalive (NAT bindings, "
                    "reachability and round-trip time); 0 for never.");
            set.Add("sip_tcp_idle_timeout", &flags->tcp_idle_timeout,
                    "A TCP connection idle this long (nothing sent or received, no "
                    "transaction) is closed; longer than --sip_keepalive_interval, so that "
                    "registered phones keep theirs. 0 for never.");
            set.Add("sip_dead_node_sweep", &flags->dead_node_sweep,
                    "How often this node looks for SIP nodes without a heartbeat (dead for 20 s) "
                    "and closes out their calls, so that their agents are freed; 0 for never "
                    "(CloseNodeCalls by hand).");
            set.Add("sip_min_session_expires", &flags->min_session_expires,
                    "Shortest session-timer interval a caller may ask for (RFC 4028 Min-SE; "
                    "shorter requests get 422). RFC 4028 says at least 90 s.");
            set.Add("sip_max_call_duration", &flags->max_call_duration,
                    "Longest an answered call may last when routing sets no limit.");
            set.Add("sip_min_expires", &flags->min_expires,
                    "Shortest registration accepted, in seconds (shorter ones get 423).");
            set.Add("sip_max_expires", &flags->max_expires,
                    "Longest registration granted, in seconds (longer ones are cut to it).");
            set.Add("sip_default_expires", &flags->default_expires,
                    "Registration length when a REGISTER asks for none, in seconds.");
            set.Add("sip_media", &flags->media,
                    "anchor: every call's audio flows through the media service (recording, "
                    "prompts, DTMF, timeouts); off: the phones' and carriers' descriptions go "
                    "end to end and media is never asked.");
            set.Add("sip_digest_algorithms", &flags->digest_algorithms,
                    "Digest challenges offered to phones, preferred first: sha-256, md5. Some "
                    "older phones read only the first challenge and cannot do SHA-256: "
                    "\"md5,sha-256\" or \"md5\" serves them.");
          },
      .create = [flags](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        SipServerOptions options;
        options.stack.bind_host = flags->host;
        if (flags->port < 1 || flags->port > 65535) {
          return absl::InvalidArgumentError("--sip_port: must be 1..65535");
        }
        options.stack.port = static_cast<int>(flags->port);
        options.stack.public_host = flags->public_host;
        options.stack.udp = false;
        options.stack.tcp = false;
        for (absl::string_view t : absl::StrSplit(flags->transports, ',', absl::SkipEmpty())) {
          if (t == "udp")
            options.stack.udp = true;
          else if (t == "tcp")
            options.stack.tcp = true;
          else
            return absl::InvalidArgumentError(
                "--sip_transports: only udp and tcp (TLS: --sip_tls_dir)");
        }
        options.stack.tls_dir = flags->tls_dir;
        options.stack.tls_port = static_cast<int>(flags->tls_port);
        options.node_id = flags->node_id.empty() ? HostNameOr("sip-0") : flags->node_id;
        options.calls.node_id = options.node_id;
        options.calls.max_calls = static_cast<size_t>(std::max<int64_t>(1, flags->max_calls));
        if (flags->max_cps < 0) return absl::InvalidArgumentError("--sip_max_cps: 0 or more");
        options.calls.max_cps = flags->max_cps;
        options.calls.max_call_duration = flags->max_call_duration;
        if (flags->min_session_expires < absl::Seconds(1)) {
          return absl::InvalidArgumentError("--sip_min_session_expires: at least 1s");
        }
        options.calls.min_session_expires = flags->min_session_expires;
        if (flags->media != "anchor" && flags->media != "off") {
          return absl::InvalidArgumentError(
              absl::StrCat("--sip_media: '", flags->media, "' is neither anchor nor off"));
        }
        options.calls.anchor_media = flags->media == "anchor";
        options.keepalive_interval = flags->keepalive_interval;
        if (flags->tcp_idle_timeout < absl::ZeroDuration() ||
            (flags->tcp_idle_timeout > absl::ZeroDuration() &&
             flags->tcp_idle_timeout <= flags->keepalive_interval)) {
          return absl::InvalidArgumentError(
              "--sip_tcp_idle_timeout: 0, or longer than --sip_keepalive_interval (a registered "
              "phone's connection would be closed between keepalives)");
        }
        options.stack.tcp_idle_timeout = flags->tcp_idle_timeout;
        if (flags->dead_node_sweep < absl::ZeroDuration()) {
          return absl::InvalidArgumentError("--sip_dead_node_sweep: 0 or more");
        }
        options.dead_node_sweep = flags->dead_node_sweep;
        options.worker_threads = static_cast<int>(std::clamp<int64_t>(flags->workers, 1, 256));
        options.nonce_secret = flags->nonce_secret;
        if (flags->min_expires < 1 || flags->max_expires < flags->min_expires ||
            flags->default_expires < flags->min_expires ||
            flags->default_expires > flags->max_expires || flags->max_expires > 86400 * 7) {
          return absl::InvalidArgumentError(
              "--sip_min_expires/--sip_default_expires/--sip_max_expires: need 1 <= min <= "
              "default <= max <= 604800");
        }
        options.registrar.min_expires = static_cast<uint32_t>(flags->min_expires);
        options.registrar.max_expires = static_cast<uint32_t>(flags->max_expires);
        options.registrar.default_expires = static_cast<uint32_t>(flags->default_expires);
        options.registrar.algorithms.clear();
        for (absl::string_view a :
             absl::StrSplit(flags->digest_algorithms, ',', absl::SkipEmpty())) {
          const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(a));
          if (name == "sha-256" || name == "sha256") {
            options.registrar.algorithms.push_back(digest::Algorithm::kSha256);
          } else if (name == "md5") {
            options.registrar.algorithms.push_back(digest::Algorithm::kMd5);
          } else {
            return absl::InvalidArgumentError(absl::StrCat(
                "--sip_digest_algorithms: unknown algorithm '", name, "' (sha-256, md5)"));
          }
        }
        if (options.registrar.algorithms.empty()) {
          return absl::InvalidArgumentError("--sip_digest_algorithms: name at least one");
        }

        auto module = std::make_unique<app::OwningModule>();
        auto identity = [platform] { return platform.ChannelTo("identity"); };
        auto org = [platform] { return platform.ChannelTo("org"); };
        auto routing = [platform] { return platform.ChannelTo("routing"); };
        auto media = [platform] { return platform.ChannelTo("media"); };
        auto& peers = module->Own(std::make_unique<GrpcSipPeers>(
            identity, org, routing, media, platform.clock(),
            GrpcSipPeers::Options{.internal_token = platform.config().internal_token}));
        SB_RETURN_IF_ERROR(platform.metrics().AddCallbackGauge(
            "sb_sip_routing_reports_in_flight",
            "Call event reports to routing sent without waiting and not answered yet.",
            [&peers] { return static_cast<double>(peers.reports_in_flight()); }));
        SB_RETURN_IF_ERROR(platform.metrics().AddCallbackCounter(
            "sb_sip_routing_reports_dropped_total",
            "Call event reports to routing dropped because too many were in flight.",
            [&peers] { return static_cast<double>(peers.reports_dropped()); }));
        auto& auth = module->Own(std::make_unique<auth::ServiceAuth>(platform));
        auto& service = module->Own(std::make_unique<SipService>(
            auth.authenticator(), auth.authorizer(), platform.redis(), platform.clock()));
        platform.services().Add<v1::SipService>(&service, {"redis"});
        auto server = std::make_shared<std::unique_ptr<SipServer>>();
        redis::Client& redis = platform.redis();
        const Clock& clock = platform.clock();
        // The SIP port opens at Start, once the gRPC server (and so the peers) can answer.
        module->OnStart(
            [server, options, &peers, &redis, &clock, &auth, &service]() -> absl::Status {
              SB_RETURN_IF_ERROR(auth.Start());
              auto started = SipServer::Start(options, peers, redis, clock);
              if (!started.ok()) return started.status();
              *server = *std::move(started);
              service.set_server(server->get());
              spdlog::info("sip: listening on {}:{} as node {}", options.stack.bind_host,
                           options.stack.port, options.node_id);
              return absl::OkStatus();
            });
        module->OnStop([server, &auth, &service, &peers] {
          service.set_server(nullptr);
          if (*server != nullptr) (*server)->Stop();
          peers.StopMediaEvents();
          peers.StopReports();
          auth.Stop();
        });
        return module;
      },
  };
}

}  // namespace sb::sip
