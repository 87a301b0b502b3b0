#include "services/identity/identity_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/auth/cached_scope_facts.h"
#include "libs/auth/org_scope_facts.h"
#include "libs/auth/revocation_list.h"
#include "services/identity/grpc_org_placement.h"
#include "services/identity/identity_migrations.h"
#include "services/identity/identity_service.h"

namespace sb::identity {
namespace {

struct IdentityFlags {
  std::string platform_admin_login = "superadmin";
  std::string platform_admin_password;
  absl::Duration access_token_ttl = absl::Minutes(15);
  std::string secrets_key;
  bool demo_tenant = false;
  std::string demo_password = "Demo-Switchboard-2026";
};

}  // namespace

app::ModuleSpec IdentityModule() {
  auto flags = std::make_shared<IdentityFlags>();
  return {
      .name = "identity",
      .deps = {"pg", "redis"},
      .migrations = &IdentityMigrations(),
      .declare_flags =
          [flags](app::FlagSet& set) {
            set.Add("platform_admin_login", &flags->platform_admin_login,
                    "Login name of the platform admin created on first start.", app::NonEmpty());
            set.Add("platform_admin_password", &flags->platform_admin_password,
                    "Password of the platform admin created on first start (when no platform "
                    "admin exists yet). Empty: none is created.");
            set.Add("secrets_key", &flags->secrets_key,
                    "32 random bytes, base64 (openssl rand -base64 32): seals TOTP secrets and "
                    "token-signing private keys in PostgreSQL. Empty: stored unsealed (local "
                    "runs only). Keep it in a Kubernetes Secret: if it is lost, everyone logs in "
                    "again and users with TOTP need a recovery code or an admin's TOTP reset");
            set.Add("demo_tenant", &flags->demo_tenant,
                    "Create the demo tenant 'demo' (admin, supervisor, agent1..3) on first start, "
                    "for local runs (tools/run).");
            set.Add("demo_password", &flags->demo_password, "Password of the demo tenant's users.");
            set.Add("access_token_ttl", &flags->access_token_ttl,
                    "Lifetime of access tokens (JWT).", app::PositiveDuration());
          },
      .create = [flags](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        const std::string token = platform.config().internal_token;
        auto org_channel = [platform] { return platform.ChannelTo("org"); };
        auto& org_facts = module->Own(std::make_unique<auth::OrgScopeFacts>(org_channel, token));
        auto& facts =
            module->Own(std::make_unique<auth::CachedScopeFacts>(org_facts, platform.clock()));
        auto& org = module->Own(std::make_unique<GrpcOrgPlacement>(org_channel, token));
        auto& revocations = module->Own(
            std::make_unique<auth::RedisRevocationList>(platform.redis(), platform.clock()));
        IdentityOptions options;
        options.internal_token = token;
        options.access_token_ttl = flags->access_token_ttl;
        options.secrets_key = flags->secrets_key;
        absl::StatusOr<std::unique_ptr<IdentityService>> created =
            IdentityService::Create(IdentityDeps{.pg = platform.pg(),
                                                 .clock = platform.clock(),
                                                 .scope_facts = facts,
                                                 .org = org,
                                                 .revocations = revocations,
                                                 .redis = &platform.redis()},
                                    options);
        if (!created.ok()) return created.status();
        auto& service = module->Own(*std::move(created));
        if (!flags->platform_admin_password.empty()) {
          if (absl::Status s = service.EnsurePlatformAdmin(flags->platform_admin_login,
                                                           flags->platform_admin_password);
              !s.ok()) {
            return s;
          }
        }
        if (flags->demo_tenant) {
          if (absl::Status s = service.SeedDemoTenant(flags->demo_password); !s.ok()) return s;
        }
        platform.services().Add<v1::IdentityService>(&service, {"pg", "redis"});
        module->OnStart([&revocations, &service] {
          (void)revocations.PollOnce();
          revocations.Start();
          service.Start();
          return absl::OkStatus();
        });
        module->OnStop([&revocations, &service] {
          service.Stop();
          revocations.Stop();
        });
        return module;
      },
  };
}

}  // namespace sb::identity
