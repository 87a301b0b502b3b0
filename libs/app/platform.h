#pragma once

// Platform is what a module's factory is given: the process configuration and the shared pieces
// that exist once per process (clock, metrics registry, the service host for the gRPC server, and
// the PostgreSQL pool and Redis client when the module depends on the "pg" / "redis" modules). It
// is a plain struct of typed references, the way Grafana Mimir's modules read each other's fields:
// no lookup by name.

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "libs/app/service_host.h"
#include "libs/common/check.h"
#include "libs/common/clock.h"

namespace grpc {
class Server;
}
namespace sb::metrics {
class Registry;
}
namespace sb::pg {
class Pool;
}
namespace sb::redis {
class Client;
}

namespace sb::app {

// Process-wide settings, each a flag with an SB_* environment twin (see DeclareProcessFlags).
struct ProcessConfig {
  std::string target = "all";
  std::string grpc_addr = "127.0.0.1:50051";
  std::string metrics_addr = "127.0.0.1:9464";
  std::string log_level = "info";
  int64_t grpc_max_threads = 64;
  int64_t grpc_max_message_bytes = 4 * 1024 * 1024;
  absl::Duration grpc_keepalive_time = absl::Seconds(30);
  absl::Duration grpc_keepalive_timeout = absl::Seconds(10);
  absl::Duration shutdown_grace = absl::Seconds(4);
  absl::Duration shutdown_delay = absl::ZeroDuration();
  absl::Duration health_interval = absl::Seconds(5);
  std::string service_addr_template = "switchboard-{service}:50051";
  std::string service_addrs;
  bool migrate = true;
  bool migrate_only = false;
  absl::Duration startup_timeout = absl::Seconds(60);
  // The credential the platform's processes show each other on "Internal:" RPCs. Empty: a random
  // one for this process (enough when one process hosts every target).
  std::string internal_token;
};

class Platform {
 public:
  Platform(const ProcessConfig& config, Clock& clock, metrics::Registry& metrics,
           ServiceHost& services)
      : config_(config),
        clock_(clock),
        metrics_(metrics),
        services_(services),
        shared_(std::make_shared<Shared>()) {}

  // The same platform as seen by one module: pg() and redis() only work when `modules` (the
  // module's own name and its transitive dependencies) includes "pg" / "redis", so a module that
  // forgot a dependency fails under `--target=all` exactly as it would running alone.
  Platform ForModule(std::set<std::string> modules) const {
    Platform copy = *this;
    copy.visible_ = std::move(modules);
    return copy;
  }

  const ProcessConfig& config() const { return config_; }
  Clock& clock() const { return clock_; }
  metrics::Registry& metrics() const { return metrics_; }
  ServiceHost& services() const { return services_; }

  // The PostgreSQL pool; only for modules that list "pg" in their deps.
  pg::Pool& pg() const {
    SB_CHECK(Visible("pg")) << "module uses pg without depending on the pg module";
    SB_CHECK(shared_->pg != nullptr);
    return *shared_->pg;
  }
  // The Redis client; only for modules that list "redis" in their deps.
  redis::Client& redis() const {
    SB_CHECK(Visible("redis")) << "module uses redis without depending on the redis module";
    SB_CHECK(shared_->redis != nullptr);
    return *shared_->redis;
  }
  // Called by the "pg" and "redis" modules.
  void set_pg(pg::Pool* pool) { shared_->pg = pool; }
  void set_redis(redis::Client* client) { shared_->redis = client; }

  // A channel to another target's gRPC API ("identity", "routing", ...). When this process hosts
  // that target, an in-process channel to the process's own services: calls skip HTTP/2 and TCP
  // but still run the server's interceptors, metadata, deadlines and handlers, so `--target=all`
  // serves them as production does (the handler sees no IP peer; app::PeerIp() reads it as
  // loopback). In-process channels work until every module has stopped; one made after that
  // fails its calls with UNAVAILABLE, and channels made before must not be used after it (App
  // ends the in-process server then). Otherwise a TCP channel to the address from --service_addrs
  // or --service_addr_template. Valid from Module::Start() on, once the server is listening; TCP
  // channels connect lazily.
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& target) const;

  // Set by the App.
  void set_hosted_targets(std::set<std::string> targets) { shared_->hosted = std::move(targets); }
  // The server in-process channels go to; null again before it shuts down.
  void set_local_server(grpc::Server* server, int port) {
    std::lock_guard lock(shared_->server_mu);
    shared_->local_server = server;
    shared_->local_port = port;
  }
  int local_grpc_port() const {
    std::lock_guard lock(shared_->server_mu);
    return shared_->local_port;
  }

 private:
  // What all modules' views share; filled in as infrastructure modules are created.
  struct Shared {
    pg::Pool* pg = nullptr;
    redis::Client* redis = nullptr;
    std::set<std::string> hosted;
    std::mutex server_mu;  // held while an in-process channel is made: the server stays up
    grpc::Server* local_server = nullptr;  // guarded by server_mu
    int local_port = 0;                    // guarded by server_mu
  };
  bool Visible(const std::string& module) const {
    return !visible_.has_value() || visible_->contains(module);
  }

  const ProcessConfig& config_;
  Clock& clock_;
  metrics::Registry& metrics_;
  ServiceHost& services_;
  std::shared_ptr<Shared> shared_;
  std::optional<std::set<std::string>> visible_;  // unset: the App's own, unrestricted view
};

}  // namespace sb::app
