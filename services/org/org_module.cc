#include "services/org/org_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "services/org/org_migrations.h"
#include "services/org/org_service.h"

namespace sb::org {

app::ModuleSpec OrgModule() {
  return {
      .name = "org",
      .deps = {"pg"},
      .migrations = &OrgMigrations(),
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        auto& service = module->Own(std::make_unique<OrgService>());
        platform.services().Add<v1::OrgService>(&service, {"pg"});
        return module;
      },
  };
}

}  // namespace sb::org
