#include "services/sip/sip_module.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "services/sip/sip_service.h"

namespace sb::sip {

app::ModuleSpec SipModule() {
  return {
      .name = "sip",
      .deps = {"redis"},
      .create = [](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        auto& service = module->Own(std::make_unique<SipService>());
        platform.services().Add<v1::SipService>(&service, {"redis"});
        return module;
      },
  };
}

}  // namespace sb::sip
