#pragma once

// CallRouter: the first, stateless form of routing's side of the sip <-> routing conversation
// (proto/switchboard/routing/v1/call_routing.proto). Issue #7 makes routing stateful: call flows
// and IVR, queues with an ACD that reserves agents atomically in Redis, agent states, and the
// per-call state behind ReportCallEvent and StreamCallInstructions; until then each answer is
// computed from org's data alone and nothing is remembered between RPCs.
//
// RouteCall answers with instruction sequence 1:
//
//   From a trunk (origin.trunk: tenant_id, did; number_id and trunk_id optional):
//     number unknown, disabled or another tenant's      reject 404 UNALLOCATED_NUMBER
//     number's schedule CLOSED or HOLIDAY at received_at reject 480 AFTER_HOURS "AFTER_HOURS"
//     no project, nobody selected it, nobody ringable    reject 480 USER_UNAVAILABLE "NO_AGENTS"
//     otherwise, INBOUND: a hunt ring plan — one step per agent who selected the number's
//     project, in org's order (primary selectors first, then by how long they have been
//     selecting), each step ringing the agent per their incoming-call preference
//     (ring_plans.h), mobiles through the number's trunk (else the origin's trunk). Caller id =
//     from_number; caller_id_name = the contact's name, else from_display_name. Attributes:
//     tenant_id, project_id, caller_name (OrgService.LookupContacts, best effort).
//
//   From an agent's phone (origin.phone: tenant_id, user_id, extension):
//     dialled is one of the tenant's extensions:
//       the caller's own                                 reject 486 USER_BUSY "OWN_EXTENSION"
//       another agent's, INTERNAL: one step ringing that extension only (never the agent's
//       mobile: a colleague's call is not worth a trunk call), 30 s; caller id = the caller's
//       extension.
//     anything else, OUTBOUND: OutboundAuthorizer (source PHONE) decides:
//       ALLOWED: one step with one ExternalDestination {destination, trunk, caller id}, 60 s,
//                attributes.max_duration from the decision;
//       REFUSED INVALID_NUMBER                           reject 404 UNALLOCATED_NUMBER
//                                                        "INVALID_NUMBER"
//       other refusals, PIN_REQUIRED (no IVR to collect a PIN until issue #7)
//                                                        reject 403 FORBIDDEN "<reason>", e.g.
//                                                        "PIN_INVALID", "PIN_REQUIRED"
//
// ReportCallEvent: ring_plan_failed -> the next instruction (sequence instruction_sequence + 1)
// rejects the call with what the results say: every target busy (486/600) -> 486 USER_BUSY;
// every target declined (603) -> 603 CALL_REJECTED; every target unknown (404/484/604) -> 404
// UNALLOCATED_NUMBER; any target that rang out (timeout, 408, NO_ANSWER) -> 480 NO_ANSWER;
// otherwise (nobody registered, mixed failures) -> 480 USER_UNAVAILABLE. transfer_requested (a
// blind transfer; tenant_id required) -> a ring plan for the target as if the transferring agent
// had dialled it (extension, user's extension, or a number through outbound authorisation; a
// refusal comes back as a reject); queues and flows are UNIMPLEMENTED until issue #7. Every other
// event: nothing to do (empty response).
//
// Errors: InvalidArgument naming the field (call_id, origin, dialled, trunk.tenant_id, ...);
// Unavailable when org or identity cannot answer (sip answers 503); Internal for a deployment
// fault (service credential refused). Thread-safe.

#include "absl/status/statusor.h"
#include "libs/common/clock.h"
#include "services/routing/directory.h"
#include "services/routing/outbound_authorizer.h"
#include "switchboard/routing/v1/call_routing.pb.h"

namespace sb::routing {

struct RouterOptions {
  // How long each agent of an inbound hunt rings (plus the mobile delay).
  absl::Duration agent_ring_timeout = absl::Seconds(20);
  // Internal calls between extensions.
  absl::Duration internal_ring_timeout = absl::Seconds(30);
  // Outbound calls to external numbers.
  absl::Duration outbound_ring_timeout = absl::Seconds(60);
  // Agents in one hunt plan, at most.
  int max_hunt_agents = 100;
};

class CallRouter {
 public:
  CallRouter(Directory& directory, const OutboundAuthorizer& outbound, const Clock& clock,
             RouterOptions options = {});

  absl::StatusOr<v1::RouteCallResponse> RouteCall(const v1::RouteCallRequest& request) const;
  absl::StatusOr<v1::ReportCallEventResponse> ReportCallEvent(
      const v1::ReportCallEventRequest& request) const;
  // transfer_requested: the plan that rings the transfer target (see call_router.cc).
  absl::StatusOr<v1::ReportCallEventResponse> Transfer(
      const v1::ReportCallEventRequest& request) const;

 private:
  // Sets the instruction's record and recording_retention from the policy (Directory::Recording).
  void ApplyRecordingRule(v1::RouteCallResponse& routed) const;
  absl::StatusOr<v1::RouteCallResponse> FromTrunk(const v1::RouteCallRequest& request) const;
  absl::StatusOr<v1::RouteCallResponse> FromPhone(const v1::RouteCallRequest& request) const;
  absl::StatusOr<v1::RouteCallResponse> Outbound(const v1::RouteCallRequest& request,
                                                 const std::string& tenant,
                                                 const std::string& user) const;

  Directory& directory_;
  const OutboundAuthorizer& outbound_;
  const Clock& clock_;
  const RouterOptions options_;
};

}  // namespace sb::routing
