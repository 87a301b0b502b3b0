#pragma once

#include <vector>

#include "libs/app/module.h"

namespace sb {

// Every module of the switchboard binary, infrastructure first, then the targets in the order
// they start (gateway last, so that it stops first and takes no requests for stopped services).
// This is the one place that names them all.
std::vector<app::ModuleSpec> AllModules();

}  // namespace sb
