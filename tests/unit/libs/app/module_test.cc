#include <catch2/catch.hpp>

#include "libs/app/module.h"

namespace sb::app {
namespace {

std::vector<ModuleSpec> Specs() {
  return {
      {.name = "pg", .is_target = false},   {.name = "redis", .is_target = false},
      {.name = "identity", .deps = {"pg"}}, {.name = "routing", .deps = {"redis", "pg"}},
      {.name = "sip", .deps = {"redis"}},   {.name = "gateway", .deps = {"redis"}},
  };
}

std::vector<std::string> Names(const absl::StatusOr<std::vector<const ModuleSpec*>>& order) {
  REQUIRE(order.ok());
  std::vector<std::string> names;
  for (const auto* spec : *order) names.push_back(spec->name);
  return names;
}

TEST_CASE("modules: all starts every target after its dependencies", "[app]") {
  const auto specs = Specs();
  CHECK(Names(ResolveModules(specs, {"all"})) ==
        std::vector<std::string>{"pg", "identity", "redis", "routing", "sip", "gateway"});
}

TEST_CASE("modules: a target list brings only what it needs, in declaration order", "[app]") {
  const auto specs = Specs();
  CHECK(Names(ResolveModules(specs, {"sip"})) == std::vector<std::string>{"redis", "sip"});
  CHECK(Names(ResolveModules(specs, {"identity"})) == std::vector<std::string>{"pg", "identity"});
  // The order the user types does not change the start order.
  CHECK(Names(ResolveModules(specs, {"gateway", "identity"})) ==
        Names(ResolveModules(specs, {"identity", "gateway"})));
  CHECK(Names(ResolveModules(specs, {"routing", "routing"})) ==
        std::vector<std::string>{"redis", "pg", "routing"});
}

TEST_CASE("modules: unknown targets, infrastructure as target, empty lists are errors", "[app]") {
  const auto specs = Specs();
  auto unknown = ResolveModules(specs, {"identity", "billing"});
  REQUIRE(unknown.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(unknown.status().message() ==
        "unknown target 'billing' in --target; known targets: all, identity, routing, sip, "
        "gateway");
  CHECK(ResolveModules(specs, {"pg"}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ResolveModules(specs, {}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("modules: cycles and unknown dependencies are reported", "[app]") {
  std::vector<ModuleSpec> cyclic = {
      {.name = "a", .deps = {"b"}}, {.name = "b", .deps = {"c"}}, {.name = "c", .deps = {"a"}}};
  auto cycle = ResolveModules(cyclic, {"a"});
  REQUIRE(cycle.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(cycle.status().message() == "module dependency cycle: a -> b -> c -> a");

  std::vector<ModuleSpec> dangling = {{.name = "a", .deps = {"ghost"}}};
  CHECK(ResolveModules(dangling, {"all"}).status().message() ==
        "module 'a' depends on unknown module 'ghost'");
}

}  // namespace
}  // namespace sb::app
