#include "tests/integration/services/identity/identity_fixture.h"

#include "absl/strings/str_cat.h"
#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/common/ids.h"
#include "libs/pg/migrate.h"
#include "libs/testing/pg_server.h"
#include "libs/testing/redis_server.h"
#include "services/identity/identity_migrations.h"
#include "switchboard/common/v1/errors.pb.h"

namespace sb::identity::test {

IdentityFixture::IdentityFixture(FixtureOptions options) : options_(std::move(options)) {
  absl::StatusOr<std::string> server = testing::SharedTestPgDsn();
  REQUIRE(server.ok());
  absl::StatusOr<std::string> dsn = testing::CreateTestDatabase(*server);
  REQUIRE(dsn.ok());
  absl::StatusOr<std::unique_ptr<pg::Pool>> pool = pg::Pool::Create({.dsn = *dsn, .size = 16});
  REQUIRE(pool.ok());
  pool_ = *std::move(pool);
  absl::Status migrated = pg::Migrate(*pool_, IdentityMigrations());
  INFO(migrated.ToString());
  REQUIRE(migrated.ok());

  absl::StatusOr<std::string> redis_url = testing::SharedTestRedisUrl();
  REQUIRE(redis_url.ok());
  absl::StatusOr<std::unique_ptr<redis::Client>> redis = redis::Client::Create({.url = *redis_url});
  REQUIRE(redis.ok());
  redis_ = *std::move(redis);
  revocation_key_ = testing::UniqueKeyPrefix("identity") + "revocations";
  revocations_ = std::make_unique<auth::RedisRevocationList>(
      *redis_, clock_, auth::RedisRevocationListOptions{.key = revocation_key_});
  REQUIRE(revocations_->PollOnce().ok());
  revocations_->Start();

  internal_token_ = NewUuid();
  IdentityOptions identity = options_.identity;
  identity.internal_token = internal_token_;
  identity.revocation_key = revocation_key_;
  if (options_.fast_hashing)
    identity.password_hash = {.memory_kib = 1024, .iterations = 1, .parallelism = 1};
  options_.identity = identity;
  absl::StatusOr<std::unique_ptr<IdentityService>> service = IdentityService::Create(
      IdentityDeps{
          .pg = *pool_,
          .clock = clock_,
          .scope_facts = options_.scope_facts != nullptr ? *options_.scope_facts
                                                         : static_cast<auth::ScopeFacts&>(org_),
          .org = options_.org != nullptr ? *options_.org : static_cast<OrgPlacement&>(org_),
          .revocations = *revocations_,
          .redis = redis_.get()},
      identity);
  INFO(service.status().ToString());
  REQUIRE(service.ok());
  service_ = *std::move(service);
  REQUIRE(service_->EnsurePlatformAdmin("superadmin", kPlatformAdminPassword).ok());
  service_->Start();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service_.get());
  if (options_.add_services) options_.add_services(*this, builder);
  server_ = builder.BuildAndStart();
  REQUIRE(server_ != nullptr);
  channel_ =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  stub_ = v1::IdentityService::NewStub(channel_);
  platform_token_ = Token("platform", "superadmin", kPlatformAdminPassword);
}

IdentityFixture::~IdentityFixture() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (service_) service_->Stop();
  if (revocations_) revocations_->Stop();
}

std::unique_ptr<grpc::ClientContext> IdentityFixture::Ctx(const std::string& token) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  return context;
}

std::unique_ptr<grpc::ClientContext> IdentityFixture::InternalCtx() const {
  auto context = Ctx();
  context->AddMetadata(auth::kInternalTokenHeader, internal_token_);
  return context;
}

TenantInfo IdentityFixture::CreateTenant(const std::string& slug) {
  v1::CreateTenantRequest req;
  req.mutable_tenant()->set_slug(slug);
  req.mutable_tenant()->set_display_name(slug + " Ltd");
  req.mutable_tenant()->set_sip_domain(slug + ".sip.test");
  req.mutable_tenant()->set_time_zone("Europe/Budapest");
  req.mutable_tenant()->set_default_language("en");
  req.mutable_admin()->mutable_user()->set_first_name("Ada");
  req.mutable_admin()->mutable_user()->set_last_name("Admin");
  req.mutable_admin()->mutable_user()->set_login_name("admin");
  req.mutable_admin()->set_password(kPassword);
  v1::CreateTenantResponse resp;
  SB_REQUIRE_GRPC_OK(stub_->CreateTenant(Ctx(platform_token_).get(), req, &resp));
  return TenantInfo{resp.tenant().id(), slug, resp.admin().id(), Token(slug, "admin")};
}

std::string IdentityFixture::CreateUser(const std::string& token, const std::string& login,
                                        const std::vector<std::string>& role_ids,
                                        const std::vector<std::string>& org_unit_ids,
                                        const std::vector<std::string>& team_ids,
                                        const std::string& password) {
  v1::CreateUserRequest req;
  req.mutable_user()->set_first_name("First " + login);
  req.mutable_user()->set_last_name("Last");
  req.mutable_user()->set_login_name(login);
  for (const auto& r : role_ids) req.mutable_user()->add_role_ids(r);
  for (const auto& u : org_unit_ids) req.add_org_unit_ids(u);
  for (const auto& t : team_ids) req.add_team_ids(t);
  req.set_password(password);
  v1::User user;
  SB_REQUIRE_GRPC_OK(stub_->CreateUser(Ctx(token).get(), req, &user));
  return user.id();
}

v1::LoginResponse IdentityFixture::Login(const std::string& tenant_slug, const std::string& login,
                                         const std::string& password) {
  v1::LoginRequest req;
  req.set_tenant_slug(tenant_slug);
  req.set_login(login);
  req.set_password(password);
  v1::LoginResponse resp;
  SB_REQUIRE_GRPC_OK(stub_->Login(Ctx().get(), req, &resp));
  return resp;
}

std::string IdentityFixture::Token(const std::string& tenant_slug, const std::string& login,
                                   const std::string& password) {
  v1::LoginResponse resp = Login(tenant_slug, login, password);
  REQUIRE(resp.status() == v1::LoginResponse::STATUS_OK);
  return resp.tokens().access_token();
}

namespace {

::switchboard::common::v1::ErrorDetails DetailsOf(const grpc::ClientContext& context) {
  ::switchboard::common::v1::ErrorDetails details;
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("sb-error-details-bin");
  if (it != trailers.end())
    details.ParseFromString(std::string(it->second.data(), it->second.size()));
  return details;
}

}  // namespace

std::string ViolationField(const grpc::ClientContext& context) {
  const auto details = DetailsOf(context);
  for (const auto& d : details.details()) {
    if (d.has_field_violation()) return d.field_violation().field();
  }
  return "";
}

absl::Duration RetryDelay(const grpc::ClientContext& context) {
  const auto details = DetailsOf(context);
  for (const auto& d : details.details()) {
    if (d.has_retry_info()) {
      return absl::Seconds(d.retry_info().retry_delay().seconds()) +
             absl::Nanoseconds(d.retry_info().retry_delay().nanos());
    }
  }
  return absl::ZeroDuration();
}

}  // namespace sb::identity::test
