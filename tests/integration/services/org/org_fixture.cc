#include "tests/integration/services/org/org_fixture.h"

#include "libs/app/call_context.h"
#include "libs/auth/authenticator.h"
#include "libs/pg/migrate.h"
#include "libs/testing/redis_server.h"
#include "services/org/org_migrations.h"

namespace sb::org::test {

// Identity is built with pointers to org's clients before add_services creates them; they are
// only used once requests flow.
class OrgFixture::Forward final : public auth::ScopeFacts, public identity::OrgPlacement {
 public:
  explicit Forward(OrgFixture* fixture) : fixture_(fixture) {}
  absl::StatusOr<std::shared_ptr<const auth::Reach>> Resolve(std::string_view tenant_id,
                                                             std::string_view user_id,
                                                             auth::Scope scope) override {
    return fixture_->org_facts_->Resolve(tenant_id, user_id, scope);
  }
  absl::Status Place(const identity::OrgCall& call, const std::string& user_id,
                     const std::vector<std::string>& units,
                     const std::vector<std::string>& teams) override {
    return fixture_->org_placement_->Place(call, user_id, units, teams);
  }
  absl::Status Clone(const identity::OrgCall& call, const std::string& source,
                     const std::string& target) override {
    return fixture_->org_placement_->Clone(call, source, target);
  }
  absl::Status Release(const identity::OrgCall& call, const std::string& user_id) override {
    return fixture_->org_placement_->Release(call, user_id);
  }
  absl::StatusOr<std::vector<std::string>> UsersInOrgUnit(const identity::OrgCall& call,
                                                          const std::string& unit,
                                                          bool subtree) override {
    return fixture_->org_placement_->UsersInOrgUnit(call, unit, subtree);
  }
  absl::StatusOr<std::vector<std::string>> UsersInTeam(const identity::OrgCall& call,
                                                       const std::string& team) override {
    return fixture_->org_placement_->UsersInTeam(call, team);
  }

 private:
  OrgFixture* fixture_;
};

OrgFixture::OrgFixture(OrgOptions options, AddServices add_services)
    : options_(std::move(options)) {
  options_.redis_prefix = testing::UniqueKeyPrefix("org");
  identity::test::FixtureOptions io;
  // Both services reach each other through the one server's channel, created once the server is
  // up; the factories are called lazily, on first use.
  auto channel = [this] { return identity_->channel(); };
  io.add_services = [this, channel, add_services = std::move(add_services)](
                        identity::test::IdentityFixture& id, grpc::ServerBuilder& builder) {
    org_facts_ = std::make_unique<auth::OrgScopeFacts>(channel, id.internal_token());
    org_placement_ = std::make_unique<identity::GrpcOrgPlacement>(channel, id.internal_token());
    absl::Status migrated = pg::Migrate(id.pg(), OrgMigrations());
    INFO(migrated.ToString());
    REQUIRE(migrated.ok());
    auth_ = std::make_unique<auth::ServiceAuth>(
        auth::ServiceAuth::Deps{.identity = channel,
                                .org = channel,
                                .redis = id.redis(),
                                .clock = clock_,
                                .internal_token = id.internal_token(),
                                .revocations = {.key = id.revocation_key()}});
    directory_ = std::make_unique<GrpcDirectory>(channel, id.internal_token(), clock_);
    service_ = std::make_unique<OrgService>(OrgDeps{.pg = id.pg(),
                                                    .redis = id.redis(),
                                                    .clock = clock_,
                                                    .authenticator = auth_->authenticator(),
                                                    .directory = *directory_,
                                                    .revocations = &auth_->revocations()},
                                            options_);
    builder.RegisterService(service_.get());
    if (add_services) add_services(id, builder);
  };
  forward_ = std::make_unique<Forward>(this);
  io.scope_facts = forward_.get();
  io.org = forward_.get();
  identity_ = std::make_unique<identity::test::IdentityFixture>(io);
  stub_ = v1::OrgService::NewStub(identity_->channel());
  REQUIRE(auth_->keys().Refresh().ok());
  REQUIRE(auth_->Start().ok());
}

OrgFixture::~OrgFixture() {
  if (auth_) auth_->Stop();
}

std::unique_ptr<grpc::ClientContext> OrgFixture::InternalCtx(const std::string& tenant_id) const {
  auto context = identity_->InternalCtx();
  if (!tenant_id.empty()) context->AddMetadata(app::kTenantIdHeader, tenant_id);
  return context;
}

void OrgFixture::Grant(const std::string& admin_token, const std::string& user_id,
                       const std::string& permission, ::switchboard::common::v1::Scope scope) {
  iv1::GrantUserPermissionRequest req;
  req.set_user_id(user_id);
  req.mutable_grant()->set_permission(permission);
  req.mutable_grant()->set_scope(scope);
  iv1::UserPermissions resp;
  SB_REQUIRE_GRPC_OK(identity_->stub().GrantUserPermission(Ctx(admin_token).get(), req, &resp));
}

std::string OrgFixture::CreateOrgUnit(const std::string& token, const std::string& name,
                                      const std::string& parent_id) {
  v1::CreateOrgUnitRequest req;
  req.mutable_org_unit()->set_name(name);
  req.mutable_org_unit()->set_parent_id(parent_id);
  v1::OrgUnit unit;
  SB_REQUIRE_GRPC_OK(stub_->CreateOrgUnit(Ctx(token).get(), req, &unit));
  return unit.id();
}

std::string OrgFixture::CreateTeam(const std::string& token, const std::string& name,
                                   const std::vector<std::string>& members,
                                   const std::vector<std::string>& leaders) {
  v1::CreateTeamRequest req;
  req.mutable_team()->set_name(name);
  for (const auto& m : members) req.add_member_user_ids(m);
  for (const auto& l : leaders) req.add_leader_user_ids(l);
  v1::Team team;
  SB_REQUIRE_GRPC_OK(stub_->CreateTeam(Ctx(token).get(), req, &team));
  return team.id();
}

}  // namespace sb::org::test
