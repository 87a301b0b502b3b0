#include "services/gateway/gateway_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "services/gateway/gateway_service.h"

namespace sb::gateway {

app::ModuleSpec GatewayModule() {
  return {
      .name = "gateway",
      .deps = {"redis"},
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        auto& service = module->Own(std::make_unique<GatewayService>());
        platform.services().Add<v1::GatewayService>(&service, {"redis"});
        return module;
      },
  };
}

}  // namespace sb::gateway
