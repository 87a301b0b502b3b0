#include "services/identity/identity_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "services/identity/identity_migrations.h"
#include "services/identity/identity_service.h"

namespace sb::identity {

app::ModuleSpec IdentityModule() {
  return {
      .name = "identity",
      .deps = {"pg"},
      .migrations = &IdentityMigrations(),
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        auto& service = module->Own(std::make_unique<IdentityService>());
        platform.services().Add<v1::IdentityService>(&service, {"pg"});
        return module;
      },
  };
}

}  // namespace sb::identity
