#include "services/routing/ring_plans.h"

#include "absl/strings/str_cat.h"

namespace sb::routing {

std::string MobileNumber(const orgv1::AgentProfile& agent) {
  for (const orgv1::AgentPhone& phone : agent.phones()) {
    if (phone.mobile() && !phone.number().empty()) return phone.number();
  }
  return "";
}

std::optional<v1::RingStep> AgentRingStep(const orgv1::AgentProfile& agent,
                                          const std::string& trunk_id,
                                          absl::Duration ring_timeout) {
  const std::string& user = agent.user_id();
  const std::string mobile = trunk_id.empty() ? "" : MobileNumber(agent);
  const bool has_extension = !agent.extension().empty();
  const bool has_mobile = !mobile.empty();

  bool ring_extension = false;
  bool ring_mobile = false;
  absl::Duration mobile_delay = absl::ZeroDuration();
  switch (agent.incoming_call_preference()) {
    case orgv1::INCOMING_CALL_PREFERENCE_SIMULTANEOUS:
      ring_extension = has_extension;
      ring_mobile = has_mobile;
      break;
    case orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_THEN_MOBILE:
      ring_extension = has_extension;
      ring_mobile = has_mobile;
      // Without an extension the mobile is all there is: no point in waiting for it.
      if (ring_extension && ring_mobile) {
        mobile_delay = agent.has_mobile_delay() ? FromDurationProto(agent.mobile_delay())
                                                : kDefaultMobileDelay;
        if (mobile_delay <= absl::ZeroDuration()) mobile_delay = kDefaultMobileDelay;
      }
      break;
    case orgv1::INCOMING_CALL_PREFERENCE_MOBILE_ONLY:
      ring_mobile = has_mobile;
      ring_extension = !has_mobile && has_extension;
      break;
    case orgv1::INCOMING_CALL_PREFERENCE_EXTENSION_ONLY:
    default:
      ring_extension = has_extension;
      break;
  }
  if (!ring_extension && !ring_mobile) return std::nullopt;

  v1::RingStep step;
  if (ring_extension) {
    v1::RingTarget* t = step.add_targets();
    t->set_target_id(absl::StrCat(user, ":ext"));
    t->set_agent_user_id(user);
    t->set_extension(agent.extension());
  }
  if (ring_mobile) {
    v1::RingTarget* t = step.add_targets();
    t->set_target_id(absl::StrCat(user, ":mobile"));
    t->set_agent_user_id(user);
    t->mutable_external()->set_number(mobile);
    t->mutable_external()->set_trunk_id(trunk_id);
    if (mobile_delay > absl::ZeroDuration()) *t->mutable_delay() = ToDurationProto(mobile_delay);
  }
  *step.mutable_timeout() = ToDurationProto(ring_timeout + mobile_delay);
  return step;
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
