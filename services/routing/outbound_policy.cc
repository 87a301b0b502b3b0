#include "services/routing/outbound_policy.h"

#include "absl/strings/str_cat.h"
#include "libs/phone/countries.h"

namespace sb::routing {

v1::OutboundPolicy DefaultOutboundPolicy(std::string_view country) {
  v1::OutboundPolicy policy;
  v1::OutboundRule* premium = policy.add_rules();
  premium->set_id("default:premium");
  premium->set_name("Premium-rate numbers");
  premium->set_action(v1::OutboundRule::ACTION_BLOCK);
  for (std::string_view p : kPremiumRatePrefixes) premium->add_prefixes(std::string(p));
  if (const phone::CountryInfo* info = phone::FindCountry(country); info != nullptr) {
    v1::OutboundRule* domestic = policy.add_rules();
    domestic->set_id("default:domestic");
    domestic->set_name("Numbers in the tenant's country");
    domestic->set_action(v1::OutboundRule::ACTION_ALLOW);
    domestic->add_prefixes(absl::StrCat("+", std::string(info->calling_code)));
  }
  v1::OutboundRule* international = policy.add_rules();
  international->set_id("default:international");
  international->set_name("Every other destination");
  international->set_action(v1::OutboundRule::ACTION_REQUIRE_PIN);
  international->add_prefixes("+");
  return policy;
}

const v1::OutboundRule* MatchOutboundRule(const v1::OutboundPolicy& policy, std::string_view e164) {
  const v1::OutboundRule* best = nullptr;
  size_t best_length = 0;
  for (const v1::OutboundRule& rule : policy.rules()) {
    for (const std::string& prefix : rule.prefixes()) {
      if (e164.substr(0, prefix.size()) == prefix &&
          (best == nullptr || prefix.size() > best_length)) {
        best = &rule;
        best_length = prefix.size();
      }
    }
  }
  return best;
}

}  // namespace sb::routing
