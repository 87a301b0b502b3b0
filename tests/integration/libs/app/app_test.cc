// The runtime in-process: real gRPC server on a loopback port, real HTTP listener, fake modules.
#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/app/app.h"
#include "libs/app/owning_module.h"
#include "libs/testing/eventually.h"
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

}  // namespace
}  // namespace sb::app
