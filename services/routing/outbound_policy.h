#pragma once

// The outbound policy that decides which destinations a tenant's agents may call: a list of
// prefix rules where the longest matching prefix decides (RoutingSettings.outbound, issue #7).
//
// Until issue #7 lets tenants edit it, every tenant gets the built-in DefaultOutboundPolicy:
//
//   rule id                  prefixes                                 action
//   default:premium          see kPremiumRatePrefixes below            BLOCK
//   default:domestic         "+<calling code of the tenant's country>" ALLOW
//   default:international    "+" (everything else)                     REQUIRE_PIN
//
// A tenant without a default country (or with one whose numbering libs/phone does not know) has
// no domestic rule: every destination but the blocked ones needs a PIN.
// Pure functions; thread-safe.

#include <string_view>

#include "switchboard/routing/v1/routing_resources.pb.h"

namespace sb::routing {

namespace v1 = ::switchboard::routing::v1;

// Premium-rate and high-fraud ranges that the default policy blocks outright. Deliberately small:
// only ranges that are premium-rate (or international-revenue-share fraud targets) as a whole.
//   +881, +882, +883  global satellite and international networks (GMSS, Iridium, Thuraya, ...)
//   +979              International Premium Rate Service (ITU-T E.169.2)
//   +1900             NANP premium-rate (1-900)
//   +4490 +4491 +4498 UK premium-rate (090, 091, 098)
//   +49900            Germany premium-rate (0900)
//   +3690             Hungary premium-rate (06 90)
//   +3389             France special-rate (089x)
inline constexpr std::string_view kPremiumRatePrefixes[] = {
    "+881", "+882", "+883", "+979", "+1900", "+4490", "+4491", "+4498", "+49900", "+3690", "+3389"};

// The built-in policy for a tenant whose default country is `country` (ISO alpha-2, may be "").
v1::OutboundPolicy DefaultOutboundPolicy(std::string_view country);

// The rule whose prefix is the longest one that `e164` starts with; nullptr when none matches
// (the call is then not allowed). The policy must outlive the returned pointer.
const v1::OutboundRule* MatchOutboundRule(const v1::OutboundPolicy& policy, std::string_view e164);

}  // namespace sb::routing
