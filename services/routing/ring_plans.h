#pragma once

// Building blocks of the instructions routing gives sip: an agent's ring step following their
// incoming-call preference, rejections, durations. Pure functions; thread-safe.

#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/duration.pb.h>

#include "absl/time/time.h"
#include "switchboard/org/v1/org_resources.pb.h"
#include "switchboard/routing/v1/call_routing.pb.h"

namespace sb::routing {

namespace v1 = ::switchboard::routing::v1;
namespace orgv1 = ::switchboard::org::v1;
namespace cv1 = ::switchboard::common::v1;

// How long an agent's phones ring before the hunt moves on; agent profiles have no ring timeout
// of their own yet (issue #7 adds queue and per-agent ones).
inline constexpr absl::Duration kDefaultAgentRingTimeout = absl::Seconds(20);
// EXTENSION_THEN_MOBILE when a profile stores no mobile delay (org's default).
inline constexpr absl::Duration kDefaultMobileDelay = absl::Seconds(15);

// The steps that ring one agent, following their IncomingCallPreference:
//   SIMULTANEOUS           one step: extension and mobile at once; timeout `ring_timeout`
//   EXTENSION_THEN_MOBILE  two steps: the extension for the profile's mobile_delay, then the
//                          mobile for `ring_timeout` (the extension stops)
//   EXTENSION_ONLY         one step: the extension (also for UNSPECIFIED); `ring_timeout`
//   MOBILE_ONLY            one step: the mobile; `ring_timeout`
// Targets are "<user_id>:ext" (the extension's registered contacts) and "<user_id>:mobile"
// (ExternalDestination {the profile's mobile phone, `trunk_id`}), with agent_user_id set. A mobile
// needs a trunk: without `trunk_id` (or without a mobile phone) the mobile target is left out and
// a MOBILE_ONLY agent rings on the extension instead, so that a call is never dropped for an
// inconsistent profile; EXTENSION_THEN_MOBILE with only one of them rings it as one step. Empty
// when nothing of the agent can ring.
std::vector<v1::RingStep> AgentRingSteps(const orgv1::AgentProfile& agent,
                                         const std::string& trunk_id,
                                         absl::Duration ring_timeout = kDefaultAgentRingTimeout);

// The profile's mobile phone (AgentPhone.mobile), "" when it has none.
std::string MobileNumber(const orgv1::AgentProfile& agent);

// A Reject action.
v1::Reject MakeReject(int sip_code, cv1::HangupCause cause, std::string reason);

// "USER_BUSY" for HANGUP_CAUSE_USER_BUSY: the enum value's name without its prefix.
std::string CauseName(cv1::HangupCause cause);

google::protobuf::Duration ToDurationProto(absl::Duration d);
absl::Duration FromDurationProto(const google::protobuf::Duration& d);

}  // namespace sb::routing
