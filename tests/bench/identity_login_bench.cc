// Login through identity's gRPC API with the production argon2id cost (19 MiB, t=2, p=1): the
// service runs in this process on a loopback port against PostgreSQL and Redis
// (SB_TEST_PG_DSN / SB_TEST_REDIS_URL, or private servers started here), as the integration
// fixture runs it, but with the real hashing parameters.
//
//   identity_login_bench [--seconds=3] [--tries=50]
//
// Prints:
//   - successful logins per second with 1 and then 2 client threads, and logins per CPU-second
//     of this process (server and client together: "per core");
//   - the time of a failed login for an unknown user and for a known user with a wrong password,
//     mean, p50 and p99 over --tries each (interleaved, so drift hits both alike): they must be
//     alike, or the answer's timing says which login names exist.
// The throttle table is cleared before each failed try (outside the timed call), so that the
// figures are of the password check and not of the lockout.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/auth/revocation_list.h"
#include "libs/auth/scope_facts.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/pg/migrate.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"
#include "libs/testing/pg_server.h"
#include "libs/testing/redis_server.h"
#include "services/identity/identity_migrations.h"
#include "services/identity/identity_service.h"
#include "services/identity/org_placement.h"

namespace {

namespace v1 = ::switchboard::identity::v1;

constexpr char kAdminPassword[] = "Bench-Platform-Admin-7731";
constexpr char kPassword[] = "Correct-Horse-42-Battery";

// Org facts are not what this measures: everybody reaches only themself, placements succeed.
class NoOrg final : public sb::auth::ScopeFacts, public sb::identity::OrgPlacement {
 public:
  absl::StatusOr<std::shared_ptr<const sb::auth::Reach>> Resolve(std::string_view,
                                                                 std::string_view user_id,
                                                                 sb::auth::Scope) override {
    auto reach = std::make_shared<sb::auth::Reach>();
    reach->user_ids.insert(std::string(user_id));
    return reach;
  }
  absl::Status Place(const sb::identity::OrgCall&, const std::string&,
                     const std::vector<std::string>&, const std::vector<std::string>&) override {
    return absl::OkStatus();
  }
  absl::Status Clone(const sb::identity::OrgCall&, const std::string&,
                     const std::string&) override {
    return absl::OkStatus();
  }
  absl::Status Release(const sb::identity::OrgCall&, const std::string&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> UsersInOrgUnit(const sb::identity::OrgCall&,
                                                          const std::string&, bool) override {
    return std::vector<std::string>{};
  }
  absl::StatusOr<std::vector<std::string>> UsersInTeam(const sb::identity::OrgCall&,
                                                       const std::string&) override {
    return std::vector<std::string>{};
  }
};

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "identity_login_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

void DieUnless(const std::string& what, const grpc::Status& s) {
  if (!s.ok())
    Die(what, absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message()));
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

v1::LoginRequest LoginReq(const std::string& slug, const std::string& login,
                          const std::string& password) {
  v1::LoginRequest req;
  req.set_tenant_slug(slug);
  req.set_login(login);
  req.set_password(password);
  return req;
}

struct Throughput {
  int threads = 0;
  int64_t logins = 0;
  int64_t errors = 0;
  double seconds = 0;
  double cpu_seconds = 0;
};

Throughput MeasureLogins(v1::IdentityService::Stub& stub, int threads, double seconds) {
  std::atomic<int64_t> logins{0}, errors{0};
  std::atomic<bool> stop{false};
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < threads; ++i) {
    clients.emplace_back([&] {
      const v1::LoginRequest req = LoginReq("bench", "agent", kPassword);
      while (!stop.load(std::memory_order_relaxed)) {
        v1::LoginResponse resp;
        grpc::Status s = stub.Login(Ctx().get(), req, &resp);
        (s.ok() && resp.status() == v1::LoginResponse::STATUS_OK ? logins : errors)++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : clients) t.join();
  Throughput r;
  r.threads = threads;
  r.logins = logins;
  r.errors = errors;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_seconds = CpuSeconds() - cpu0;
  return r;
}

struct Stats {
  double mean_ms = 0, p50_ms = 0, p99_ms = 0, min_ms = 0, max_ms = 0;
};

Stats StatsOf(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  Stats s;
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean_ms = sum / ms.size();
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(std::ceil(q * ms.size())) - 1)];
  };
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.min_ms = ms.front();
  s.max_ms = ms.back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  int tries = 50;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--seconds=", 0) == 0) (void)absl::SimpleAtod(arg.substr(10), &seconds);
    if (arg.rfind("--tries=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(8), &tries);
  }
  tries = std::max(tries, 2);

  absl::StatusOr<std::string> server = sb::testing::SharedTestPgDsn();
  if (!server.ok()) Die("PostgreSQL", server.status());
  absl::StatusOr<std::string> dsn = sb::testing::CreateTestDatabase(*server);
  if (!dsn.ok()) Die("test database", dsn.status());
  absl::StatusOr<std::unique_ptr<sb::pg::Pool>> pool =
      sb::pg::Pool::Create({.dsn = *dsn, .size = 8});
  if (!pool.ok()) Die("pool", pool.status());
  if (absl::Status s = sb::pg::Migrate(**pool, sb::identity::IdentityMigrations()); !s.ok()) {
    Die("migrations", s);
  }
  absl::StatusOr<std::string> redis_url = sb::testing::SharedTestRedisUrl();
  if (!redis_url.ok()) Die("Redis", redis_url.status());
  absl::StatusOr<std::unique_ptr<sb::redis::Client>> redis =
      sb::redis::Client::Create({.url = *redis_url});
  if (!redis.ok()) Die("Redis client", redis.status());

  sb::SystemClock clock;
  NoOrg org;
  const std::string revocation_key = sb::testing::UniqueKeyPrefix("login-bench") + "revocations";
  sb::auth::RedisRevocationList revocations(**redis, clock, {.key = revocation_key});
  if (absl::Status s = revocations.PollOnce(); !s.ok()) Die("revocation list", s);
  revocations.Start();

  sb::identity::IdentityOptions options;
  options.internal_token = sb::NewUuid();
  options.revocation_key = revocation_key;
  options.password_hash = {};  // the production default: 19 MiB, t=2, p=1
  absl::StatusOr<std::unique_ptr<sb::identity::IdentityService>> service =
      sb::identity::IdentityService::Create(sb::identity::IdentityDeps{.pg = **pool,
                                                                       .clock = clock,
                                                                       .scope_facts = org,
                                                                       .org = org,
                                                                       .revocations = revocations,
                                                                       .redis = redis->get()},
                                            options);
  if (!service.ok()) Die("identity service", service.status());
  if (absl::Status s = (*service)->EnsurePlatformAdmin("superadmin", kAdminPassword); !s.ok()) {
    Die("platform admin", s);
  }
  (*service)->Start();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service->get());
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server) Die("gRPC server", absl::UnavailableError("could not start"));
  auto stub = v1::IdentityService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  // A tenant with its admin, and the agent whose logins are measured.
  v1::LoginResponse platform;
  DieUnless(
      "platform login",
      stub->Login(Ctx().get(), LoginReq("platform", "superadmin", kAdminPassword), &platform));
  v1::CreateTenantRequest tenant;
  tenant.mutable_tenant()->set_slug("bench");
  tenant.mutable_tenant()->set_display_name("Bench Ltd");
  tenant.mutable_tenant()->set_sip_domain("bench.sip.test");
  tenant.mutable_tenant()->set_time_zone("UTC");
  tenant.mutable_tenant()->set_default_language("en");
  tenant.mutable_admin()->mutable_user()->set_first_name("Ada");
  tenant.mutable_admin()->mutable_user()->set_last_name("Admin");
  tenant.mutable_admin()->mutable_user()->set_login_name("admin");
  tenant.mutable_admin()->set_password(kPassword);
  v1::CreateTenantResponse created;
  DieUnless("CreateTenant",
            stub->CreateTenant(Ctx(platform.tokens().access_token()).get(), tenant, &created));
  v1::LoginResponse admin;
  DieUnless("admin login", stub->Login(Ctx().get(), LoginReq("bench", "admin", kPassword), &admin));
  v1::CreateUserRequest user;
  user.mutable_user()->set_first_name("Bea");
  user.mutable_user()->set_last_name("Bench");
  user.mutable_user()->set_login_name("agent");
  user.mutable_user()->add_role_ids("agent");
  user.set_password(kPassword);
  v1::User agent;
  DieUnless("CreateUser", stub->CreateUser(Ctx(admin.tokens().access_token()).get(), user, &agent));

  // Warm-up: connections in the pool, the channel, the allocator's 19 MiB arenas.
  MeasureLogins(*stub, 2, 0.5);

  std::printf("identity login benchmark: argon2id m=%u KiB t=%u p=%u, %u cores, %.1f s per run\n\n",
              options.password_hash.memory_kib, options.password_hash.iterations,
              options.password_hash.parallelism, std::thread::hardware_concurrency(), seconds);
  std::printf("%-16s %10s %12s %14s %12s %8s\n", "client threads", "logins", "logins/s",
              "logins/cpu-s", "ms/login", "errors");
  for (int threads : {1, 2}) {
    Throughput r = MeasureLogins(*stub, threads, seconds);
    std::printf("%-16d %10lld %12.1f %14.1f %12.2f %8lld\n", r.threads,
                static_cast<long long>(r.logins), r.logins / r.seconds,
                r.cpu_seconds > 0 ? r.logins / r.cpu_seconds : 0.0,
                r.logins > 0 ? 1000.0 * r.seconds * r.threads / r.logins : 0.0,
                static_cast<long long>(r.errors));
  }

  // Failed logins, interleaved: unknown user, wrong password, (for reference) right password.
  auto clear_throttle = [&] {
    absl::Status s = (*pool)->Run([](pqxx::work& tx) {
      tx.exec("DELETE FROM identity.throttle");
      return absl::OkStatus();
    });
    if (!s.ok()) Die("clearing the throttle", s);
  };
  auto timed = [&](const v1::LoginRequest& req, grpc::StatusCode expected) {
    clear_throttle();
    v1::LoginResponse resp;
    auto ctx = Ctx();
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status s = stub->Login(ctx.get(), req, &resp);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (s.error_code() != expected) {
      Die("login", absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message()));
    }
    return ms;
  };
  std::vector<double> unknown, wrong, right;
  for (int i = 0; i < tries; ++i) {
    unknown.push_back(timed(LoginReq("bench", absl::StrCat("nobody-", i), "Wrong-Password-123"),
                            grpc::StatusCode::UNAUTHENTICATED));
    wrong.push_back(
        timed(LoginReq("bench", "agent", "Wrong-Password-123"), grpc::StatusCode::UNAUTHENTICATED));
    right.push_back(timed(LoginReq("bench", "agent", kPassword), grpc::StatusCode::OK));
  }
  std::printf("\nlogin time over %d tries each (one client, interleaved)\n", tries);
  std::printf("%-28s %9s %9s %9s %9s %9s\n", "case", "mean ms", "p50 ms", "p99 ms", "min ms",
              "max ms");
  const Stats su = StatsOf(unknown), sw = StatsOf(wrong), sr = StatsOf(right);
  for (const auto& [name, s] : {std::pair<const char*, Stats>{"unknown user", su},
                                {"known user, wrong password", sw},
                                {"right password (reference)", sr}}) {
    std::printf("%-28s %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, s.mean_ms, s.p50_ms, s.p99_ms,
                s.min_ms, s.max_ms);
  }
  std::printf("\nunknown vs wrong password: mean differs by %.2f ms (%.1f%%), p50 by %.2f ms\n",
              su.mean_ms - sw.mean_ms, 100.0 * (su.mean_ms - sw.mean_ms) / sw.mean_ms,
              su.p50_ms - sw.p50_ms);

  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  (*service)->Stop();
  revocations.Stop();
  return 0;
}
