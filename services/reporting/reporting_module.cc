#include "services/reporting/reporting_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "services/reporting/reporting_migrations.h"
#include "services/reporting/reporting_service.h"

namespace sb::reporting {

app::ModuleSpec ReportingModule() {
  return {
      .name = "reporting",
      .deps = {"pg", "redis"},
      .migrations = &ReportingMigrations(),
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        auto& service = module->Own(std::make_unique<ReportingService>());
        platform.services().Add<v1::ReportingService>(&service, {"pg", "redis"});
        return module;
      },
  };
}

}  // namespace sb::reporting
