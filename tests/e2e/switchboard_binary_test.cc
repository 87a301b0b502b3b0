// The real `switchboard` binary, started the way an operator starts it, against real PostgreSQL
// and Redis: flags and exit codes, gRPC health of every service through a real gRPC client,
// /metrics validated by promtool, migrations, and a clean SIGTERM.
#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/testing/child_process.h"
#include "libs/testing/eventually.h"
#include "libs/testing/pg_server.h"
#include "libs/testing/ports.h"
#include "libs/testing/redis_server.h"
#include "switchboard/identity/v1/identity_service.grpc.pb.h"
#include "switchboard/media/v1/media_service.grpc.pb.h"
#include "switchboard/org/v1/org_service.grpc.pb.h"
#include "tests/e2e/switchboard_process.h"

namespace sb::e2e {
namespace {

TEST_CASE("switchboard --help lists every flag with its environment twin", "[e2e]") {
  const auto result = Switchboard({"--help"});
  CHECK(result.exit_code == 0);
  for (const char* text :
       {"Targets: all, identity, org, routing, media, sip, reporting, gateway", "--target",
        "--grpc_addr (env SB_GRPC_ADDR", "--pg_dsn (env SB_PG_DSN", "--redis_url (env SB_REDIS_URL",
        "--metrics_addr", "--shutdown_grace", "--log_level", "--migrate_only"}) {
    INFO(text);
    CHECK(result.output.find(text) != std::string::npos);
  }
}

TEST_CASE("switchboard refuses an unknown target with exit code 2", "[e2e]") {
  const auto result = Switchboard({"--target=identity,billing"});
  CHECK(result.exit_code == 2);
  CHECK(result.output.find("unknown target 'billing' in --target; known targets: all, identity") !=
        std::string::npos);
}

TEST_CASE("switchboard refuses invalid configuration naming the flag", "[e2e]") {
  auto result = Switchboard({"--grpc_max_threads=0"});
  CHECK(result.exit_code == 2);
  CHECK(result.output.find("invalid value for --grpc_max_threads='0'") != std::string::npos);

  result = Switchboard({"--grpc_addr=nowhere"});
  CHECK(result.exit_code == 2);
  CHECK(result.output.find("--grpc_addr") != std::string::npos);

  result = Switchboard({"--no_such_flag=1"});
  CHECK(result.exit_code == 2);
  CHECK(result.output.find("unknown flag --no_such_flag") != std::string::npos);

  auto env_result = RunCommand({"env", "SB_HEALTH_INTERVAL=soon", SB_SWITCHBOARD_BINARY});
  REQUIRE(env_result.ok());
  CHECK(env_result->exit_code == 2);
  CHECK(env_result->output.find("from SB_HEALTH_INTERVAL='soon'") != std::string::npos);
}

TEST_CASE(
    "switchboard --target=all serves health for every service, metrics, and drains on "
    "SIGTERM",
    "[e2e]") {
  auto r = Start();
  REQUIRE(Eventually([&] { return HealthOf(*r->health, "") == HealthCheckResponse::SERVING; }));
  for (const auto& service : kServices) {
    INFO(service);
    CHECK(HealthOf(*r->health, service) == HealthCheckResponse::SERVING);
  }

  auto ready =
      RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", r->Url("/readyz")});
  REQUIRE(ready.ok());
  CHECK(ready->output == "200");

  auto metrics = RunCommand({"curl", "-sSf", r->Url("/metrics")});
  REQUIRE(metrics.ok());
  REQUIRE(metrics->exit_code == 0);
  CHECK(metrics->output.find("grpc_server_handled_total{grpc_service=\"grpc.health.v1.Health\"") !=
        std::string::npos);
  CHECK(metrics->output.find("process_resident_memory_bytes") != std::string::npos);
  auto promtool = RunCommand({"promtool", "check", "metrics"}, metrics->output);
  REQUIRE(promtool.ok());
  INFO(promtool->output);
  CHECK(promtool->exit_code == 0);
  CHECK(promtool->output.empty());

  // Migrations ran: each service with a schema has it, with its first version recorded.
  pqxx::connection db(r->dsn);
  pqxx::work tx(db);
  for (const char* schema : {"identity", "org", "routing", "media", "reporting"}) {
    INFO(schema);
    CHECK(tx.exec_params1("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)[0]
              .as<int>() == 1);
  }
  tx.commit();

  const absl::Time sent = absl::Now();
  r->process->Signal(SIGTERM);
  auto code = r->process->Wait(absl::Seconds(5));
  REQUIRE(code.ok());
  CHECK(*code == 0);
  CHECK(absl::Now() - sent < absl::Seconds(5));
}

TEST_CASE("SIGTERM ends even a long-lived stream within 5 s, telling it NOT_SERVING first",
          "[e2e]") {
  auto r = Start();
  REQUIRE(Eventually([&] { return HealthOf(*r->health, "") == HealthCheckResponse::SERVING; }));
  // A client watching health holds a stream open; shutdown must not wait on it forever.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HealthCheckRequest request;
  request.set_service("switchboard.routing.v1.RoutingService");
  auto watch = r->health->Watch(&ctx, request);
  HealthCheckResponse response;
  REQUIRE(watch->Read(&response));
  CHECK(response.status() == HealthCheckResponse::SERVING);

  const absl::Time sent = absl::Now();
  r->process->Signal(SIGTERM);
  REQUIRE(watch->Read(&response));
  CHECK(response.status() == HealthCheckResponse::NOT_SERVING);
  auto code = r->process->Wait(absl::Seconds(5));
  REQUIRE(code.ok());
  CHECK(*code == 0);
  CHECK(absl::Now() - sent < absl::Seconds(5));
}

TEST_CASE("each target runs on its own, with only its own dependencies", "[e2e]") {
  for (const char* target :
       {"identity", "org", "routing", "media", "sip", "reporting", "gateway"}) {
    INFO(target);
    auto r = Start({std::string("--target=") + target});
    const std::string service = *std::find_if(kServices.begin(), kServices.end(), [&](auto& s) {
      return s.find(std::string(".") + target + ".") != std::string::npos;
    });
    CHECK(
        Eventually([&] { return HealthOf(*r->health, service) == HealthCheckResponse::SERVING; }));
    // The other targets are not hosted here.
    const std::string other = service == kServices[0] ? kServices[1] : kServices[0];
    grpc::StatusCode code = grpc::StatusCode::OK;
    HealthOf(*r->health, other, &code);
    CHECK(code == grpc::StatusCode::NOT_FOUND);
    r->process->Signal(SIGTERM);
    auto exit_code = r->process->Wait(absl::Seconds(5));
    REQUIRE(exit_code.ok());
    CHECK(*exit_code == 0);
  }
}

TEST_CASE("a service whose own dependency is down is NOT_SERVING while the others serve", "[e2e]") {
  // Redis at a port where nothing listens: pg-only services (media) serve, Redis users do not
  // (identity and every service that checks tokens need Redis for revocations: without it no
  // token can be trusted).
  auto r = Start({}, absl::StrCat("redis://127.0.0.1:", testing::FreeTcpPort()));
  REQUIRE(Eventually([&] {
    return HealthOf(*r->health, "switchboard.media.v1.MediaService") ==
           HealthCheckResponse::SERVING;
  }));
  CHECK(HealthOf(*r->health, "switchboard.org.v1.OrgService") == HealthCheckResponse::NOT_SERVING);
  CHECK(HealthOf(*r->health, "switchboard.identity.v1.IdentityService") ==
        HealthCheckResponse::NOT_SERVING);
  CHECK(HealthOf(*r->health, "switchboard.sip.v1.SipService") == HealthCheckResponse::NOT_SERVING);
  CHECK(HealthOf(*r->health, "switchboard.gateway.v1.GatewayService") ==
        HealthCheckResponse::NOT_SERVING);
  CHECK(HealthOf(*r->health, "") == HealthCheckResponse::NOT_SERVING);
  auto ready = RunCommand({"curl", "-sS", "-w", "\n%{http_code}", r->Url("/readyz")});
  REQUIRE(ready.ok());
  CHECK(ready->output.find("redis: UNAVAILABLE") != std::string::npos);
  CHECK(ready->output.substr(ready->output.size() - 3) == "503");
  r->process->Signal(SIGTERM);
  auto code = r->process->Wait(absl::Seconds(5));
  REQUIRE(code.ok());
  CHECK(*code == 0);
}

TEST_CASE("switchboard --migrate_only applies migrations and exits", "[e2e]") {
  const std::string dsn = FreshDatabase();
  auto result = RunCommand({"env", "SB_PG_DSN=" + dsn, SB_SWITCHBOARD_BINARY, "--migrate_only",
                            "--target=identity,org", "--log_level=warn"});
  REQUIRE(result.ok());
  INFO(result->output);
  CHECK(result->exit_code == 0);
  pqxx::connection db(dsn);
  pqxx::work tx(db);
  CHECK(tx.exec1("SELECT count(*) FROM pg_namespace WHERE nspname IN ('identity', 'org')")[0]
            .as<int>() == 2);
  CHECK(tx.exec1("SELECT count(*) FROM pg_namespace WHERE nspname = 'reporting'")[0].as<int>() ==
        0);
}

TEST_CASE("a local run seeds the platform admin and the demo tenant, who log in over gRPC",
          "[e2e]") {
  namespace iv1 = ::switchboard::identity::v1;
  auto r = Start({"--platform_admin_password=Platform-Admin-2026", "--demo_tenant",
                  "--demo_password=Demo-Switchboard-2026"});
  REQUIRE(Eventually([&] {
    return HealthOf(*r->health, "switchboard.identity.v1.IdentityService") ==
           HealthCheckResponse::SERVING;
  }));
  auto identity = iv1::IdentityService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", r->grpc_port), grpc::InsecureChannelCredentials()));
  auto login = [&](const std::string& tenant, const std::string& user, const std::string& pw) {
    return Login(*identity, tenant, user, pw);
  };
  const std::string agent = login("demo", "agent1", "Demo-Switchboard-2026");
  iv1::GetCurrentUserResponse me;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + agent);
  REQUIRE(identity->GetCurrentUser(&ctx, {}, &me).ok());
  CHECK(me.tenant().slug() == "demo");
  CHECK(me.user().display_name() == "Anna Agent");
  const std::string platform = login("platform", "superadmin", "Platform-Admin-2026");
  iv1::ListTenantsResponse tenants;
  grpc::ClientContext list_ctx;
  list_ctx.AddMetadata("authorization", "Bearer " + platform);
  REQUIRE(identity->ListTenants(&list_ctx, {}, &tenants).ok());
  CHECK(tenants.total_size() == 2);

  // Identity and org as production wires them: org verifies identity's tokens with keys it
  // fetched over gRPC, identity places a new user through org, org allocates the extension.
  namespace ov1 = ::switchboard::org::v1;
  auto org = ov1::OrgService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", r->grpc_port),
                                                          grpc::InsecureChannelCredentials()));
  const std::string admin = login("demo", "admin", "Demo-Switchboard-2026");
  auto with_admin = [&](grpc::ClientContext& c) {
    c.AddMetadata("authorization", "Bearer " + admin);
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  };
  ov1::OrgUnit sales;
  REQUIRE(Eventually([&] {  // until org has loaded identity's signing keys
    ov1::CreateOrgUnitRequest req;
    req.mutable_org_unit()->set_name("Sales");
    grpc::ClientContext c;
    with_admin(c);
    grpc::Status s = org->CreateOrgUnit(&c, req, &sales);
    return s.ok() || s.error_code() == grpc::StatusCode::ALREADY_EXISTS;
  }));
  iv1::CreateUserRequest create;
  create.mutable_user()->set_first_name("Sam");
  create.mutable_user()->set_last_name("Sales");
  create.mutable_user()->set_login_name("sam");
  create.add_org_unit_ids(sales.id());
  create.set_password("Demo-Switchboard-2026");
  iv1::User sam;
  grpc::ClientContext create_ctx;
  with_admin(create_ctx);
  grpc::Status created = identity->CreateUser(&create_ctx, create, &sam);
  INFO(created.error_message());
  REQUIRE(created.ok());
  ov1::GetUserPlacementRequest where;
  where.set_user_id(sam.id());
  ov1::UserPlacement placement;
  grpc::ClientContext where_ctx;
  with_admin(where_ctx);
  REQUIRE(org->GetUserPlacement(&where_ctx, where, &placement).ok());
  REQUIRE(placement.org_unit_ids_size() == 1);
  CHECK(placement.org_unit_ids(0) == sales.id());
  ov1::CreateAgentProfileRequest profile;
  profile.mutable_profile()->set_user_id(sam.id());
  ov1::AgentProfile made;
  grpc::ClientContext profile_ctx;
  with_admin(profile_ctx);
  grpc::Status made_status = org->CreateAgentProfile(&profile_ctx, profile, &made);
  INFO(made_status.error_message());
  REQUIRE(made_status.ok());
  CHECK(made.extension().size() == 3);

  r->process->Signal(SIGTERM);
  auto exit_code = r->process->Wait(absl::Seconds(10));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

TEST_CASE("media anchors a call's audio over gRPC, for the platform's own services only",
          "[e2e][media]") {
  namespace mv1 = ::switchboard::media::v1;
  const std::string token = "e2e-internal-token-for-media-0123456789";
  const int port_min = 2 * (testing::FreeTcpUdpPort() / 2);
  auto r = Start({"--internal_token=" + token, "--platform_admin_password=Platform-Admin-2026",
                  absl::StrCat("--media_rtp_port_min=", port_min),
                  absl::StrCat("--media_rtp_port_max=", port_min + 40)});
  REQUIRE(Eventually([&] {
    return HealthOf(*r->health, "switchboard.media.v1.MediaService") ==
               HealthCheckResponse::SERVING &&
           HealthOf(*r->health, "switchboard.identity.v1.IdentityService") ==
               HealthCheckResponse::SERVING;
  }));
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", r->grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto media = mv1::MediaService::NewStub(channel);
  auto identity = ::switchboard::identity::v1::IdentityService::NewStub(channel);
  enum class As { kNobody, kPerson, kService };
  std::string person;
  auto context = [&](grpc::ClientContext& c, As as) {
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (as == As::kService) c.AddMetadata("x-sb-internal-token", token);
    if (as == As::kPerson) c.AddMetadata("authorization", "Bearer " + person);
  };
  mv1::ProcessOfferRequest offer;
  offer.set_call_id("e2e-call-1");
  offer.set_from_tag("caller");
  offer.set_sdp(
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
  auto process_offer = [&](As as, mv1::ProcessOfferResponse* out) {
    grpc::ClientContext c;
    context(c, as);
    return media->ProcessOffer(&c, offer, out);
  };
  mv1::ProcessOfferResponse anchored;
  CHECK(process_offer(As::kNobody, &anchored).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  person = Login(*identity, "platform", "superadmin", "Platform-Admin-2026");
  CHECK(process_offer(As::kPerson, &anchored).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  const grpc::Status ok = process_offer(As::kService, &anchored);
  INFO(ok.error_message());
  REQUIRE(ok.ok());
  CHECK(anchored.endpoint().address() == "127.0.0.1");
  CHECK(anchored.endpoint().rtp_port() >= port_min);
  CHECK(anchored.endpoint().rtp_port() < port_min + 40);
  CHECK(anchored.sdp().find(absl::StrCat("m=audio ", anchored.endpoint().rtp_port(),
                                         " RTP/AVP 0 8 101")) != std::string::npos);

  mv1::MediaNodeStats stats;
  {
    grpc::ClientContext c;
    context(c, As::kService);
    REQUIRE(media->GetNodeStats(&c, {}, &stats).ok());
  }
  CHECK(stats.active_sessions() == 1);
  CHECK(stats.rtp_ports_in_use() == 4);
  CHECK(stats.rtp_ports_total() == 40);

  // Unparsable SDP: InvalidArgument that says what is wrong; SRTP: FailedPrecondition.
  offer.set_call_id("e2e-call-2");
  offer.set_sdp("hello");
  grpc::Status bad = process_offer(As::kService, &anchored);
  CHECK(bad.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(bad.error_message().find("v=") != std::string::npos);
  offer.set_sdp("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n");
  CHECK(process_offer(As::kService, &anchored).error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);

  mv1::DeleteSessionRequest del;
  del.set_call_id("e2e-call-1");
  mv1::DeleteSessionResponse deleted;
  {
    grpc::ClientContext c;
    context(c, As::kService);
    REQUIRE(media->DeleteSession(&c, del, &deleted).ok());
  }
  CHECK(deleted.legs_size() == 1);
  {
    grpc::ClientContext c;
    context(c, As::kService);
    REQUIRE(media->GetNodeStats(&c, {}, &stats).ok());
  }
  CHECK(stats.active_sessions() == 0);
  CHECK(stats.rtp_ports_in_use() == 0);
  r->process->Signal(SIGTERM);
  auto code = r->process->Wait(absl::Seconds(10));
  REQUIRE(code.ok());
  CHECK(*code == 0);
}

}  // namespace
}  // namespace sb::e2e
