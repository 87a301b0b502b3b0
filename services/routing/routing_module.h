#pragma once

#include "libs/app/module.h"

namespace sb::routing {

// The `routing` target: call flows and IVR, queues and ACD, agent states, outbound authorisation.
app::ModuleSpec RoutingModule();

}  // namespace sb::routing
