#pragma once

// The call-events stream (DESIGN.md, "Data"): one Redis Stream that sip, routing, media, org and
// reporting write switchboard.common.v1.Event entries to, and that reporting (consumer group),
// the gateway (live pushes) and webhooks read. Each entry has one field, "e", holding the
// serialized Event.

#include <string>
#include <vector>

#include "switchboard/common/v1/events.pb.h"

namespace sb::events {

inline constexpr char kStreamKey[] = "sb:events";
inline constexpr char kEventField[] = "e";
// Entries kept (approximately: MAXLEN ~). At 2,000 calls/s with ~6 events each this is an hour;
// consumers that fall further behind read CDR gaps from their own checkpoint logic.
inline constexpr long kStreamMaxLen = 10'000'000;

// The XADD command that appends `event` to the stream.
std::vector<std::string> XAddCommand(const ::switchboard::common::v1::Event& event,
                                     const std::string& stream = kStreamKey);

}  // namespace sb::events
