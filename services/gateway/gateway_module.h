#pragma once

#include "libs/app/module.h"

namespace sb::gateway {

// The `gateway` target: the HTTP/JSON API with OpenAPI, live events over WebSocket, auth cookies
// and tokens, rate limits, the console's files.
app::ModuleSpec GatewayModule();

}  // namespace sb::gateway
