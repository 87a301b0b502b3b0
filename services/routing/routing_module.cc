#include "services/routing/routing_module.h"

#include <memory>
#include <string>

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/auth/identity_clients.h"
#include "services/routing/grpc_directory.h"
#include "services/routing/routing_migrations.h"
#include "services/routing/routing_service.h"

namespace sb::routing {
namespace {

struct RoutingFlags {
  absl::Duration number_cache_ttl = absl::Seconds(5);
  absl::Duration agent_cache_ttl = absl::Seconds(1);
};

std::string AtMostOneMinute(const absl::Duration& d) {
  if (d < absl::ZeroDuration() || d > absl::Minutes(1)) return "must be between 0s and 1m";
  return "";
}

}  // namespace

app::ModuleSpec RoutingModule() {
  auto flags = std::make_shared<RoutingFlags>();
  return {
      .name = "routing",
      .deps = {"pg", "redis"},
      .migrations = &RoutingMigrations(),
      .declare_flags =
          [flags](app::FlagSet& set) {
            set.Add("routing_number_cache_ttl", &flags->number_cache_ttl,
                    "How long routing reuses what org said about a dialled number (the number, "
                    "its project, trunk and schedule), its schedule's open/closed state and the "
                    "caller's name from the contacts: disabling or changing a number, editing a "
                    "schedule or a contact reaches calls up to this long later. 0: ask org on "
                    "every call. At most 1m.",
                    AtMostOneMinute);
            set.Add("routing_agent_cache_ttl", &flags->agent_cache_ttl,
                    "How long routing reuses who selected a project and those agents' profiles "
                    "(extension, phones, ring preference): an agent who selects or leaves a "
                    "project, or whose profile changes, is offered calls by the new state up to "
                    "this long later. Whether their phone is registered or busy is always "
                    "current. 0: ask org on every call. At most 1m.",
                    AtMostOneMinute);
          },
      .create = [flags](app::Platform& platform) -> absl::StatusOr<std::unique_ptr<app::Module>> {
        auto module = std::make_unique<app::OwningModule>();
        const std::string token = platform.config().internal_token;
        auto identity = [platform] { return platform.ChannelTo("identity"); };
        auto org = [platform] { return platform.ChannelTo("org"); };
        auto& auth = module->Own(std::make_unique<auth::ServiceAuth>(platform));
        auto& directory = module->Own(std::make_unique<GrpcDirectory>(
            org, identity, token, platform.clock(),
            GrpcDirectoryOptions{.number_cache_ttl = flags->number_cache_ttl,
                                 .agent_cache_ttl = flags->agent_cache_ttl}));
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
