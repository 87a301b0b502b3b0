#pragma once

// The module system. Each service (and each piece of shared infrastructure such as the PostgreSQL
// pool) is a module: a name, the modules it needs, the flags it declares, and a factory. The one
// module list (cmd/switchboard/modules.cc) is the only place that names them all;
// `switchboard --target=a,b` creates the chosen targets and everything they depend on, in
// dependency order, and stops them in reverse.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/app/flags.h"
#include "libs/pg/migration.h"

namespace sb::app {

class Platform;

// A created module. Start() runs after every selected module is created and the gRPC server is
// serving (start background work here: consumers, timers). On shutdown, Drain() runs (in reverse
// order) once health reports NOT_SERVING and before the gRPC server stops taking calls: end
// long-lived streams there so that the drain need not wait for them. Stop() runs in reverse order
// after the server has drained. All are called on the main thread.
class Module {
 public:
  virtual ~Module() = default;
  virtual absl::Status Start() { return absl::OkStatus(); }
  virtual void Drain() {}
  virtual void Stop() {}
};

struct ModuleSpec {
  std::string name;
  // Modules that must be created before this one (and stopped after it).
  std::vector<std::string> deps;
  // True for user-facing targets (part of --target=all); false for infrastructure modules that
  // exist only because a target needs them.
  bool is_target = true;
  // The service's schema migrations, applied before `create` runs (nullptr: none).
  const pg::MigrationSet* migrations = nullptr;
  // Declares the module's flags, bound to its own config. Called for every module, selected or
  // not, so that --help is complete and flags of other targets are accepted.
  std::function<void(FlagSet&)> declare_flags;
  // Builds the module: reads its config, constructs its stores and services, registers them with
  // platform.services(). Errors abort start-up with the module's name in the message.
  std::function<absl::StatusOr<std::unique_ptr<Module>>(Platform&)> create;
};

// Resolves `targets` (names from the --target flag; "all" means every spec with is_target) against
// `specs`: the selected modules plus their transitive dependencies, in an order where every module
// comes after its dependencies, ties broken by their order in `specs`. Returns InvalidArgument for
// an unknown target or dependency, a non-target named as a target, or a dependency cycle.
absl::StatusOr<std::vector<const ModuleSpec*>> ResolveModules(
    const std::vector<ModuleSpec>& specs, const std::vector<std::string>& targets);

// The names of all targets, in declaration order, for messages and --help.
std::vector<std::string> TargetNames(const std::vector<ModuleSpec>& specs);

}  // namespace sb::app
