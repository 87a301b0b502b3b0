#pragma once

#include "libs/app/module.h"

namespace sb::media {

// The `media` target: anchored RTP for every call, stereo recording, prompts, DTMF, live listen,
// recording storage.
app::ModuleSpec MediaModule();

}  // namespace sb::media
