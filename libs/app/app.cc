#include "libs/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "libs/app/health_monitor.h"
#include "libs/app/interceptors.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/metrics/admin_http_server.h"
#include "libs/metrics/process_metrics.h"
#include "libs/metrics/registry.h"
#include "libs/pg/migrate.h"

namespace sb::app {
namespace {

constexpr char kVersion[] = "0.1.0";

// Splits "host:port" (validated by the flag) into its parts.
std::pair<std::string, int> SplitHostPort(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  int port = 0;
  (void)absl::SimpleAtoi(addr.substr(colon + 1), &port);
  std::string host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host.empty() ? "0.0.0.0" : host, port};
}

std::string RandomInternalToken() {
  std::random_device rd;
  std::string token;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) token += kHex[rd() % 16];
  return token;
}

}  // namespace

void DeclareProcessFlags(FlagSet& flags, ProcessConfig& c) {
  flags.Add("target", &c.target,
            "Comma-separated services to run in this process, or all (see the list of targets "
            "above).",
            NonEmpty());
  flags.Add("grpc_addr", &c.grpc_addr, "host:port the gRPC server listens on (port 0: any).",
            HostPort());
  flags.Add("metrics_addr", &c.metrics_addr,
            "host:port of the HTTP listener for /metrics, /healthz and /readyz (port 0: any).",
            HostPort());
  flags.Add("log_level", &c.log_level, "Log level: trace, debug, info, warn, error, critical, off.",
            OneOf({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  flags.Add("grpc_max_threads", &c.grpc_max_threads,
            "Cap on the threads gRPC may use to serve requests.", InRange(2, 4096));
  flags.Add("grpc_max_message_bytes", &c.grpc_max_message_bytes,
            "Largest gRPC message accepted or sent, in bytes.", InRange(1024, 1 << 30));
  flags.Add("grpc_keepalive_time", &c.grpc_keepalive_time,
            "Interval of HTTP/2 keepalive pings the server sends on idle connections.",
            PositiveDuration());
  flags.Add("grpc_keepalive_timeout", &c.grpc_keepalive_timeout,
            "How long the server waits for a keepalive ping's answer before closing.",
            PositiveDuration());
  flags.Add("shutdown_grace", &c.shutdown_grace,
            "On SIGTERM, how long in-flight RPCs may take to finish before they are cancelled.",
            PositiveDuration());
  flags.Add("shutdown_delay", &c.shutdown_delay,
            "On SIGTERM, how long to keep serving while reporting NOT_SERVING before draining "
            "(give load balancers and Kubernetes endpoints time to stop sending new work).");
  flags.Add("health_interval", &c.health_interval,
            "How often dependency checks (PostgreSQL, Redis) run for gRPC health and /readyz.",
            PositiveDuration());
  flags.Add("service_addr_template", &c.service_addr_template,
            "Address of targets not hosted in this process; {service} is replaced by the target "
            "name.",
            NonEmpty());
  flags.Add("service_addrs", &c.service_addrs,
            "Per-target address overrides, e.g. identity=10.0.0.5:50051,org=org:50051.");
  flags.Add("migrate", &c.migrate, "Apply the selected services' schema migrations at start-up.");
  flags.Add("migrate_only", &c.migrate_only,
            "Apply the selected services' migrations, then exit (for a Kubernetes migration Job).");
  flags.Add("internal_token", &c.internal_token,
            "Shared secret that Switchboard's processes present to each other on internal RPCs "
            "(set the same value in every process; from a Kubernetes Secret). Empty: a random "
            "one, which only works while one process runs every target.");
  flags.Add("startup_timeout", &c.startup_timeout,
            "How long start-up waits for PostgreSQL to accept migrations before giving up.",
            PositiveDuration());
}

std::shared_ptr<grpc::Channel> Platform::ChannelTo(const std::string& target) const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(config_.grpc_max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(config_.grpc_max_message_bytes));
  std::string addr;
  if (shared_->hosted.contains(target)) {
    std::lock_guard lock(shared_->server_mu);
    SB_CHECK(shared_->local_port > 0) << "ChannelTo(" << target << ") before the server listens";
    if (shared_->local_server != nullptr) return shared_->local_server->InProcessChannel(args);
    // Only once the modules have stopped: the closed port, where calls fail with UNAVAILABLE.
    addr = absl::StrCat("127.0.0.1:", shared_->local_port);
  } else {
    for (absl::string_view item : absl::StrSplit(config_.service_addrs, ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (kv.first == target) addr = kv.second;
    }
    if (addr.empty()) {
      addr = config_.service_addr_template;
      const size_t at = addr.find("{service}");
      if (at != std::string::npos) addr.replace(at, 9, target);
    }
  }
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(config_.grpc_keepalive_time)));
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

struct App::State {
  State(const std::vector<ModuleSpec>& specs, const ProcessConfig& config)
      : specs(specs), config(config), platform(config, clock, registry, host) {}

  const std::vector<ModuleSpec>& specs;
  const ProcessConfig& config;
  SystemClock clock;
  metrics::Registry registry;
  ServiceHost host;
  Platform platform;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> modules;
  size_t started = 0;  // how many of `modules` have had Start() called successfully
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Server> internal_server;  // in-process channels only (ChannelTo)
  int grpc_port = 0;
  std::unique_ptr<HealthMonitor> health;
  std::unique_ptr<metrics::AdminHttpServer> http;
  DrainTracker drain;
  HealthService health_service{
      /*max_watchers=*/static_cast<int>(std::max<int64_t>(2, config.grpc_max_threads / 4))};
  bool start_completed = false;
  std::deque<Platform> module_platforms;  // one restricted view per module, stable addresses
  bool shut_down = false;
  std::atomic<bool> stop_notified{false};
  absl::Notification stop_requested;
};

App::App(const std::vector<ModuleSpec>& specs, const ProcessConfig& config)
    : state_(std::make_unique<State>(specs, config)) {}

App::~App() { Shutdown(); }

int App::grpc_port() const { return state_->grpc_port; }
int App::metrics_port() const { return state_->http ? state_->http->port() : 0; }

std::vector<std::string> App::module_names() const {
  std::vector<std::string> names;
  for (const auto& [name, module] : state_->modules) names.push_back(name);
  return names;
}

void App::RequestStop() {
  if (!state_->stop_notified.exchange(true)) state_->stop_requested.Notify();
}

void App::WaitForStopRequest() { state_->stop_requested.WaitForNotification(); }

namespace {

// Applies migrations, retrying while PostgreSQL is unavailable (it may still be starting) until
// `timeout` or a stop request.
absl::Status MigrateWithRetry(pg::Pool& pool, const pg::MigrationSet& set, absl::Duration timeout,
                              absl::Notification& stop) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(200);
  while (true) {
    absl::Status s = pg::Migrate(pool, set);
    if (s.ok() || s.code() != absl::StatusCode::kUnavailable || absl::Now() + backoff > deadline) {
      return s;
    }
    spdlog::warn("migrations for schema {} waiting for PostgreSQL: {}", std::string(set.schema),
                 s.ToString());
    if (stop.WaitForNotificationWithTimeout(backoff)) {
      return absl::CancelledError("stop requested while waiting for PostgreSQL");
    }
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

}  // namespace

absl::Status App::Start() {
  State& s = *state_;
  std::vector<std::string> targets = absl::StrSplit(s.config.target, ',', absl::SkipWhitespace());
  SB_ASSIGN_OR_RETURN(std::vector<const ModuleSpec*> order, ResolveModules(s.specs, targets));

  std::set<std::string> hosted;
  for (const auto* spec : order) hosted.insert(spec->name);
  s.platform.set_hosted_targets(hosted);

  SB_RETURN_IF_ERROR(metrics::RegisterProcessMetrics(s.registry));
  SB_RETURN_IF_ERROR(metrics::RegisterBuildInfo(s.registry, kVersion));

  auto fail = [this](absl::Status status) {
    Shutdown();
    return status;
  };

  // Each module sees the platform restricted to itself and its transitive dependencies.
  std::map<std::string, const ModuleSpec*> by_name;
  for (const auto& spec : s.specs) by_name[spec.name] = &spec;
  std::function<void(const ModuleSpec*, std::set<std::string>&)> closure =
      [&](const ModuleSpec* spec, std::set<std::string>& out) {
        if (!out.insert(spec->name).second) return;
        for (const auto& dep : spec->deps) closure(by_name.at(dep), out);
      };

  for (const ModuleSpec* spec : order) {
    std::set<std::string> visible;
    closure(spec, visible);
    Platform& platform = s.module_platforms.emplace_back(s.platform.ForModule(visible));
    if (spec->migrations != nullptr && (s.config.migrate || s.config.migrate_only)) {
      if (absl::Status m = MigrateWithRetry(platform.pg(), *spec->migrations,
                                            s.config.startup_timeout, s.stop_requested);
          !m.ok()) {
        return fail(absl::Status(
            m.code(), absl::StrCat("migrations of module ", spec->name, ": ", m.message())));
      }
    }
    // A migration Job needs the database, not the services: create only infrastructure.
    if (s.config.migrate_only && spec->is_target) continue;
    auto module = spec->create(platform);
    if (!module.ok()) {
      return fail(absl::Status(module.status().code(), absl::StrCat("module ", spec->name, ": ",
                                                                    module.status().message())));
    }
    s.modules.emplace_back(spec->name, std::move(*module));
    spdlog::debug("module {} created", spec->name);
  }
  if (s.config.migrate_only) {
    spdlog::info("migrations applied for {}", absl::StrJoin(hosted, ","));
    return absl::OkStatus();
  }

  // gRPC server: one per process, hosting every selected service.
  // Our own sync health service (see health_service.h for why not gRPC's built-in one).
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(s.config.grpc_addr, grpc::InsecureServerCredentials(), &s.grpc_port);
  grpc::ResourceQuota quota("switchboard");
  quota.SetMaxThreads(static_cast<int>(s.config.grpc_max_threads));
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(static_cast<int>(s.config.grpc_max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(s.config.grpc_max_message_bytes));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIME_MS,
      static_cast<int>(absl::ToInt64Milliseconds(s.config.grpc_keepalive_time)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(s.config.grpc_keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A second process on the same port must fail to start, not silently share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Clients (other services, probes) may ping every 10 s without being told to back off.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  auto serve_all = [&s](grpc::ServerBuilder& b) {
    b.RegisterService(&s.health_service);
    for (const auto& entry : s.host.services()) b.RegisterService(entry.service);
    b.experimental().SetInterceptorCreators(DefaultInterceptors(s.registry, s.drain));
  };
  serve_all(builder);
  s.server = builder.BuildAndStart();
  if (!s.server || s.grpc_port == 0) {
    s.server.reset();
    return fail(absl::UnavailableError(absl::StrCat(
        "cannot listen on --grpc_addr=", s.config.grpc_addr, " (address in use or not local?)")));
  }
  // The same services (sync ones may be registered twice) without a port, for this process's own
  // in-process channels (Platform::ChannelTo). It stays up until the modules have stopped: modules
  // may still call each other while they stop, and gRPC 1.51 crashes creating a call on an
  // in-process channel whose server has shut down.
  grpc::ServerBuilder internal;
  internal.SetResourceQuota(quota);
  internal.SetMaxReceiveMessageSize(static_cast<int>(s.config.grpc_max_message_bytes));
  internal.SetMaxSendMessageSize(static_cast<int>(s.config.grpc_max_message_bytes));
  serve_all(internal);
  s.internal_server = internal.BuildAndStart();
  if (!s.internal_server) return fail(absl::InternalError("cannot start the in-process server"));
  s.platform.set_local_server(s.internal_server.get(), s.grpc_port);
  // Nothing is SERVING until every module has started and the first checks have passed.
  s.health_service.SetServingStatus("", false);
  s.health = std::make_unique<HealthMonitor>(s.host, s.config.health_interval);

  const auto [http_host, http_port] = SplitHostPort(s.config.metrics_addr);
  s.http = std::make_unique<metrics::AdminHttpServer>(
      metrics::AdminHttpServerOptions{.address = http_host, .port = http_port});
  s.http->Handle("/metrics", metrics::MetricsHandler(s.registry));
  s.http->Handle("/healthz", [](const metrics::HttpRequest&) {
    return metrics::HttpResponse{.status = 200, .body = "ok\n"};
  });
  HealthMonitor* health = s.health.get();
  s.http->Handle("/readyz", [health](const metrics::HttpRequest&) {
    if (health->Ready()) return metrics::HttpResponse{.status = 200, .body = "ready\n"};
    return metrics::HttpResponse{.status = 503, .body = health->Report()};
  });
  if (absl::Status h = s.http->Start(); !h.ok()) {
    return fail(absl::Status(
        h.code(), absl::StrCat("--metrics_addr=", s.config.metrics_addr, ": ", h.message())));
  }

  for (auto& [name, module] : s.modules) {
    if (absl::Status st = module->Start(); !st.ok()) {
      return fail(absl::Status(st.code(), absl::StrCat("module ", name, ": ", st.message())));
    }
    ++s.started;
  }
  s.health->CheckNow(&s.health_service);
  s.health->Start(&s.health_service);
  s.start_completed = true;
  spdlog::info("switchboard {} serving targets [{}] grpc=:{} metrics=:{} ready={}", kVersion,
               absl::StrJoin(module_names(), ","), s.grpc_port, s.http->port(),
               s.health->Ready() ? "yes" : "no");
  return absl::OkStatus();
}

void App::Shutdown() {
  State& s = *state_;
  if (s.shut_down) return;
  s.shut_down = true;
  if (s.server) {
    // Readiness first (/readyz and gRPC health), so that load balancers and probes stop sending
    // new work; then let modules end their streams; then drain what is in flight.
    if (s.health) s.health->SetDraining();
    s.health_service.Shutdown();
    s.health_service.WaitForWatchersToEnd(absl::Seconds(1));
    if (s.start_completed && s.config.shutdown_delay > absl::ZeroDuration()) {
      absl::SleepFor(s.config.shutdown_delay);
    }
    for (size_t i = s.started; i > 0; --i) s.modules[i - 1].second->Drain();
    // Wait for the RPCs in flight (late arrivals are cancelled), at most the grace period; then
    // shut the server down at once, cancelling whatever is still running.
    const absl::Time deadline = absl::Now() + s.config.shutdown_grace;
    spdlog::info("draining {} RPCs in flight (up to {})", s.drain.in_flight(),
                 absl::FormatDuration(s.config.shutdown_grace));
    while (s.drain.in_flight() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    if (s.drain.in_flight() > 0) {
      spdlog::warn("cancelling {} RPCs still in flight after the grace period",
                   s.drain.in_flight());
    }
    s.server->Shutdown(std::chrono::system_clock::now());
    s.server->Wait();
  }
  if (s.health) s.health->Stop();
  // The HTTP listener reads metrics that modules may own: stop it before they go.
  if (s.http) s.http->Stop();
  for (size_t i = s.started; i > 0; --i) s.modules[i - 1].second->Stop();
  if (s.internal_server) {
    // From here on ChannelTo gives hosted targets the closed port (calls: UNAVAILABLE).
    s.platform.set_local_server(nullptr, s.grpc_port);
    s.internal_server->Shutdown(std::chrono::system_clock::now());
    s.internal_server->Wait();
  }
  s.internal_server.reset();
  s.server.reset();
  while (!s.modules.empty()) s.modules.pop_back();
  spdlog::info("switchboard stopped");
}

int RunMain(int argc, char** argv, const std::vector<ModuleSpec>& specs) {
  // SIGTERM and SIGINT are taken by a sigwait below, so block them before any thread starts:
  // every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ProcessConfig config;
  FlagSet flags;
  DeclareProcessFlags(flags, config);
  for (const auto& spec : specs) {
    if (spec.declare_flags) spec.declare_flags(flags);
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (absl::Status s = flags.Parse(args, ProcessEnv()); !s.ok()) {
    std::fprintf(stderr, "switchboard: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << "Usage: switchboard [--target=all|<target>,...] [flags]\n\n"
              << "Runs Switchboard's services. Targets: all, "
              << absl::StrJoin(TargetNames(specs), ", ")
              << ".\nEvery flag can also be set by its environment variable; the command line "
                 "wins.\n\nFlags:\n"
              << flags.Help();
    return 0;
  }
  if (absl::Status s = InitLogging(config.log_level); !s.ok()) {
    std::fprintf(stderr, "switchboard: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  if (config.internal_token.empty()) {
    config.internal_token = RandomInternalToken();
    if (config.target != "all") {
      spdlog::warn(
          "--internal_token is not set: services in other processes will refuse this "
          "one's internal calls (set SB_INTERNAL_TOKEN in every process)");
    }
  }

  App app(specs, config);
  // The signal thread turns SIGTERM/SIGINT into a stop request, also while start-up is still
  // waiting for a database.
  std::atomic<bool> finishing{false};
  std::thread signal_thread([&app, &finishing, stop_signals] {
    for (int count = 0;; ++count) {
      int signo = 0;
      sigwait(&stop_signals, &signo);
      if (finishing) return;
      if (count == 0) {
        spdlog::info("received {}, shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        app.RequestStop();
      } else {
        // A second signal means the operator will not wait for the drain.
        spdlog::warn("received a second stop signal, exiting without draining");
        std::fflush(nullptr);
        _exit(1);
      }
    }
  });
  auto finish = [&](int code) {
    // Wake the signal thread if no signal came, so that it can be joined.
    finishing = true;
    app.RequestStop();
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    return code;
  };
  if (absl::Status s = app.Start(); !s.ok()) {
    if (s.code() == absl::StatusCode::kCancelled) return finish(0);
    spdlog::error("start-up failed: {}", s.ToString());
    std::fprintf(stderr, "switchboard: %s\n", std::string(s.message()).c_str());
    return finish(s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
  }
  if (config.migrate_only) return finish(0);
  app.WaitForStopRequest();
  app.Shutdown();
  return finish(0);
}

}  // namespace sb::app
