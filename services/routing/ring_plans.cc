#include "services/routing/ring_plans.h"

#include "absl/strings/str_cat.h"

namespace sb::routing {

std::string MobileNumber(const orgv1::AgentProfile& agent) {
  for (const orgv1::AgentPhone& phone : agent.phones()) {
    if (phone.mobile() && !phone.number().empty()) return phone.number();
  }
  return "";
}

std::vector<v1::RingStep> AgentRingSteps(const orgv1::AgentProfile& agent,
                                         const std::string& trunk_id, absl::Duration ring_timeout) {
  const std::string& user = agent.user_id();
  const std::string mobile = trunk_id.empty() ? "" : MobileNumber(agent);
  const bool has_extension = !agent.extension().empty();
  const bool has_mobile = !mobile.empty();
  auto extension_target = [&](v1::RingStep& step) {
    v1::RingTarget* t = step.add_targets();
    t->set_target_id(absl::StrCat(user, ":ext"));
    t->set_agent_user_id(user);
    t->set_extension(agent.extension());
  };
  auto mobile_target = [&](v1::RingStep& step) {
    v1::RingTarget* t = step.add_targets();
    t->set_target_id(absl::StrCat(user, ":mobile"));
    t->set_agent_user_id(user);
    t->mutable_external()->set_number(mobile);
    t->mutable_external()->set_trunk_id(trunk_id);
  };
  auto one_step = [&](bool extension, bool mobile_too) {
    std::vector<v1::RingStep> steps;
    if (!extension && !mobile_too) return steps;
    v1::RingStep& step = steps.emplace_back();
    if (extension) extension_target(step);
    if (mobile_too) mobile_target(step);
    *step.mutable_timeout() = ToDurationProto(ring_timeout);
    return steps;
  };
  switch (agent.incoming_call_preference()) {
    case orgv1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS:
      return one_step(has_extension, has_mobile);
    case orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_THEN_MOBILE: {
      // Without both there is nothing to wait for: ring what there is.
      if (!has_extension || !has_mobile) return one_step(has_extension, has_mobile);
      absl::Duration delay =
          agent.has_mobile_delay() ? FromDurationProto(agent.mobile_delay()) : kDefaultMobileDelay;
      if (delay <= absl::ZeroDuration()) delay = kDefaultMobileDelay;
      // The extension alone for the delay, then the mobile alone (the extension stops, as org's
      // IncomingCallPreference says). sip moves to the mobile at once when the extension fails
      // (not registered, busy).
      std::vector<v1::RingStep> steps(2);
      extension_target(steps[0]);
      *steps[0].mutable_timeout() = ToDurationProto(delay);
      mobile_target(steps[1]);
      *steps[1].mutable_timeout() = ToDurationProto(ring_timeout);
      return steps;
    }
    case orgv1::INCOMING_CALL_PREFERENCE_MOBILE_ONLY:
      return one_step(!has_mobile && has_extension, has_mobile);
    case orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY:
    default:
      return one_step(has_extension, false);
  }
}

v1::Reject MakeReject(int sip_code, cv1::HangupCause cause, std::string reason) {
  v1::Reject r;
  r.set_sip_code(sip_code);
  r.set_cause(cause);
  r.set_reason(std::move(reason));
  return r;
}

std::string CauseName(cv1::HangupCause cause) {
  std::string name = cv1::HangupCause_Name(cause);
  constexpr std::string_view kPrefix = "HANGUP_CAUSE_";
  if (std::string_view(name).substr(0, kPrefix.size()) == kPrefix) name.erase(0, kPrefix.size());
  return name;
}

google::protobuf::Duration ToDurationProto(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

absl::Duration FromDurationProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace sb::routing
