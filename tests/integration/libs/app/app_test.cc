// The runtime in-process: real gRPC server on a loopback port, real HTTP listener, fake modules.
#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/app/app.h"
#include "libs/app/owning_module.h"
#include "libs/metrics/registry.h"
#include "libs/testing/eventually.h"
#include "libs/testing/ports.h"
#include "tests/support/echo_service.h"

namespace sb::app {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::switchboard::testing::v1::EchoRequest;
using ::switchboard::testing::v1::EchoResponse;

class Journal {
 public:
  void Add(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
};

// A module that writes its lifecycle into the journal.
ModuleSpec Recorded(std::string name, std::vector<std::string> deps, Journal& journal,
                    bool is_target = true) {
  return {.name = name,
          .deps = std::move(deps),
          .is_target = is_target,
          .create = [name, &journal](Platform&) -> absl::StatusOr<std::unique_ptr<Module>> {
            journal.Add("create " + name);
            auto module = std::make_unique<OwningModule>();
            module->OnStart([name, &journal] {
              journal.Add("start " + name);
              return absl::OkStatus();
            });
            module->OnStop([name, &journal] { journal.Add("stop " + name); });
            return module;
          }};
}

// A module serving EchoService whose health depends on the check "backend".
ModuleSpec EchoModule(std::atomic<bool>& backend_up, testing::EchoService*& service_out) {
  return {.name = "echo",
          .create = [&backend_up,
                     &service_out](Platform& platform) -> absl::StatusOr<std::unique_ptr<Module>> {
            auto module = std::make_unique<OwningModule>();
            auto& service = module->Own(std::make_unique<testing::EchoService>());
            service_out = &service;
            platform.services().AddCheck("backend", [&backend_up] {
              return backend_up ? absl::OkStatus() : absl::UnavailableError("backend down");
            });
            platform.services().Add<::switchboard::testing::v1::EchoService>(&service, {"backend"});
            return module;
          }};
}

// EchoModule, and `platform_out` keeps the module's view of the platform (for ChannelTo).
ModuleSpec EchoModuleSeeing(std::atomic<bool>& backend_up, testing::EchoService*& service_out,
                            std::optional<Platform>& platform_out) {
  ModuleSpec spec = EchoModule(backend_up, service_out);
  spec.create = [create = spec.create, &platform_out](Platform& platform) {
    platform_out.emplace(platform);
    return create(platform);
  };
  return spec;
}

ProcessConfig LoopbackConfig(std::string target) {
  ProcessConfig config;
  config.target = std::move(target);
  config.grpc_addr = "127.0.0.1:0";
  config.metrics_addr = "127.0.0.1:0";
  config.health_interval = absl::Milliseconds(50);
  config.shutdown_grace = absl::Seconds(10);
  return config;
}

// The answer to a health Check: the RPC's code and, when OK, the serving status.
struct HealthAnswer {
  grpc::StatusCode code;
  HealthCheckResponse::ServingStatus status;
};

HealthAnswer HealthOf(Health::Stub& stub, const std::string& service) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status s = stub.Check(&ctx, request, &response);
  return {s.error_code(), s.ok() ? response.status() : HealthCheckResponse::UNKNOWN};
}

using ::sb::testing::Eventually;
using namespace std::string_literals;

TEST_CASE("App creates and starts modules in dependency order, stops them in reverse", "[app]") {
  Journal journal;
  const std::vector<ModuleSpec> specs = {
      Recorded("db", {}, journal, /*is_target=*/false),
      Recorded("alpha", {"db"}, journal),
      Recorded("beta", {"alpha"}, journal),
      Recorded("gamma", {}, journal),
  };
  ProcessConfig config = LoopbackConfig("beta");
  {
    App app(specs, config);
    REQUIRE(app.Start().ok());
    CHECK(app.module_names() == std::vector<std::string>{"db", "alpha", "beta"});
    CHECK(app.grpc_port() > 0);
    CHECK(app.metrics_port() > 0);
    app.Shutdown();
  }
  CHECK(journal.events() == std::vector<std::string>{"create db", "create alpha", "create beta",
                                                     "start db", "start alpha", "start beta",
                                                     "stop beta", "stop alpha", "stop db"});
}

TEST_CASE("App reports a failing module by name and undoes what it built", "[app]") {
  Journal journal;
  std::vector<ModuleSpec> specs = {Recorded("alpha", {}, journal)};
  specs.push_back({.name = "broken",
                   .deps = {"alpha"},
                   .create = [](Platform&) -> absl::StatusOr<std::unique_ptr<Module>> {
                     return absl::FailedPreconditionError("no licence key");
                   }});
  ProcessConfig config = LoopbackConfig("all");
  App app(specs, config);
  absl::Status s = app.Start();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s.message() == "module broken: no licence key");
  CHECK(journal.events() == std::vector<std::string>{"create alpha"});
}

TEST_CASE("App rejects an unknown target before building anything", "[app]") {
  Journal journal;
  const std::vector<ModuleSpec> specs = {Recorded("alpha", {}, journal)};
  ProcessConfig config = LoopbackConfig("alpha,omega");
  App app(specs, config);
  absl::Status s = app.Start();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message() == "unknown target 'omega' in --target; known targets: all, alpha");
  CHECK(journal.events().empty());
}

TEST_CASE("gRPC health follows the service's own dependency checks", "[app]") {
  std::atomic<bool> backend_up{false};
  testing::EchoService* echo = nullptr;
  const std::vector<ModuleSpec> specs = {EchoModule(backend_up, echo)};
  ProcessConfig config = LoopbackConfig("all");
  App app(specs, config);
  REQUIRE(app.Start().ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(app.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto health = Health::NewStub(channel);
  const std::string name = "switchboard.testing.v1.EchoService";

  CHECK(HealthOf(*health, name).status == HealthCheckResponse::NOT_SERVING);
  CHECK(HealthOf(*health, "").status == HealthCheckResponse::NOT_SERVING);
  backend_up = true;
  CHECK(Eventually([&] { return HealthOf(*health, name).status == HealthCheckResponse::SERVING; }));
  CHECK(HealthOf(*health, "").status == HealthCheckResponse::SERVING);
  backend_up = false;
  CHECK(Eventually(
      [&] { return HealthOf(*health, name).status == HealthCheckResponse::NOT_SERVING; }));
  CHECK(HealthOf(*health, "switchboard.nothing.v1.Nothing").code == grpc::StatusCode::NOT_FOUND);
  app.Shutdown();
}

TEST_CASE("Handlers read the call context, and PropagateTo carries it on without the token",
          "[app]") {
  std::atomic<bool> backend_up{true};
  testing::EchoService* echo = nullptr;
  const std::vector<ModuleSpec> specs = {EchoModule(backend_up, echo)};
  ProcessConfig config = LoopbackConfig("all");
  App app(specs, config);
  REQUIRE(app.Start().ok());
  echo->set_record_contexts(true);
  auto stub = ::switchboard::testing::v1::EchoService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(app.grpc_port()), grpc::InsecureChannelCredentials()));

  // What an API client sends arrives in the handler.
  grpc::ClientContext first;
  first.AddMetadata("x-request-id", "req-123");
  first.AddMetadata("x-sb-tenant-id", "tenant-a");
  first.AddMetadata("x-sb-call-id", "call-9");
  first.AddMetadata("authorization", "Bearer token-xyz");
  EchoRequest request;
  EchoResponse response;
  REQUIRE(stub->Echo(&first, request, &response).ok());
  const CallContext seen = echo->last_context();
  CHECK(seen.request_id == "req-123");
  CHECK(seen.tenant_id == "tenant-a");
  CHECK(seen.call_id == "call-9");
  CHECK(seen.bearer_token == "token-xyz");

  // A handler calling onwards passes the ids, never the caller's token.
  grpc::ClientContext onward;
  seen.PropagateTo(onward);
  REQUIRE(stub->Echo(&onward, request, &response).ok());
  const CallContext next = echo->last_context();
  CHECK(next.request_id == "req-123");
  CHECK(next.tenant_id == "tenant-a");
  CHECK(next.call_id == "call-9");
  CHECK(next.bearer_token.empty());
  app.Shutdown();
}

TEST_CASE("Shutdown drains: calls in flight and calls arriving late finish, then it is gone",
          "[app]") {
  std::atomic<bool> backend_up{true};
  testing::EchoService* echo = nullptr;
  const std::vector<ModuleSpec> specs = {EchoModule(backend_up, echo)};
  ProcessConfig config = LoopbackConfig("all");
  App app(specs, config);
  REQUIRE(app.Start().ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(app.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = ::switchboard::testing::v1::EchoService::NewStub(channel);
  auto health = Health::NewStub(channel);
  auto echo_call = [&](std::string message, int delay_ms) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    EchoRequest request;
    request.set_message(std::move(message));
    request.set_delay_ms(delay_ms);
    EchoResponse response;
    grpc::Status s = stub->Echo(&ctx, request, &response);
    return std::make_pair(s.error_code(), response.message());
  };

  auto slow = std::async(std::launch::async, [&] { return echo_call("still here", 2000); });
  REQUIRE(Eventually([&] { return echo->in_flight() == 1; }));
  auto shutdown = std::async(std::launch::async, [&] { app.Shutdown(); });
  // Health turns NOT_SERVING first; the slow call is still being served.
  REQUIRE(Eventually([&] {
    return HealthOf(*health, "switchboard.testing.v1.EchoService").status !=
           HealthCheckResponse::SERVING;
  }));
  REQUIRE(echo->in_flight() == 1);

  // A client that ignores health still gets its call served, and the drain waits for it.
  const auto late = echo_call("late", 300);
  CHECK(late.first == grpc::StatusCode::OK);
  CHECK(late.second == "late");

  shutdown.get();
  const auto [code, message] = slow.get();
  CHECK(code == grpc::StatusCode::OK);
  CHECK(message == "still here");
  CHECK(echo->started() == 2);

  // Now the server is gone.
  CHECK(echo_call("after", 0).first == grpc::StatusCode::UNAVAILABLE);
}

// The sample line of `family` with exactly these labels in the registry's exposition, or "".
std::string Sample(const metrics::Registry& registry, const std::string& family_and_labels) {
  const std::string text = registry.Render();
  const size_t at = text.find("\n" + family_and_labels + " ");
  if (at == std::string::npos) return "";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

TEST_CASE("ChannelTo a hosted target goes in-process, through the server's interceptors", "[app]") {
  std::atomic<bool> backend_up{true};
  testing::EchoService* echo = nullptr;
  std::optional<Platform> platform;
  const std::vector<ModuleSpec> specs = {EchoModuleSeeing(backend_up, echo, platform)};
  ProcessConfig config = LoopbackConfig("all");
  config.grpc_addr = "127.0.0.1:" + std::to_string(::sb::testing::FreeTcpPort());
  // A target the process does not host goes over TCP, here to this process's own port.
  config.service_addrs = "elsewhere=" + config.grpc_addr;
  App app(specs, config);
  REQUIRE(app.Start().ok());
  echo->set_record_contexts(true);
  auto call = [&](const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = ::switchboard::testing::v1::EchoService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.AddMetadata("x-request-id", "req-local");
    EchoRequest request;
    request.set_message("hello");
    EchoResponse response;
    const grpc::Status s = stub->Echo(&ctx, request, &response);
    return std::make_pair(s.error_code(), response.message());
  };
  const std::string handled =
      "grpc_server_handled_total{grpc_service=\"switchboard.testing.v1.EchoService\","
      "grpc_method=\"Echo\",grpc_type=\"unary\",grpc_code=\"OK\"}";

  CHECK(call(platform->ChannelTo("echo")) == std::make_pair(grpc::StatusCode::OK, "hello"s));
  const std::string local_peer = echo->last_peer();
  INFO("in-process peer: " << local_peer);
  CHECK_FALSE(local_peer.starts_with("ipv"));
  CHECK(PeerIpOf(local_peer) == "127.0.0.1");
  CHECK(echo->last_context().request_id == "req-local");
  // Counted by the server's interceptor like any other call.
  CHECK(Sample(platform->metrics(), handled) == handled + " 1");

  CHECK(call(platform->ChannelTo("elsewhere")) == std::make_pair(grpc::StatusCode::OK, "hello"s));
  CHECK(echo->last_peer().starts_with("ipv4:127.0.0.1:"));
  CHECK(Sample(platform->metrics(), handled) == handled + " 2");

  // An in-process call in flight when shutdown starts is drained like a TCP one.
  auto slow = std::async(std::launch::async, [&] {
    auto stub = ::switchboard::testing::v1::EchoService::NewStub(platform->ChannelTo("echo"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    EchoRequest request;
    request.set_message("draining");
    request.set_delay_ms(500);
    EchoResponse response;
    const grpc::Status s = stub->Echo(&ctx, request, &response);
    return std::make_pair(s.error_code(), response.message());
  });
  REQUIRE(Eventually([&] { return echo->in_flight() == 1; }));
  app.Shutdown();
  CHECK(slow.get() == std::make_pair(grpc::StatusCode::OK, "draining"s));
  // Once the server is gone, calls fail as calls to a stopped service do.
  CHECK(call(platform->ChannelTo("echo")).first == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("Modules still reach hosted targets in-process while they stop", "[app]") {
  std::atomic<bool> backend_up{true};
  testing::EchoService* echo = nullptr;
  // What calls made in the module's Stop, after the gRPC port has closed, got: on a channel made
  // while it served, and on one made then. (gRPC 1.51 crashes on in-process calls to a server that
  // has shut down: the App keeps them served until the modules have stopped.)
  std::vector<grpc::StatusCode> late;
  auto call = [](const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = ::switchboard::testing::v1::EchoService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EchoRequest request;
    EchoResponse response;
    return stub->Echo(&ctx, request, &response).error_code();
  };
  std::vector<ModuleSpec> specs = {EchoModule(backend_up, echo)};
  specs.push_back({.name = "caller",
                   .deps = {"echo"},
                   .create = [&](Platform& platform) -> absl::StatusOr<std::unique_ptr<Module>> {
                     auto module = std::make_unique<OwningModule>();
                     auto early = std::make_shared<std::shared_ptr<grpc::Channel>>();
                     module->OnStart([platform, early, &call] {
                       *early = platform.ChannelTo("echo");
                       return call(*early) == grpc::StatusCode::OK
                                  ? absl::OkStatus()
                                  : absl::InternalError("echo failed");
                     });
                     module->OnStop([platform, early, &call, &late] {
                       late.push_back(call(*early));
                       late.push_back(call(platform.ChannelTo("echo")));
                     });
                     return module;
                   }});
  ProcessConfig config = LoopbackConfig("all");
  App app(specs, config);
  REQUIRE(app.Start().ok());
  app.Shutdown();
  CHECK(late == std::vector<grpc::StatusCode>{grpc::StatusCode::OK, grpc::StatusCode::OK});
}

}  // namespace
}  // namespace sb::app
