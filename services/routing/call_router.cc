#include "services/routing/call_router.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "libs/phone/e164.h"
#include "services/routing/ring_plans.h"

namespace sb::routing {
namespace {

using Decision = v1::AuthorizeOutboundCallResponse;

// InvalidArgument naming `field` unless `value` is a UUID (or empty, when `optional`).
absl::Status RequireUuid(const std::string& value, std::string_view field, bool optional = false) {
  if (value.empty()) {
    if (optional) return absl::OkStatus();
    return app::FieldError(field, "REQUIRED", "is required");
  }
  if (!IsUuid(value)) return app::FieldError(field, "NOT_UUID", "must be a UUID");
  return absl::OkStatus();
}

// The first instruction of a call: sequence 1.
v1::RouteCallResponse Answer(const v1::RouteCallRequest& request, cv1::CallDirection direction) {
  v1::RouteCallResponse out;
  out.set_direction(direction);
  out.mutable_instruction()->set_call_id(absl::AsciiStrToLower(request.call_id()));
  out.mutable_instruction()->set_sequence(1);
  return out;
}

v1::RouteCallResponse Rejected(v1::RouteCallResponse out, int sip_code, cv1::HangupCause cause,
                               std::string reason) {
  *out.mutable_instruction()->mutable_reject() = MakeReject(sip_code, cause, std::move(reason));
  return out;
}

bool IsExtensionLike(const std::string& text) {
  return !text.empty() && text.size() <= 8 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "PIN_INVALID" for REFUSAL_REASON_PIN_INVALID.
std::string RefusalName(Decision::RefusalReason reason) {
  std::string name = Decision::RefusalReason_Name(reason);
  constexpr std::string_view kPrefix = "REFUSAL_REASON_";
  if (std::string_view(name).substr(0, kPrefix.size()) == kPrefix) name.erase(0, kPrefix.size());
  return name;
}

}  // namespace

CallRouter::CallRouter(Directory& directory, const OutboundAuthorizer& outbound, const Clock& clock,
                       RouterOptions options)
    : directory_(directory), outbound_(outbound), clock_(clock), options_(options) {}

absl::StatusOr<v1::RouteCallResponse> CallRouter::RouteCall(
    const v1::RouteCallRequest& request) const {
  SB_RETURN_IF_ERROR(RequireUuid(request.call_id(), "call_id"));
  if (request.dialled().empty()) return app::FieldError("dialled", "REQUIRED", "is required");
  if (request.has_received_at() &&
      (request.received_at().nanos() < 0 || request.received_at().nanos() > 999999999)) {
    return app::FieldError("received_at", "INVALID_TIMESTAMP", "nanos must be 0..999999999");
  }
  absl::StatusOr<v1::RouteCallResponse> routed;
  switch (request.origin_case()) {
    case v1::RouteCallRequest::kTrunk:
      routed = FromTrunk(request);
      break;
    case v1::RouteCallRequest::kPhone:
      routed = FromPhone(request);
      break;
    case v1::RouteCallRequest::ORIGIN_NOT_SET:
      return app::FieldError("origin", "REQUIRED", "set trunk or phone");
  }
  if (routed.ok() && routed->instruction().has_ring()) ApplyRecordingRule(*routed);
  return routed;
}

void CallRouter::ApplyRecordingRule(v1::RouteCallResponse& routed) const {
  v1::CallAttributes& attributes = *routed.mutable_instruction()->mutable_attributes();
  if (attributes.tenant_id().empty()) return;
  absl::StatusOr<Directory::RecordingRule> rule =
      directory_.Recording(attributes.tenant_id(), attributes.project_id());
  if (!rule.ok()) {
    // The call goes on unrecorded rather than not at all; the log says why.
    spdlog::warn(
        "routing: the recording policy of tenant {} (project {}) is unknown: {}; the "
        "call is not recorded",
        attributes.tenant_id(), attributes.project_id(), std::string(rule.status().message()));
    return;
  }
  attributes.set_record(rule->record);
  if (rule->record && rule->retention_days > 0) {
    attributes.mutable_recording_retention()->set_seconds(int64_t{rule->retention_days} * 86400);
  }
}

absl::StatusOr<v1::RouteCallResponse> CallRouter::FromTrunk(
    const v1::RouteCallRequest& request) const {
  const v1::TrunkOrigin& origin = request.trunk();
  SB_RETURN_IF_ERROR(RequireUuid(origin.tenant_id(), "trunk.tenant_id"));
  SB_RETURN_IF_ERROR(RequireUuid(origin.number_id(), "trunk.number_id", /*optional=*/true));
  SB_RETURN_IF_ERROR(RequireUuid(origin.trunk_id(), "trunk.trunk_id", /*optional=*/true));
  if (origin.did().empty()) return app::FieldError("trunk.did", "REQUIRED", "is required");
  const std::string tenant = absl::AsciiStrToLower(origin.tenant_id());
  v1::RouteCallResponse out = Answer(request, cv1::CALL_DIRECTION_INBOUND);

  // The number: one of this tenant's, enabled. sip matched it already (MatchInboundTrunk); asking
  // again costs one indexed read and catches a number disabled or moved since sip's cache (the
  // directory may keep the answer too, for a shorter time: --routing_number_cache_ttl).
  if (!phone::IsE164(origin.did())) {
    return Rejected(out, 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER, "UNALLOCATED_NUMBER");
  }
  absl::StatusOr<orgv1::Number> number = directory_.ResolveNumber(origin.did());
  if (absl::IsNotFound(number.status())) {
    return Rejected(out, 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER, "UNALLOCATED_NUMBER");
  }
  SB_RETURN_IF_ERROR(number.status());
  if (number->tenant_id() != tenant) {
    spdlog::warn("number {} belongs to another tenant than the call's trunk; refused",
                 origin.did());
    return Rejected(out, 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER, "UNALLOCATED_NUMBER");
  }
  v1::CallAttributes& attributes = *out.mutable_instruction()->mutable_attributes();
  attributes.set_tenant_id(tenant);
  attributes.set_project_id(number->project_id());

  // Working hours.
  if (!number->schedule_id().empty()) {
    const absl::Time at =
        request.has_received_at() ? pg::FromProto(request.received_at()) : clock_.Now();
    absl::StatusOr<orgv1::ScheduleStatus> status =
        directory_.EvaluateSchedule(tenant, number->schedule_id(), at);
    if (absl::IsNotFound(status.status())) {
      // Org refuses to delete attached schedules; if one vanished anyway, take the call.
      spdlog::warn("schedule {} of number {} not found; treated as open", number->schedule_id(),
                   number->number());
    } else {
      SB_RETURN_IF_ERROR(status.status());
      if (*status == orgv1::SCHEDULE_STATUS_CLOSED || *status == orgv1::SCHEDULE_STATUS_HOLIDAY) {
        return Rejected(std::move(out), 480, cv1::HANGUP_CAUSE_AFTER_HOURS, "AFTER_HOURS");
      }
    }
  }

  // The agents: those who selected the project, in org's order.
  auto no_agents = [&out] {
    return Rejected(std::move(out), 480, cv1::HANGUP_CAUSE_USER_UNAVAILABLE, "NO_AGENTS");
  };
  if (number->project_id().empty()) return no_agents();
  absl::StatusOr<std::vector<orgv1::ProjectSelection>> selections =
      directory_.ProjectSelections(tenant, number->project_id(), options_.max_hunt_agents);
  if (absl::IsNotFound(selections.status())) return no_agents();
  SB_RETURN_IF_ERROR(selections.status());
  std::vector<std::string> users;
  absl::flat_hash_set<std::string> seen;
  for (const orgv1::ProjectSelection& s : *selections) {
    if (static_cast<int>(users.size()) >= options_.max_hunt_agents) break;
    if (seen.insert(s.user_id()).second) users.push_back(s.user_id());
  }
  if (users.empty()) return no_agents();
  SB_ASSIGN_OR_RETURN(const std::vector<orgv1::AgentProfile> profiles,
                      directory_.AgentProfiles(tenant, users));
  absl::flat_hash_map<std::string, const orgv1::AgentProfile*> by_user;
  for (const orgv1::AgentProfile& p : profiles) by_user[p.user_id()] = &p;

  const std::string trunk_id =
      number->trunk_id().empty() ? absl::AsciiStrToLower(origin.trunk_id()) : number->trunk_id();
  v1::RingPlan plan;
  for (const std::string& user : users) {
    auto it = by_user.find(user);
    if (it == by_user.end()) continue;  // selected, but no agent profile (any more)
    for (v1::RingStep& step : AgentRingSteps(*it->second, trunk_id, options_.agent_ring_timeout)) {
      *plan.add_steps() = std::move(step);
    }
  }
  if (plan.steps().empty()) return no_agents();

  // The caller's name, best effort: a failed lookup never fails the call.
  std::string caller_name;
  if (!request.from_number().empty()) {
    absl::StatusOr<std::string> name = directory_.CallerName(tenant, request.from_number());
    if (name.ok()) {
      caller_name = *std::move(name);
    } else if (!absl::IsInvalidArgument(name.status())) {
      spdlog::info("caller name lookup failed: {}", name.status().ToString());
    }
  }
  attributes.set_caller_name(caller_name);
  plan.set_caller_id_number(request.from_number());
  plan.set_caller_id_name(caller_name.empty() ? request.from_display_name() : caller_name);
  *out.mutable_instruction()->mutable_ring() = std::move(plan);
  return out;
}

absl::StatusOr<v1::RouteCallResponse> CallRouter::FromPhone(
    const v1::RouteCallRequest& request) const {
  const v1::PhoneOrigin& origin = request.phone();
  SB_RETURN_IF_ERROR(RequireUuid(origin.tenant_id(), "phone.tenant_id"));
  SB_RETURN_IF_ERROR(RequireUuid(origin.user_id(), "phone.user_id"));
  const std::string tenant = absl::AsciiStrToLower(origin.tenant_id());
  const std::string user = absl::AsciiStrToLower(origin.user_id());

  if (IsExtensionLike(request.dialled())) {
    absl::StatusOr<orgv1::AgentProfile> callee =
        directory_.LookupExtension(tenant, request.dialled());
    if (callee.ok()) {
      v1::RouteCallResponse out = Answer(request, cv1::CALL_DIRECTION_INTERNAL);
      out.mutable_instruction()->mutable_attributes()->set_tenant_id(tenant);
      if (callee->user_id() == user) {
        // Calling yourself: the phone that would ring is the one dialling.
        return Rejected(std::move(out), 486, cv1::HANGUP_CAUSE_USER_BUSY, "OWN_EXTENSION");
      }
      v1::RingPlan& plan = *out.mutable_instruction()->mutable_ring();
      v1::RingStep& step = *plan.add_steps();
      v1::RingTarget& target = *step.add_targets();
      target.set_target_id(absl::StrCat(callee->user_id(), ":ext"));
      target.set_agent_user_id(callee->user_id());
      target.set_extension(callee->extension());
      *step.mutable_timeout() = ToDurationProto(options_.internal_ring_timeout);
      plan.set_caller_id_number(origin.extension());
      plan.set_caller_id_name(request.from_display_name());
      return out;
    }
    if (!absl::IsNotFound(callee.status())) return callee.status();
    // Not an extension of the tenant: a (short) external number, decided below.
  }
  return Outbound(request, tenant, user);
}

absl::StatusOr<v1::RouteCallResponse> CallRouter::Outbound(const v1::RouteCallRequest& request,
                                                           const std::string& tenant,
                                                           const std::string& user) const {
  v1::AuthorizeOutboundCallRequest ask;
  ask.set_tenant_id(tenant);
  ask.set_user_id(user);
  ask.set_call_id(absl::AsciiStrToLower(request.call_id()));
  ask.set_source(v1::AuthorizeOutboundCallRequest::SOURCE_PHONE);
  ask.set_dialled(request.dialled());
  SB_ASSIGN_OR_RETURN(const Decision decision, outbound_.Authorize(ask));

  v1::RouteCallResponse out = Answer(request, cv1::CALL_DIRECTION_OUTBOUND);
  v1::CallAttributes& attributes = *out.mutable_instruction()->mutable_attributes();
  attributes.set_tenant_id(tenant);
  switch (decision.decision()) {
    case Decision::DECISION_ALLOWED: {
      if (decision.has_max_duration()) *attributes.mutable_max_duration() = decision.max_duration();
      v1::RingPlan& plan = *out.mutable_instruction()->mutable_ring();
      plan.set_caller_id_number(decision.caller_id_number());
      v1::RingStep& step = *plan.add_steps();
      v1::RingTarget& target = *step.add_targets();
      target.set_target_id("external");
      target.mutable_external()->set_number(decision.destination_number());
      target.mutable_external()->set_trunk_id(decision.trunk_id());
      target.mutable_external()->set_caller_id_number(decision.caller_id_number());
      *step.mutable_timeout() = ToDurationProto(options_.outbound_ring_timeout);
      return out;
    }
    case Decision::DECISION_PIN_REQUIRED:
      // Collecting the PIN by IVR needs media and call state (issue #7): refused for now.
      return Rejected(std::move(out), 403, cv1::HANGUP_CAUSE_FORBIDDEN, "PIN_REQUIRED");
    default:
      if (decision.refusal_reason() == Decision::REFUSAL_REASON_INVALID_NUMBER) {
        return Rejected(std::move(out), 404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER,
                        "INVALID_NUMBER");
      }
      return Rejected(std::move(out), 403, cv1::HANGUP_CAUSE_FORBIDDEN,
                      RefusalName(decision.refusal_reason()));
  }
}

// A blind transfer by an agent: the target is rung as if the agent had dialled it on their phone
// (an extension of the tenant rings directly; a number goes through outbound authorisation), and
// the plan replaces the call's current one.
absl::StatusOr<v1::ReportCallEventResponse> CallRouter::Transfer(
    const v1::ReportCallEventRequest& request) const {
  const v1::TransferRequested& transfer = request.transfer_requested();
  SB_RETURN_IF_ERROR(RequireUuid(request.tenant_id(), "tenant_id"));
  SB_RETURN_IF_ERROR(RequireUuid(transfer.by_user_id(), "transfer_requested.by_user_id"));
  const std::string tenant = absl::AsciiStrToLower(request.tenant_id());
  std::string dialled;
  switch (transfer.target_case()) {
    case v1::TransferRequested::kExtension:
      dialled = transfer.extension();
      break;
    case v1::TransferRequested::kNumber:
      dialled = transfer.number();
      break;
    case v1::TransferRequested::kUserId: {
      SB_RETURN_IF_ERROR(RequireUuid(transfer.user_id(), "transfer_requested.user_id"));
      SB_ASSIGN_OR_RETURN(
          std::vector<orgv1::AgentProfile> profiles,
          directory_.AgentProfiles(tenant, {absl::AsciiStrToLower(transfer.user_id())}));
      if (profiles.empty() || profiles[0].extension().empty()) {
        return app::FieldError("transfer_requested.user_id", "NOT_AN_AGENT",
                               "the user has no agent profile with an extension");
      }
      dialled = profiles[0].extension();
      break;
    }
    case v1::TransferRequested::kQueueId:
    case v1::TransferRequested::kFlowId:
      return absl::UnimplementedError("transfers to queues and call flows come with issue #7");
    case v1::TransferRequested::TARGET_NOT_SET:
      return app::FieldError("transfer_requested", "REQUIRED", "name the transfer target");
  }
  if (dialled.empty()) {
    return app::FieldError("transfer_requested", "REQUIRED", "name the transfer target");
  }
  v1::RouteCallRequest as_dialled;
  as_dialled.set_call_id(request.call_id());
  as_dialled.set_node_id(request.node_id());
  as_dialled.set_dialled(dialled);
  as_dialled.mutable_phone()->set_tenant_id(tenant);
  as_dialled.mutable_phone()->set_user_id(transfer.by_user_id());
  SB_ASSIGN_OR_RETURN(v1::RouteCallResponse routed, FromPhone(as_dialled));
  v1::ReportCallEventResponse out;
  *out.mutable_next() = std::move(*routed.mutable_instruction());
  out.mutable_next()->set_sequence(request.instruction_sequence() + 1);
  return out;
}

// Stateless until issue #7: routing keeps no per-call state yet, so it cannot check that the call
// or the sequence exists, offer the call to the next queue member, or release agents on
// CallEnded. Issue #7 makes routing stateful (queues, agent states, per-call state in Redis) and
// this becomes the heart of the call-flow engine.
absl::StatusOr<v1::ReportCallEventResponse> CallRouter::ReportCallEvent(
    const v1::ReportCallEventRequest& request) const {
  SB_RETURN_IF_ERROR(RequireUuid(request.call_id(), "call_id"));
  v1::ReportCallEventResponse out;
  switch (request.event_case()) {
    case v1::ReportCallEventRequest::EVENT_NOT_SET:
      return app::FieldError("event", "REQUIRED", "name the event");
    case v1::ReportCallEventRequest::kRingPlanFailed:
      break;
    case v1::ReportCallEventRequest::kTransferRequested:
      return Transfer(request);
    default:
      return out;
  }
  if (request.instruction_sequence() == 0) {
    return app::FieldError("instruction_sequence", "REQUIRED",
                           "ring_plan_failed answers the ring plan's instruction");
  }
  const auto& results = request.ring_plan_failed().results();
  auto all = [&](std::initializer_list<int> codes) {
    return !results.empty() && std::all_of(results.begin(), results.end(), [&](const auto& r) {
      return std::find(codes.begin(), codes.end(), r.sip_code()) != codes.end();
    });
  };
  const bool rang_out = std::any_of(results.begin(), results.end(), [](const auto& r) {
    return r.sip_code() == 0 || r.sip_code() == 408 || r.cause() == cv1::HANGUP_CAUSE_NO_ANSWER;
  });
  v1::Reject reject;
  if (all({486, 600})) {
    reject = MakeReject(486, cv1::HANGUP_CAUSE_USER_BUSY, "USER_BUSY");
  } else if (all({603})) {
    reject = MakeReject(603, cv1::HANGUP_CAUSE_CALL_REJECTED, "CALL_REJECTED");
  } else if (all({404, 484, 604})) {
    reject = MakeReject(404, cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER, "UNALLOCATED_NUMBER");
  } else if (rang_out) {
    reject = MakeReject(480, cv1::HANGUP_CAUSE_NO_ANSWER, "NO_ANSWER");
  } else {
    reject = MakeReject(480, cv1::HANGUP_CAUSE_USER_UNAVAILABLE, "USER_UNAVAILABLE");
  }
  v1::RoutingInstruction& next = *out.mutable_next();
  next.set_call_id(absl::AsciiStrToLower(request.call_id()));
  next.set_sequence(request.instruction_sequence() + 1);
  *next.mutable_reject() = std::move(reject);
  return out;
}

}  // namespace sb::routing
