#pragma once

#include "libs/app/module.h"

namespace sb::identity {

// The `identity` target: tenants, users, credentials, roles and permissions, sessions and tokens,
// TOTP 2FA, outbound-call PINs, API keys, the audit log.
app::ModuleSpec IdentityModule();

}  // namespace sb::identity
