#include "tests/integration/services/routing/routing_fixture.h"

#include "libs/pg/migrate.h"
#include "services/routing/routing_migrations.h"

namespace sb::routing::test {

RoutingFixture::RoutingFixture(RouterOptions options) : options_(options) {
  // Called lazily, once the server listens (the first RPC routing makes).
  auto channel = [this] { return org_->identity().channel(); };
  org_ = std::make_unique<org::test::OrgFixture>(
      org::OrgOptions{},
      [this, channel](identity::test::IdentityFixture& id, grpc::ServerBuilder& builder) {
        absl::Status migrated = pg::Migrate(id.pg(), RoutingMigrations());
        INFO(migrated.ToString());
        REQUIRE(migrated.ok());
        auth_ = std::make_unique<auth::ServiceAuth>(
            auth::ServiceAuth::Deps{.identity = channel,
                                    .org = channel,
                                    .redis = id.redis(),
                                    .clock = clock_,
                                    .internal_token = id.internal_token(),
                                    .revocations = {.key = id.revocation_key()}});
        directory_ = std::make_unique<GrpcDirectory>(channel, channel, id.internal_token(), clock_);
        service_ = std::make_unique<RoutingService>(
            RoutingDeps{
                .clock = clock_, .authenticator = auth_->authenticator(), .directory = *directory_},
            options_);
        builder.RegisterService(service_.get());
      });
  stub_ = v1::RoutingService::NewStub(org_->identity().channel());
  REQUIRE(auth_->keys().Refresh().ok());
  REQUIRE(auth_->Start().ok());
}

RoutingFixture::~RoutingFixture() {
  if (auth_) auth_->Stop();
}

TenantInfo RoutingFixture::CreateTenant(const std::string& slug, const std::string& country) {
  TenantInfo t = org_->CreateTenant(slug);
  iv1::UpdateTenantRequest req;
  req.mutable_tenant()->set_id(t.id);
  req.mutable_tenant()->set_default_country(country);
  req.mutable_update_mask()->add_paths("default_country");
  iv1::Tenant out;
  SB_REQUIRE_GRPC_OK(identity_stub().UpdateTenant(Ctx(t.admin_token).get(), req, &out));
  return t;
}

std::string RoutingFixture::CreateTrunk(const std::string& token, const std::string& name,
                                        const std::function<void(orgv1::Trunk&)>& edit) {
  orgv1::CreateTrunkRequest req;
  orgv1::Trunk& t = *req.mutable_trunk();
  t.set_name(name);
  t.add_inbound_cidrs("192.0.2.0/24");
  t.set_inbound_enabled(true);
  t.set_outbound_enabled(true);
  t.set_outbound_host("sip.carrier.test");
  if (edit) edit(t);
  orgv1::Trunk out;
  SB_REQUIRE_GRPC_OK(org_stub().CreateTrunk(Ctx(token).get(), req, &out));
  return out.id();
}

std::string RoutingFixture::CreateProject(const std::string& token, const std::string& name) {
  orgv1::CreateProjectRequest req;
  req.mutable_project()->set_name(name);
  orgv1::Project out;
  SB_REQUIRE_GRPC_OK(org_stub().CreateProject(Ctx(token).get(), req, &out));
  return out.id();
}

std::string RoutingFixture::CreateNumber(const std::string& token, const std::string& e164,
                                         const std::string& project_id, const std::string& trunk_id,
                                         const std::string& schedule_id) {
  orgv1::CreateNumberRequest req;
  req.mutable_number()->set_number(e164);
  req.mutable_number()->set_project_id(project_id);
  req.mutable_number()->set_trunk_id(trunk_id);
  req.mutable_number()->set_schedule_id(schedule_id);
  orgv1::Number out;
  SB_REQUIRE_GRPC_OK(org_stub().CreateNumber(Ctx(token).get(), req, &out));
  return out.id();
}

RoutingFixture::Agent RoutingFixture::CreateAgent(const TenantInfo& tenant,
                                                  const std::string& login,
                                                  orgv1::AgentProfile profile) {
  Agent agent;
  agent.user_id = org_->CreateUser(tenant.admin_token, login, {"agent"});
  profile.set_user_id(agent.user_id);
  orgv1::CreateAgentProfileRequest req;
  *req.mutable_profile() = profile;
  orgv1::AgentProfile out;
  SB_REQUIRE_GRPC_OK(org_stub().CreateAgentProfile(Ctx(tenant.admin_token).get(), req, &out));
  agent.extension = out.extension();
  agent.token = org_->Token(tenant.slug, login);
  return agent;
}

void RoutingFixture::Select(const Agent& agent, const std::string& primary,
                            const std::vector<std::string>& secondary) {
  orgv1::SetProjectSelectionRequest req;
  req.set_primary_project_id(primary);
  for (const auto& s : secondary) req.add_secondary_project_ids(s);
  orgv1::ProjectSelection out;
  SB_REQUIRE_GRPC_OK(org_stub().SetProjectSelection(Ctx(agent.token).get(), req, &out));
}

void RoutingFixture::TopUp(const std::string& token, int64_t units, const std::string& key) {
  orgv1::TopUpWalletRequest req;
  req.mutable_amount()->set_currency_code("EUR");
  req.mutable_amount()->set_units(units);
  req.set_idempotency_key(key);
  orgv1::WalletTransaction out;
  SB_REQUIRE_GRPC_OK(org_stub().TopUpWallet(Ctx(token).get(), req, &out));
}

void RoutingFixture::CreatePin(const std::string& token, const std::string& user_id,
                               const std::string& pin) {
  iv1::CreatePinRequest req;
  req.set_user_id(user_id);
  req.set_pin(pin);
  iv1::CreatePinResponse out;
  SB_REQUIRE_GRPC_OK(identity_stub().CreatePin(Ctx(token).get(), req, &out));
}

}  // namespace sb::routing::test
