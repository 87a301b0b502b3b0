#include "services/routing/routing_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
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
        auto& service = module->Own(std::make_unique<RoutingService>());
        platform.services().Add<v1::RoutingService>(&service, {"pg", "redis"});
        return module;
      },
  };
}

}  // namespace sb::routing
