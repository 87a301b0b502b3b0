#pragma once

// The real `switchboard` binary started for a test the way an operator starts it: a fresh
// database on the test PostgreSQL, the test Redis, free loopback ports (gRPC, metrics, SIP).

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/testing/child_process.h"
#include "libs/testing/eventually.h"
#include "libs/testing/pg_server.h"
#include "libs/testing/ports.h"
#include "libs/testing/redis_server.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"

namespace sb::e2e {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using testing::ChildProcess;
using testing::RunCommand;

inline const std::vector<std::string> kServices = {
    "switchboard.identity.v1.IdentityService", "switchboard.org.v1.OrgService",
    "switchboard.routing.v1.RoutingService",   "switchboard.sip.v1.SipService",
    "switchboard.media.v1.MediaService",       "switchboard.reporting.v1.ReportingService",
    "switchboard.gateway.v1.GatewayService",
};

// A fresh database on the test server, and the test Redis.
inline std::string FreshDatabase() {
  auto server = testing::SharedTestPgDsn();
  REQUIRE(server.ok());
  auto dsn = testing::CreateTestDatabase(*server);
  REQUIRE(dsn.ok());
  return *dsn;
}

inline std::string TestRedisUrl() {
  auto url = testing::SharedTestRedisUrl();
  REQUIRE(url.ok());
  return *url;
}

inline testing::CommandResult Switchboard(std::vector<std::string> args) {
  args.insert(args.begin(), SB_SWITCHBOARD_BINARY);
  auto result = RunCommand(args);
  REQUIRE(result.ok());
  return *result;
}

// The serving status, or UNKNOWN when the Check itself failed (`code` then says how).
inline HealthCheckResponse::ServingStatus HealthOf(Health::Stub& stub, const std::string& service,
                                                   grpc::StatusCode* code = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  // The server may still be starting: wait for the connection rather than fail at once.
  ctx.set_wait_for_ready(true);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status s = stub.Check(&ctx, request, &response);
  if (code != nullptr) *code = s.error_code();
  return s.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

// Processes start and stop here: wait generously, poll every 50 ms.
template <typename Pred>
bool Eventually(Pred pred) {
  return testing::Eventually(pred, absl::Seconds(30), absl::Milliseconds(50));
}

// A running switchboard on free loopback ports with its own database.
struct Running {
  int grpc_port = testing::FreeTcpPort();
  int metrics_port = testing::FreeTcpPort();
  int sip_port = testing::FreeTcpUdpPort();
  std::string dsn;
  std::optional<ChildProcess> process;
  std::unique_ptr<Health::Stub> health;

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", metrics_port, path);
  }
};

inline std::unique_ptr<Running> Start(std::vector<std::string> extra = {},
                                      std::string redis_url = TestRedisUrl()) {
  auto r = std::make_unique<Running>();
  r->dsn = FreshDatabase();
  std::vector<std::string> argv = {SB_SWITCHBOARD_BINARY, "--target=all",
                                   absl::StrCat("--grpc_addr=127.0.0.1:", r->grpc_port),
                                   absl::StrCat("--metrics_addr=127.0.0.1:", r->metrics_port),
                                   absl::StrCat("--sip_port=", r->sip_port),
                                   // Tests run side by side on one host: one node id each (a
                                   // node closes out the calls its id left when it starts).
                                   absl::StrCat("--sip_node_id=test-", r->sip_port),
                                   "--health_interval=100ms", "--log_level=warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = ChildProcess::Start(
      {.argv = argv, .env = {"SB_PG_DSN=" + r->dsn, "SB_REDIS_URL=" + redis_url}});
  REQUIRE(child.ok());
  r->process.emplace(std::move(*child));
  // The server takes a moment to listen: retry the connection quickly rather than with gRPC's
  // default one-second-and-growing back-off.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  r->health = Health::NewStub(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", r->grpc_port),
                                                        grpc::InsecureChannelCredentials(), args));
  return r;
}

// Logs in over gRPC and returns the access token (the test fails if the login does not succeed).
inline std::string Login(::switchboard::identity::v1::IdentityService::Stub& identity,
                         const std::string& tenant, const std::string& user,
                         const std::string& password) {
  namespace iv1 = ::switchboard::identity::v1;
  iv1::LoginRequest req;
  req.set_tenant_slug(tenant);
  req.set_login(user);
  req.set_password(password);
  iv1::LoginResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = identity.Login(&ctx, req, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  REQUIRE(resp.status() == iv1::LoginResponse::STATUS_OK);
  return resp.tokens().access_token();
}

}  // namespace sb::e2e
