#include "services/media/media_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "services/media/media_migrations.h"
#include "services/media/media_service.h"

namespace sb::media {

app::ModuleSpec MediaModule() {
  return {
      .name = "media",
      .deps = {"pg"},
      .migrations = &MediaMigrations(),
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        auto& service = module->Own(std::make_unique<MediaService>());
        platform.services().Add<v1::MediaService>(&service, {"pg"});
        return module;
      },
  };
}

}  // namespace sb::media
