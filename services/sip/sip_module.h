#pragma once

#include "libs/app/module.h"

namespace sb::sip {

// The `sip` target: the SIP edge and B2BUA on sofia-sip: registrar, inbound calls, forking,
// transfer, outbound calls, overload control.
app::ModuleSpec SipModule();

}  // namespace sb::sip
