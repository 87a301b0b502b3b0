#pragma once

// OutboundAuthorizer decides whether an agent may call an external number now
// (RoutingService.AuthorizeOutboundCall, and RouteCall for calls dialled on a phone).
//
// The checks, in order; the first that fails decides (a refusal is an answer, not an error):
//   1. the dialled text: "*<pin>*<number>" has its PIN split off (the request's `pin` field wins
//      when set); the number is read as E.164 with the tenant's default country (libs/phone)
//      -> REFUSED INVALID_NUMBER;
//   2. the agent: an agent profile with outbound_enabled -> REFUSED USER_NOT_ALLOWED;
//   3. the destination: the outbound policy's longest matching prefix (outbound_policy.h; the
//      built-in default until issue #7 makes it editable) -> BLOCK: REFUSED DESTINATION_BLOCKED,
//      no rule: REFUSED DESTINATION_NOT_ALLOWED;
//   4. the wallet (org): balance + credit limit must be above zero -> REFUSED INSUFFICIENT_FUNDS;
//   5. the trunk (org): the tenant's default outbound trunk, else its first trunk (by name) with
//      outbound enabled and a gateway host -> REFUSED NO_TRUNK;
//   6. the PIN, only when the matched rule is REQUIRE_PIN (last, so that nobody types a PIN for a
//      call that would be refused anyway): none given -> PIN_REQUIRED; identity's VerifyPin says
//      wrong -> REFUSED PIN_INVALID, throttled -> REFUSED PIN_THROTTLED.
// ALLOWED carries the E.164 destination without the PIN, the trunk and the caller id: by the
// trunk's CallerIdMode — FIXED: the trunk's fixed_caller_id; ANONYMOUS: "" (sip withholds it);
// otherwise (TENANT_NUMBER, and PASS_THROUGH, which has no original caller on an agent's own call)
// the agent's outbound_caller_id, else the first enabled tenant number on that trunk, else the
// trunk's fixed_caller_id. max_duration stays 0 (no limit) until calls are rated (issue #8).
//
// PINs are never logged, nor put into messages. Thread-safe (stateless over the Directory).

#include "absl/status/statusor.h"
#include "services/routing/directory.h"
#include "switchboard/routing/v1/call_routing.pb.h"

namespace sb::routing {

namespace v1 = ::switchboard::routing::v1;

class OutboundAuthorizer {
 public:
  explicit OutboundAuthorizer(Directory& directory) : directory_(directory) {}

  // InvalidArgument naming the field for a malformed request (tenant_id, user_id: UUIDs; call_id:
  // empty or a UUID; dialled: 1..64 characters; pin: at most 32); Unavailable / Internal / NotFound
  // (tenant) from the Directory.
  absl::StatusOr<v1::AuthorizeOutboundCallResponse> Authorize(
      const v1::AuthorizeOutboundCallRequest& request) const;

 private:
  Directory& directory_;
};

}  // namespace sb::routing
