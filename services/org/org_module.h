#pragma once

#include "libs/app/module.h"

namespace sb::org {

// The `org` target: the org-unit tree, teams, reporting managers, projects, agent profiles,
// working-hour schedules, numbers (DIDs) and trunks, contacts, the tenant wallet.
app::ModuleSpec OrgModule();

}  // namespace sb::org
