#include "services/org/org_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/auth/identity_clients.h"
#include "services/org/grpc_directory.h"
#include "services/org/org_migrations.h"
#include "services/org/org_service.h"

namespace sb::org {
namespace {

struct OrgFlags {
  int64_t extension_range_start = 100;
  int64_t extension_range_end = 999;
};

}  // namespace

app::ModuleSpec OrgModule() {
  auto flags = std::make_shared<OrgFlags>();
  return {
      .name = "org",
      .deps = {"pg", "redis"},
      .migrations = &OrgMigrations(),
      .declare_flags =
          [flags](app::FlagSet& set) {
            set.Add("extension_range_start", &flags->extension_range_start,
                    "First extension number given to agents of tenants that have not set their "
                    "own range (OrgSettings).");
            set.Add("extension_range_end", &flags->extension_range_end,
                    "Last extension number of that default range (inclusive).");
          },
      .create = [flags](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        if (flags->extension_range_start < 1 || flags->extension_range_end > 99999999 ||
            flags->extension_range_end < flags->extension_range_start) {
          return absl::InvalidArgumentError(
              "--extension_range_start/--extension_range_end: need 1 <= start <= end <= 99999999");
        }
        auto module = std::make_unique<app::OwningModule>();
        const std::string token = platform.config().internal_token;
        auto identity = [platform] { return platform.ChannelTo("identity"); };
        auto org = [platform] { return platform.ChannelTo("org"); };
        auto& auth = module->Own(std::make_unique<auth::ServiceAuth>(platform));
        auto& directory =
            module->Own(std::make_unique<GrpcDirectory>(identity, token, platform.clock()));
        OrgOptions options;
        options.default_extension_range_start = static_cast<int>(flags->extension_range_start);
        options.default_extension_range_end = static_cast<int>(flags->extension_range_end);
        auto& service =
            module->Own(std::make_unique<OrgService>(OrgDeps{.pg = platform.pg(),
                                                             .redis = platform.redis(),
                                                             .clock = platform.clock(),
                                                             .authenticator = auth.authenticator(),
                                                             .directory = directory,
                                                             .revocations = &auth.revocations()},
                                                     options));
        platform.services().Add<v1::OrgService>(&service, {"pg", "redis"});
        module->OnStart([&auth] { return auth.Start(); });
        module->OnStop([&auth] { auth.Stop(); });
        return module;
      },
  };
}

}  // namespace sb::org
