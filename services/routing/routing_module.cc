#include "services/routing/routing_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/auth/identity_clients.h"
#include "services/routing/grpc_directory.h"
#include "services/routing/routing_migrations.h"
#include "services/routing/routing_service.h"

namespace sb::routing {

app::ModuleSpec RoutingModule() {
  return {
      .name = "routing",
      .deps = {"pg", "redis"},
      .migrations = &RoutingMigrations(),
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        const std::string token = platform.config().internal_token;
        auto identity = [platform] { return platform.ChannelTo("identity"); };
        auto org = [platform] { return platform.ChannelTo("org"); };
        auto& auth = module->Own(
            std::make_unique<auth::ServiceAuth>(auth::ServiceAuth::Deps{.identity = identity,
                                                                        .org = org,
                                                                        .redis = platform.redis(),
                                                                        .clock = platform.clock(),
                                                                        .internal_token = token}));
        auto& directory =
            module->Own(std::make_unique<GrpcDirectory>(org, identity, token, platform.clock()));
        auto& service = module->Own(
            std::make_unique<RoutingService>(RoutingDeps{.clock = platform.clock(),
                                                         .authenticator = auth.authenticator(),
                                                         .directory = directory}));
        // Redis carries routing's live state from issue #7 on; health already waits for it.
        platform.services().Add<v1::RoutingService>(&service, {"pg", "redis"});
        module->OnStart([&auth] { return auth.Start(); });
        module->OnStop([&auth] { auth.Stop(); });
        return module;
      },
  };
}

}  // namespace sb::routing
