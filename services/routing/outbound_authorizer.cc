#include "services/routing/outbound_authorizer.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/phone/e164.h"
#include "services/routing/outbound_policy.h"

namespace sb::routing {
namespace {

using Response = v1::AuthorizeOutboundCallResponse;

// What was dialled, with a "*<pin>*" prefix split off.
struct Dialled {
  std::string pin;
  std::string number;
};

// "*1234*0036301234567" -> {"1234", "0036301234567"}; text without the prefix is all number.
// nullopt for a "*" that does not start a well-formed prefix ("*31#...", "**123", "*1234").
std::optional<Dialled> SplitPin(const std::string& dialled) {
  if (!absl::StartsWith(dialled, "*")) return Dialled{.pin = "", .number = dialled};
  const size_t end = dialled.find('*', 1);
  if (end == std::string::npos || end == 1) return std::nullopt;
  return Dialled{.pin = dialled.substr(1, end - 1), .number = dialled.substr(end + 1)};
}

absl::int128 Nanos(const ::switchboard::common::v1::Money& m) {
  return absl::int128(m.units()) * 1000000000 + m.nanos();
}

Response Refused(Response::RefusalReason reason, Response base = {}) {
  base.set_decision(Response::DECISION_REFUSED);
  base.set_refusal_reason(reason);
  return base;
}

// The trunk outbound calls go through: the default one, else the first usable one.
const orgv1::Trunk* PickTrunk(const std::vector<orgv1::Trunk>& trunks) {
  const orgv1::Trunk* first = nullptr;
  for (const orgv1::Trunk& t : trunks) {
    if (!t.outbound_enabled() || t.outbound_host().empty()) continue;
    if (t.default_outbound()) return &t;
    if (first == nullptr) first = &t;
  }
  return first;
}

}  // namespace

absl::StatusOr<Response> OutboundAuthorizer::Authorize(
    const v1::AuthorizeOutboundCallRequest& request) const {
  if (!IsUuid(request.tenant_id())) {
    return app::FieldError("tenant_id", request.tenant_id().empty() ? "REQUIRED" : "NOT_UUID",
                           "must be a UUID");
  }
  if (!IsUuid(request.user_id())) {
    return app::FieldError("user_id", request.user_id().empty() ? "REQUIRED" : "NOT_UUID",
                           "must be a UUID");
  }
  if (!request.call_id().empty() && !IsUuid(request.call_id())) {
    return app::FieldError("call_id", "NOT_UUID", "must be a UUID");
  }
  // The messages never echo dialled or pin: either may hold a PIN.
  if (request.dialled().empty()) return app::FieldError("dialled", "REQUIRED", "is required");
  if (request.dialled().size() > 64) {
    return app::FieldError("dialled", "TOO_LONG", "must be at most 64 characters");
  }
  if (request.pin().size() > 32) {
    return app::FieldError("pin", "TOO_LONG", "must be at most 32 characters");
  }
  const std::string tenant = absl::AsciiStrToLower(request.tenant_id());
  const std::string user = absl::AsciiStrToLower(request.user_id());

  // 1. The number.
  const std::optional<Dialled> dialled = SplitPin(request.dialled());
  if (!dialled) return Refused(Response::REFUSAL_REASON_INVALID_NUMBER);
  SB_ASSIGN_OR_RETURN(const std::string country, directory_.TenantCountry(tenant));
  absl::StatusOr<std::string> e164 = phone::NormalizeE164(dialled->number, country, "dialled");
  if (!e164.ok()) return Refused(Response::REFUSAL_REASON_INVALID_NUMBER);
  Response out;
  out.set_destination_number(*e164);

  // 2. The agent.
  absl::StatusOr<orgv1::AgentProfile> profile = directory_.AgentProfile(tenant, user);
  if (absl::IsNotFound(profile.status())) {
    return Refused(Response::REFUSAL_REASON_USER_NOT_ALLOWED, out);
  }
  SB_RETURN_IF_ERROR(profile.status());
  if (!profile->outbound_enabled()) return Refused(Response::REFUSAL_REASON_USER_NOT_ALLOWED, out);

  // 3. The destination. Issue #7 reads the tenant's RoutingSettings.outbound here.
  const v1::OutboundPolicy policy = DefaultOutboundPolicy(country);
  const v1::OutboundRule* rule = MatchOutboundRule(policy, *e164);
  if (rule == nullptr) return Refused(Response::REFUSAL_REASON_DESTINATION_NOT_ALLOWED, out);
  out.set_matched_rule_id(rule->id());
  if (rule->action() == v1::OutboundRule::ACTION_BLOCK) {
    return Refused(Response::REFUSAL_REASON_DESTINATION_BLOCKED, out);
  }
  if (rule->action() != v1::OutboundRule::ACTION_ALLOW &&
      rule->action() != v1::OutboundRule::ACTION_REQUIRE_PIN) {
    return Refused(Response::REFUSAL_REASON_DESTINATION_NOT_ALLOWED, out);
  }

  // 4. The wallet: what the tenant may still spend (balance plus how far below zero it may go).
  SB_ASSIGN_OR_RETURN(const orgv1::Wallet wallet, directory_.Wallet(tenant));
  if (Nanos(wallet.balance()) + Nanos(wallet.credit_limit()) <= 0) {
    return Refused(Response::REFUSAL_REASON_INSUFFICIENT_FUNDS, out);
  }

  // 5. The trunk and the caller id it shows.
  SB_ASSIGN_OR_RETURN(const std::vector<orgv1::Trunk> trunks, directory_.Trunks(tenant));
  const orgv1::Trunk* trunk = PickTrunk(trunks);
  if (trunk == nullptr) return Refused(Response::REFUSAL_REASON_NO_TRUNK, out);
  out.set_trunk_id(trunk->id());
  switch (trunk->caller_id_mode()) {
    case orgv1::CALLER_ID_MODE_FIXED:
      out.set_caller_id_number(trunk->fixed_caller_id());
      break;
    case orgv1::CALLER_ID_MODE_ANONYMOUS:
      break;
    default:
      if (!profile->outbound_caller_id().empty()) {
        out.set_caller_id_number(profile->outbound_caller_id());
        break;
      }
      SB_ASSIGN_OR_RETURN(const std::vector<orgv1::Number> numbers,
                          directory_.NumbersOnTrunk(tenant, trunk->id()));
      for (const orgv1::Number& n : numbers) {
        if (n.enabled()) {
          out.set_caller_id_number(n.number());
          break;
        }
      }
      if (out.caller_id_number().empty()) out.set_caller_id_number(trunk->fixed_caller_id());
      break;
  }

  // 6. The PIN.
  if (rule->action() == v1::OutboundRule::ACTION_REQUIRE_PIN) {
    const std::string& pin = request.pin().empty() ? dialled->pin : request.pin();
    if (pin.empty()) {
      out.set_decision(Response::DECISION_PIN_REQUIRED);
      return out;
    }
    absl::StatusOr<bool> valid = directory_.VerifyPin(tenant, user, pin, request.call_id());
    if (absl::IsResourceExhausted(valid.status())) {
      return Refused(Response::REFUSAL_REASON_PIN_THROTTLED, out);
    }
    SB_RETURN_IF_ERROR(valid.status());
    if (!*valid) return Refused(Response::REFUSAL_REASON_PIN_INVALID, out);
  }
  out.set_decision(Response::DECISION_ALLOWED);
  spdlog::debug("outbound call allowed to {} through trunk {} (rule {})", out.destination_number(),
                out.trunk_id(), out.matched_rule_id());
  return out;
}

}  // namespace sb::routing
