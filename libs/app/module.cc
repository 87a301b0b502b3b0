#include "libs/app/module.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sb::app {

std::vector<std::string> TargetNames(const std::vector<ModuleSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& spec : specs) {
    if (spec.is_target) names.push_back(spec.name);
  }
  return names;
}

absl::StatusOr<std::vector<const ModuleSpec*>> ResolveModules(
    const std::vector<ModuleSpec>& specs, const std::vector<std::string>& targets) {
  std::map<std::string, const ModuleSpec*> by_name;
  for (const auto& spec : specs) by_name[spec.name] = &spec;

  std::vector<const ModuleSpec*> roots;
  if (targets.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--target is empty; choose all or some of: ",
                                                   absl::StrJoin(TargetNames(specs), ", ")));
  }
  for (const auto& target : targets) {
    if (target == "all") {
      for (const auto& spec : specs) {
        if (spec.is_target) roots.push_back(&spec);
      }
      continue;
    }
    auto it = by_name.find(target);
    if (it == by_name.end() || !it->second->is_target) {
      return absl::InvalidArgumentError(absl::StrCat("unknown target '", target,
                                                     "' in --target; known targets: all, ",
                                                     absl::StrJoin(TargetNames(specs), ", ")));
    }
    roots.push_back(it->second);
  }

  // Depth-first visit in declaration order; "visiting" marks the current path to detect cycles.
  std::set<std::string> done;
  std::set<std::string> visiting;
  std::vector<const ModuleSpec*> order;
  std::function<absl::Status(const ModuleSpec*, std::vector<std::string>&)> visit =
      [&](const ModuleSpec* spec, std::vector<std::string>& path) -> absl::Status {
    if (done.contains(spec->name)) return absl::OkStatus();
    path.push_back(spec->name);
    if (visiting.contains(spec->name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("module dependency cycle: ", absl::StrJoin(path, " -> ")));
    }
    visiting.insert(spec->name);
    for (const auto& dep : spec->deps) {
      auto it = by_name.find(dep);
      if (it == by_name.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("module '", spec->name, "' depends on unknown module '", dep, "'"));
      }
      if (auto s = visit(it->second, path); !s.ok()) return s;
    }
    visiting.erase(spec->name);
    path.pop_back();
    done.insert(spec->name);
    order.push_back(spec);
    return absl::OkStatus();
  };
  // Visit roots in declaration order, not in the order the user typed them, so that the start
  // order is the same for `--target=a,b` and `--target=b,a`.
  std::set<const ModuleSpec*> root_set(roots.begin(), roots.end());
  for (const auto& spec : specs) {
    if (!root_set.contains(&spec)) continue;
    std::vector<std::string> path;
    if (auto s = visit(&spec, path); !s.ok()) return s;
  }
  return order;
}

}  // namespace sb::app
