#pragma once

#include "libs/app/module.h"

namespace sb::reporting {

// The `reporting` target: CDRs from the call event stream, call lists, statistics, dashboards,
// reports, CSV export, cost rating.
app::ModuleSpec ReportingModule();

}  // namespace sb::reporting
