#include "services/sip/b2bua.h"

#include <algorithm>
#include <deque>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/common/utf8.h"
#include "libs/sip/sdp.h"
#include "spdlog/spdlog.h"

namespace sb::sip {

using google::protobuf::util::TimeUtil;

struct Branch {
  size_t step = 0;
  size_t target_index = 0;
  // What this branch rings (a copy: a transfer replaces the call's plan).
  rv1::RingTarget target;
  std::string leg_id;
  std::string label;  // extension or number rung
  bool mobile = false;
  DialogPtr dialog;
  ClientTransactionPtr invite;
  bool ringing = false;
  bool answered = false;
  bool done = false;  // final response received (or cancelled and forgotten)
  int final_code = 0;
  // Answered with an offer (a transfer target rung without SDP): waiting for the caller's answer
  // before our ACK, so retransmitted 2xx are not ACKed empty.
  bool awaiting_answer = false;
  // A transferor that hung up (or was hung up).
  bool gone = false;
  // A transferor whose transfer completed: no longer part of the call, waiting to hang up.
  bool retired = false;
  absl::Time created_at;
  // The session description of its 2xx: what to fall back to when an attended transfer fails.
  // (Updated by each offer or answer it sends later.)
  std::string sdp_type;
  std::string sdp;
  SdpOrigin origin;                         // of the descriptions we send it
  std::vector<ClientTransactionPtr> other;  // BYEs, relayed requests
  // Anchored calls: the description we last sent it, as media wrote it (before our o= line).
  std::string sdp_sent;
};

// One operation on a call's media session: `rpc` on a worker (a blocking call to media), then
// `then` on the loop with what it returned. A call's operations run one at a time, in order.
// `rpc` runs on a worker and must not touch the CallManager (it may be gone when a task queued at
// stop runs): it captures what it needs, the peers included.
struct MediaStep {
  absl::AnyInvocable<absl::StatusOr<std::string>()> rpc;
  absl::AnyInvocable<void(absl::StatusOr<std::string>)> then;
};

struct TargetState {
  bool launched = false;
  bool lookup_pending = false;
  int open_branches = 0;
  bool failed = false;
  int code = 0;
  std::unique_ptr<Timer> delay;
};

struct Call {
  std::string id;
  std::string tenant_id;
  cv1::CallDirection direction = cv1::CALL_DIRECTION_INBOUND;
  cv1::CallState state = cv1::CALL_STATE_ROUTING;
  std::string sip_call_id;
  std::string from_number;
  std::string from_display;
  std::string dialled;
  std::string did;
  std::string did_description;
  std::string number_id;
  std::string trunk_id;
  std::string project_id;
  std::string queue_id;
  std::string caller_name;
  // Calls from an agent's phone: who dialled.
  std::string caller_user_id;
  std::string caller_extension;
  // The number or extension the call is for, as shown (never with a dialled PIN).
  std::string to_number;
  std::string source_ip;
  std::string a_transport;
  absl::Time created_at;
  absl::Time answered_at;
  absl::Duration max_duration;

  ServerTransactionPtr invite;
  DialogPtr a_dialog;
  std::string a_leg_id;
  // The caller's session description: its first offer, then each it sends (RFC 3264).
  std::string offer_type;
  std::string offer;
  SdpOrigin a_origin;  // of the descriptions we send the caller
  bool provisional_sent = false;
  int a_final = 0;

  rv1::RingPlan plan;
  uint64_t sequence = 0;  // of the instruction being carried out
  size_t step = 0;
  std::vector<TargetState> targets;
  std::vector<std::unique_ptr<Branch>> branches;
  Branch* answered = nullptr;
  std::unique_ptr<Timer> step_timer;
  std::unique_ptr<Timer> max_timer;
  std::unique_ptr<Timer> linger;
  std::vector<ClientTransactionPtr> a_requests;  // BYE/relays sent to the caller
  std::vector<ServerTransactionPtr> pending_in;  // relayed requests waiting for an answer
  // Hold/resume re-INVITEs we sent that have no final response yet: until they have, another
  // INVITE on those dialogs would break RFC 3261 section 14.1 (one INVITE transaction at a time).
  int own_reinvites = 0;
  bool ended = false;
  bool lingers = false;  // ended by End(): kept for its last transactions, counted in lingering_
  // Blind transfer in progress: the agent leg that REFERred (still up, or `gone`) and whether new
  // targets are invited without SDP (their answer's offer then goes to the caller, RFC 3725).
  Branch* transferor = nullptr;
  bool delayed_offer = false;
  // The transferor REFERred (and so is told of progress by NOTIFY); one asked over gRPC is not.
  bool transferor_subscribed = false;
  bool transfer_requested = false;  // routing has not answered a blind transfer yet
  // Click-to-call: the agent's phone is the caller, rung by us (one dialog per registered
  // contact until one answers, which becomes a_dialog), and routing's plan waits for it.
  bool originated = false;
  struct Fork {
    DialogPtr dialog;
    ClientTransactionPtr invite;
    bool done = false;      // final response received, or cancelled
    bool answered = false;  // 2xx received (ACKed; BYE'd unless it became a_dialog)
  };
  std::vector<Fork> forks;
  rv1::RoutingInstruction pending_instruction;
  std::unique_ptr<Timer> originate_timer;
  // Session timer (RFC 4028) the caller asked for, with itself as the refresher: without a
  // refresh in time the call is over (a caller that vanished without BYE).
  absl::Duration session_expires;
  std::unique_ptr<Timer> session_timer;
  bool auto_answer = false;
  std::vector<std::unique_ptr<Timer>> timers;  // one-off timers that live with the call
  // Anchored media (issue #6): the call has a session on the media service (its id is the
  // call's), and the descriptions each leg gets are media's. Every branch gets the caller's offer
  // as media wrote it; the caller's description we last sent (before our o= line) is kept for
  // hold.
  bool media = false;
  // Routing's recording rule (record once answered, kept for `recording_retention`), and the
  // recording media makes of the call.
  bool record = false;
  absl::Duration recording_retention;
  std::string recording_id;
  std::string media_offer;
  std::string a_sdp_sent;
  std::deque<MediaStep> media_steps;
  bool media_busy = false;
};

namespace {

constexpr char kSdp[] = "application/sdp";

// Text from a SIP message as it may go into a protobuf string, Redis and JSON: at most `max`
// bytes, and UTF-8 (a sequence that the cut or the sender broke becomes U+FFFD).
std::string WireText(std::string_view text, size_t max) {
  return SanitizeUtf8(text.substr(0, max));
}

// The caller's number as E.164 where it looks like one (carriers send "+36..." or "36..."), else
// as received (an anonymous or alphanumeric caller id).
std::string CallerNumber(std::string_view user) {
  std::string digits;
  bool plus = false;
  for (size_t i = 0; i < user.size(); ++i) {
    const char c = user[i];
    if (c == '+' && i == 0) {
      plus = true;
    } else if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digits.push_back(c);
    } else if (c != '-' && c != ' ' && c != '(' && c != ')' && c != '.') {
      return WireText(user, 64);
    }
  }
  if (digits.empty()) return WireText(user, 64);
  if (!plus && absl::StartsWith(digits, "00")) digits = digits.substr(2);
  if (digits.size() < 7 || digits.size() > 15) return WireText(user, 64);
  return "+" + digits;
}

std::string QuoteDisplay(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  out.push_back('"');
  return out;
}

cv1::HangupCause CauseForCode(int code) {
  switch (code) {
    case 486:
    case 600:
      return cv1::HANGUP_CAUSE_USER_BUSY;
    case 408:
    case 480:
    case 487:
      return cv1::HANGUP_CAUSE_NO_ANSWER;
    case 603:
      return cv1::HANGUP_CAUSE_CALL_REJECTED;
    case 404:
      return cv1::HANGUP_CAUSE_UNALLOCATED_NUMBER;
    case 403:
      return cv1::HANGUP_CAUSE_FORBIDDEN;
    default:
      return code >= 500 ? cv1::HANGUP_CAUSE_NETWORK_FAILURE : cv1::HANGUP_CAUSE_USER_UNAVAILABLE;
  }
}

cv1::CallOutcome OutcomeFor(const Call& call, cv1::HangupCause cause) {
  if (call.answered != nullptr) return cv1::CALL_OUTCOME_ANSWERED;
  switch (cause) {
    case cv1::HANGUP_CAUSE_ORIGINATOR_CANCEL:
      return cv1::CALL_OUTCOME_MISSED;
    case cv1::HANGUP_CAUSE_USER_BUSY:
      return cv1::CALL_OUTCOME_BUSY;
    case cv1::HANGUP_CAUSE_NO_ANSWER:
    case cv1::HANGUP_CAUSE_USER_UNAVAILABLE:
      return cv1::CALL_OUTCOME_NO_ANSWER;
    case cv1::HANGUP_CAUSE_AFTER_HOURS:
      return cv1::CALL_OUTCOME_AFTER_HOURS;
    case cv1::HANGUP_CAUSE_FORBIDDEN:
    case cv1::HANGUP_CAUSE_CALL_REJECTED:
      return cv1::CALL_OUTCOME_REFUSED;
    default:
      return cv1::CALL_OUTCOME_FAILED;
  }
}

// "*1234*0036301234567" -> "0036301234567": what was dialled without the PIN prefix, for logs and
// the live state.
std::string WithoutPin(std::string_view dialled) {
  if (dialled.size() > 1 && dialled.front() == '*') {
    const size_t second = dialled.find('*', 1);
    if (second != std::string_view::npos) return std::string(dialled.substr(second + 1));
  }
  return std::string(dialled);
}

// The destination of a call as shown: the external number or extension routing chose to ring.
std::string ToNumber(const Call& call, const rv1::RoutingInstruction& instruction) {
  if (instruction.has_ring() && instruction.ring().steps_size() > 0 &&
      instruction.ring().steps(0).targets_size() > 0) {
    const auto& t = instruction.ring().steps(0).targets(0);
    if (t.has_external()) return t.external().number();
    if (!t.extension().empty()) return t.extension();
  }
  return WithoutPin(call.dialled);
}

google::protobuf::Timestamp Stamp(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

v1::ActiveCall Snapshot(const Call& call, const std::string& node_id) {
  v1::ActiveCall out;
  out.set_call_id(call.id);
  out.set_tenant_id(call.tenant_id);
  out.set_direction(call.direction);
  out.set_state(call.state);
  out.set_from_number(call.from_number);
  out.set_to_number(!call.did.empty() ? call.did : call.to_number);
  out.set_did(call.did);
  out.set_did_description(call.did_description);
  out.set_caller_name(call.caller_name);
  out.set_project_id(call.project_id);
  out.set_queue_id(call.queue_id);
  *out.mutable_created_at() = Stamp(call.created_at);
  if (call.answered != nullptr) *out.mutable_answered_at() = Stamp(call.answered_at);
  out.set_node_id(node_id);
  out.set_recording(!call.recording_id.empty() && call.media);
  out.set_recording_id(call.recording_id);
  v1::ActiveLeg* a = out.add_legs();
  a->set_leg_id(call.a_leg_id);
  if (call.caller_user_id.empty()) {
    a->set_role(cv1::LEG_ROLE_CUSTOMER);
    a->set_number(call.from_number);
    a->set_trunk_id(call.trunk_id);
  } else {
    a->set_role(cv1::LEG_ROLE_AGENT);
    a->set_user_id(call.caller_user_id);
    a->set_extension(call.caller_extension);
    out.add_agent_user_ids(call.caller_user_id);
  }
  const bool caller_up = call.answered != nullptr || (call.originated && call.a_dialog != nullptr);
  a->set_state(call.ended              ? v1::LEG_STATE_ENDED
               : caller_up             ? v1::LEG_STATE_ANSWERED
               : call.provisional_sent ? v1::LEG_STATE_RINGING
                                       : v1::LEG_STATE_CALLING);
  *a->mutable_created_at() = Stamp(call.created_at);
  if (call.answered != nullptr) *a->mutable_answered_at() = Stamp(call.answered_at);
  for (const auto& b : call.branches) {
    if ((b->done && !b->answered) || b->gone || b->retired) continue;
    const auto& target = b->target;
    v1::ActiveLeg* leg = out.add_legs();
    leg->set_leg_id(b->leg_id);
    leg->set_role(!target.agent_user_id().empty()                  ? cv1::LEG_ROLE_AGENT
                  : call.direction == cv1::CALL_DIRECTION_OUTBOUND ? cv1::LEG_ROLE_CUSTOMER
                                                                   : cv1::LEG_ROLE_EXTERNAL);
    leg->set_user_id(target.agent_user_id());
    if (target.has_external()) {
      leg->set_number(target.external().number());
      leg->set_trunk_id(target.external().trunk_id());
    } else {
      leg->set_extension(target.extension());
    }
    leg->set_mobile(b->mobile);
    leg->set_state(call.ended    ? v1::LEG_STATE_ENDED
                   : b->answered ? v1::LEG_STATE_ANSWERED
                   : b->ringing  ? v1::LEG_STATE_RINGING
                                 : v1::LEG_STATE_CALLING);
    *leg->mutable_created_at() = Stamp(b->created_at);
    if (b->answered) *leg->mutable_answered_at() = Stamp(call.answered_at);
    if (!target.agent_user_id().empty() &&
        std::find(out.agent_user_ids().begin(), out.agent_user_ids().end(),
                  target.agent_user_id()) == out.agent_user_ids().end()) {
      out.add_agent_user_ids(target.agent_user_id());
    }
  }
  return out;
}

// Who the caller is: the outside party of a trunk call, the agent of a call from a phone.
cv1::HangupParty CallerParty(const Call& call) {
  return call.caller_user_id.empty() ? cv1::HANGUP_PARTY_CUSTOMER : cv1::HANGUP_PARTY_AGENT;
}

const rv1::RingTarget& TargetOf(const Call& /*call*/, const Branch& b) { return b.target; }

// The user part of a Refer-To value ("<sip:102@acme.sip.example.com>" -> "102"), "" when none.
std::string ReferUser(std::string_view refer_to) {
  if (size_t lt = refer_to.find('<'); lt != std::string_view::npos) {
    refer_to.remove_prefix(lt + 1);
    refer_to = refer_to.substr(0, refer_to.find('>'));
  }
  if (size_t colon = refer_to.find(':'); colon != std::string_view::npos) {
    refer_to.remove_prefix(colon + 1);
  }
  const size_t at = refer_to.find('@');
  if (at == std::string_view::npos) return "";
  return std::string(refer_to.substr(0, std::min(at, refer_to.find(';'))));
}

// "abc%40host%3Bto-tag%3D1" -> "abc@host;to-tag=1" (RFC 3986 escapes in a URI header).
std::string Unescape(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() &&
        absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      auto hex = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; };
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// The dialog an attended transfer joins: the Replaces header embedded in a Refer-To URI
// (RFC 3891, RFC 5589 §7), e.g. "<sip:102@acme?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>".
struct Replaces {
  std::string call_id;
  std::string to_tag;
  std::string from_tag;
};

// Whether the Refer-To carries a Replaces header at all (then it is an attended transfer).
bool HasReplaces(std::string_view refer_to) {
  const size_t q = refer_to.find('?');
  return q != std::string_view::npos &&
         absl::StrContains(absl::AsciiStrToLower(std::string(refer_to.substr(q))), "replaces=");
}

std::optional<Replaces> ParseReplaces(std::string_view refer_to) {
  if (size_t gt = refer_to.rfind('>'); gt != std::string_view::npos) {
    refer_to = refer_to.substr(0, gt);
  }
  const size_t q = refer_to.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  const std::string headers(refer_to.substr(q + 1));
  for (absl::string_view h : absl::StrSplit(headers, '&')) {
    const size_t eq = h.find('=');
    if (eq == absl::string_view::npos || absl::AsciiStrToLower(h.substr(0, eq)) != "replaces") {
      continue;
    }
    const std::string value = Unescape(std::string(h.substr(eq + 1)));
    Replaces r;
    bool first = true;
    for (absl::string_view part : absl::StrSplit(value, ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (first) {
        r.call_id = std::string(part);
        first = false;
        continue;
      }
      const size_t e = part.find('=');
      if (e == absl::string_view::npos) continue;  // early-only
      const std::string name = absl::AsciiStrToLower(part.substr(0, e));
      if (name == "to-tag") r.to_tag = std::string(part.substr(e + 1));
      if (name == "from-tag") r.from_tag = std::string(part.substr(e + 1));
    }
    if (r.call_id.empty() || r.to_tag.empty() || r.from_tag.empty()) return std::nullopt;
    return r;
  }
  return std::nullopt;
}

// Whether `d` is the dialog Replaces names. The tags are compared as a pair in either order:
// phones disagree on whose view "to-tag" is from once a B2BUA sits between them.
bool Names(const Replaces& r, const Dialog& d) {
  if (d.call_id() != r.call_id) return false;
  const std::string local = d.local_tag();
  const std::string remote = d.remote_tag();
  return (local == r.to_tag && remote == r.from_tag) || (local == r.from_tag && remote == r.to_tag);
}

// The delta-seconds of a Session-Expires or Min-SE value ("1800;refresher=uac" -> 1800 s), or
// zero when absent or unreadable.
absl::Duration DeltaSeconds(std::string_view value) {
  int64_t seconds = 0;
  size_t i = 0;
  while (i < value.size() && value[i] == ' ') ++i;
  const size_t start = i;
  for (; i < value.size() && absl::ascii_isdigit(static_cast<unsigned char>(value[i])); ++i) {
    if (seconds > 86400 * 365) return absl::ZeroDuration();
    seconds = seconds * 10 + (value[i] - '0');
  }
  return i == start ? absl::ZeroDuration() : absl::Seconds(seconds);
}

// Whether a request lists an option tag in Supported (or Require).
bool Supports(const Message& req, std::string_view tag) {
  for (const char* name : {"Supported", "Require"}) {
    for (const std::string& v : req.headers(name)) {
      for (absl::string_view t : absl::StrSplit(v, ',')) {
        if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(t), std::string(tag))) return true;
      }
    }
  }
  return false;
}

constexpr char kSipfrag[] = "message/sipfrag;version=2.0";
// How long a transferor's phone has to hang up by itself after the final NOTIFY.
constexpr absl::Duration kTransferorGrace = absl::Seconds(2);

}  // namespace

CallManager::CallManager(Stack& stack, BoundedExecutor& executor, SipPeers& peers,
                         RegistrationStore& registrations, Registrar& registrar,
                         CallStateWriter& state, const Clock& clock, CallManagerOptions options)
    : stack_(stack),
      executor_(executor),
      peers_(peers),
      registrations_(registrations),
      registrar_(registrar),
      state_(state),
      clock_(clock),
      options_(std::move(options)),
      new_calls_(static_cast<double>(options_.max_cps), static_cast<double>(options_.max_cps)) {}

CallManager::~CallManager() { *alive_ = false; }

CallManager::CallPtr CallManager::Find(const std::string& call_id) const {
  auto it = calls_.find(call_id);
  return it == calls_.end() || it->second->ended ? nullptr : it->second;
}

// ---------------------------------------------------------------------------------------------
// A new call

void CallManager::OnInvite(ServerTransactionPtr tx) {
  const Message& req = tx->request();
  const std::string retry = absl::StrCat(absl::ToInt64Seconds(options_.retry_after));
  const bool congested = RoutingCongested();
  ++invites_total_;
  const bool full = active_calls() >= options_.max_calls;
  const bool over_rate = !full && !congested && !new_calls_.Take(clock_.Now());
  if (over_rate) rate_refused_at_ = clock_.Now();
  if (full || congested || over_rate) {
    ++invites_rejected_;
    tx->Reply(503, "Service Unavailable", {.headers = {{"Retry-After", retry}}});
    return;
  }
  if (req.to().tag.size() > 0) {
    // A re-INVITE for a dialog we do not know (RFC 3261 §12.2.2).
    tx->Reply(481);
    return;
  }
  absl::Duration session_expires;
  if (Supports(req, "timer")) {
    session_expires = DeltaSeconds(req.header("Session-Expires"));
    if (session_expires > absl::ZeroDuration() && session_expires < options_.min_session_expires) {
      // RFC 4028 §8.1: too short an interval would have us refreshing all the time.
      tx->Reply(422, "Session Interval Too Small",
                {.headers = {{"Min-SE",
                              absl::StrCat(absl::ToInt64Seconds(options_.min_session_expires))}}});
      return;
    }
  }
  tx->Reply(100);
  auto call = std::make_shared<Call>();
  call->session_expires = session_expires;
  call->id = NewUuid();
  call->created_at = clock_.Now();
  call->sip_call_id = WireText(req.call_id(), 128);
  const NameAddr from = req.from();
  call->from_number = CallerNumber(from.user);
  call->from_display = WireText(from.display, 128);
  call->dialled = WireText(req.request_user(), 64);
  call->source_ip = req.source_ip();
  call->a_transport = tx->transport();
  call->offer_type = req.content_type();
  call->offer = std::string(req.body());
  call->a_leg_id = NewUuid();
  call->invite = tx;
  call->max_duration = options_.max_call_duration;
  std::weak_ptr<Call> weak = call;
  auto dialog = Dialog::Accept(stack_, *tx, [this, weak](ServerTransactionPtr in) {
    if (auto c = weak.lock())
      OnALegRequest(c, std::move(in));
    else
      in->Reply(481);
  });
  if (!dialog.ok()) {
    tx->Reply(400, "Bad Request");
    return;
  }
  call->a_dialog = *dialog;
  tx->OnCancel([this, weak] {
    if (auto c = weak.lock()) OnCallerCancel(c);
  });
  calls_[call->id] = call;

  const std::string number = CallerNumber(call->dialled);
  rv1::RouteCallRequest route;
  route.set_call_id(call->id);
  route.set_node_id(options_.node_id);
  route.set_sip_call_id(call->sip_call_id);
  route.set_from_number(call->from_number);
  route.set_from_display_name(call->from_display);
  route.set_dialled(call->dialled);
  *route.mutable_received_at() = Stamp(call->created_at);
  route.set_media_available(false);
  for (const char* name : {"Diversion", "P-Asserted-Identity"}) {
    const std::string value = req.header(name);
    if (!value.empty()) (*route.mutable_sip_headers())[name] = WireText(value, 256);
  }
  const std::string source_ip = call->source_ip;
  const std::string call_id = call->id;
  const std::string from_host = absl::AsciiStrToLower(from.host);
  const std::string from_user = from.user;
  const std::string proxy_auth = req.proxy_authorization();
  // The caller's offer goes to media with the routing question, on the same worker: the call
  // rings with media's description at once.
  const bool anchor = options_.anchor_media && call->offer_type == kSdp && !call->offer.empty();
  std::string offer_sdp = anchor ? call->offer : "";
  const std::string a_leg_id = call->a_leg_id;
  std::weak_ptr<bool> alive = alive_;
  const bool queued = executor_.TrySubmit(
      [this, alive, call_id, source_ip, number, from_host, from_user, proxy_auth, anchor, a_leg_id,
       offer_sdp = std::move(offer_sdp), route = std::move(route)]() mutable {
        Origin origin;
        absl::StatusOr<rv1::RouteCallResponse> routed;
        // An agent's phone says who it is in From (its extension in the tenant's SIP domain) and
        // proves it with digest; anything else must come from a trunk.
        auto phone = peers_.GetSipDigest(from_host, from_user);
        if (phone.ok() || !proxy_auth.empty()) {
          Registrar::Verified verified = registrar_.Authenticate(
              proxy_auth, "INVITE", from_host, from_user, source_ip, /*proxy=*/true);
          if (!verified.digest.has_value()) {
            if (alive.expired()) return;
            stack_.Post([this, alive, call_id, refusal = std::move(verified.refusal)] {
              if (alive.expired()) return;
              Refuse(call_id, refusal);
            });
            return;
          }
          origin.phone = true;
          origin.tenant_id = verified.digest->tenant_id;
          origin.user_id = verified.digest->user_id;
          origin.extension = from_user;
          auto* p = route.mutable_phone();
          p->set_tenant_id(origin.tenant_id);
          p->set_user_id(origin.user_id);
          p->set_extension(origin.extension);
          routed = peers_.RouteCall(route);
        } else {
          auto matched = peers_.MatchInboundTrunk(source_ip, number);
          if (!matched.ok()) {
            routed = matched.status();
          } else {
            origin.match = *matched;
            origin.tenant_id = origin.match.number().tenant_id();
            auto* trunk = route.mutable_trunk();
            trunk->set_tenant_id(origin.tenant_id);
            trunk->set_trunk_id(origin.match.trunk().id());
            trunk->set_number_id(origin.match.number().id());
            trunk->set_did(origin.match.number().number());
            trunk->set_source_address(source_ip);
            routed = peers_.RouteCall(route);
          }
        }
        std::optional<absl::StatusOr<std::string>> media_offer;
        if (anchor && routed.ok() &&
            routed->instruction().action_case() == rv1::RoutingInstruction::kRing) {
          mv1::ProcessOfferRequest offer;
          offer.set_call_id(call_id);
          offer.set_tenant_id(origin.tenant_id);
          offer.set_from_tag(a_leg_id);
          offer.set_sdp(std::move(offer_sdp));
          offer.mutable_options()->set_role(origin.phone ? cv1::LEG_ROLE_AGENT
                                                         : cv1::LEG_ROLE_CUSTOMER);
          offer.mutable_options()->set_signalling_address(source_ip);
          absl::StatusOr<mv1::ProcessOfferResponse> anchored = peers_.ProcessOffer(offer);
          if (anchored.ok()) {
            media_offer = std::move(*anchored->mutable_sdp());
          } else {
            media_offer = anchored.status();
          }
        }
        if (alive.expired()) return;
        stack_.Post([this, alive, call_id, routed = std::move(routed), origin = std::move(origin),
                     media_offer = std::move(media_offer)]() mutable {
          if (!alive.expired()) {
            Routed(call_id, std::move(routed), std::move(origin), std::move(media_offer));
          }
        });
      });
  if (!queued) {
    Forget(call->id);
    ++invites_rejected_;
    tx->Reply(503, "Service Unavailable", {.headers = {{"Retry-After", retry}}});
    return;
  }
  ++routing_backlog_;
}

bool CallManager::RoutingCongested() const {
  return routing_backlog_ >= options_.max_routing_backlog ||
         (routing_backlog_ >= options_.min_routing_backlog &&
          routing_delay_ > options_.max_routing_delay);
}

v1::OverloadStatus CallManager::Overload() {
  const absl::Time now = clock_.Now();
  if (rate_since_ != absl::InfinitePast() && now - rate_since_ >= absl::Seconds(1)) {
    invite_rate_ = static_cast<double>(invites_total_ - rate_invites_) /
                   absl::ToDoubleSeconds(now - rate_since_);
  }
  if (rate_since_ == absl::InfinitePast() || now - rate_since_ >= absl::Seconds(1)) {
    rate_since_ = now;
    rate_invites_ = invites_total_;
  }
  v1::OverloadStatus out;
  out.set_node_id(options_.node_id);
  // Past --sip_max_cps the node refuses the excess and admits the rest: throttling.
  const bool near = (routing_backlog_ >= options_.min_routing_backlog &&
                     routing_delay_ > options_.max_routing_delay / 2) ||
                    now - rate_refused_at_ < absl::Seconds(1);
  const bool rejecting = active_calls() >= options_.max_calls || RoutingCongested();
  out.set_level(rejecting ? v1::OverloadStatus::LEVEL_REJECTING
                : near    ? v1::OverloadStatus::LEVEL_THROTTLING
                          : v1::OverloadStatus::LEVEL_NORMAL);
  out.set_queue_depth(static_cast<int32_t>(routing_backlog_));
  out.set_queue_capacity(static_cast<int32_t>(options_.max_routing_backlog));
  out.set_invites_per_second(invite_rate_);
  out.set_invite_limit_per_second(static_cast<double>(options_.max_cps));  // 0: none
  out.set_invites_rejected_total(static_cast<int64_t>(invites_rejected_));
  out.mutable_retry_after()->set_seconds(absl::ToInt64Seconds(options_.retry_after));
  return out;
}

void CallManager::RoutingAnswered(absl::Time since) {
  if (routing_backlog_ > 0) --routing_backlog_;
  // An exponentially weighted moving average over about the last 16 calls.
  routing_delay_ += (clock_.Now() - since - routing_delay_) / 16;
}

void CallManager::Refuse(const std::string& call_id, const SipAnswer& refusal) {
  if (auto it = calls_.find(call_id); it != calls_.end()) RoutingAnswered(it->second->created_at);
  CallPtr call = Find(call_id);
  if (call == nullptr) return;
  // Not a call yet (a digest challenge, a bad or forbidden caller): nothing is published.
  call->ended = true;
  if (refusal.drop) {
    call->invite->Discard();
  } else {
    call->invite->Reply(refusal.status, refusal.phrase, {.headers = refusal.headers});
  }
  Forget(call_id);
}

void CallManager::Routed(const std::string& call_id, absl::StatusOr<rv1::RouteCallResponse> routed,
                         Origin origin, std::optional<absl::StatusOr<std::string>> media_offer) {
  CallPtr call = Find(call_id);
  if (auto it = calls_.find(call_id); it != calls_.end()) RoutingAnswered(it->second->created_at);
  if (call == nullptr) {
    Forget(call_id);  // cancelled before we knew its tenant: nothing was published
    if (media_offer.has_value() && media_offer->ok()) {
      executor_.TrySubmit([peers = &peers_, call_id] {
        mv1::DeleteSessionRequest release;
        release.set_call_id(call_id);
        (void)peers->DeleteMediaSession(release);
      });
    }
    return;
  }
  if (media_offer.has_value() && media_offer->ok()) {
    call->media = true;
    call->media_offer = **std::move(media_offer);
  }
  const ov1::MatchInboundTrunkResponse& match = origin.match;
  if (origin.phone) {
    call->tenant_id = origin.tenant_id;
    call->caller_user_id = origin.user_id;
    call->caller_extension = origin.extension;
    call->from_number = origin.extension;
  } else if (!match.number().tenant_id().empty()) {
    call->tenant_id = match.number().tenant_id();
    call->did = match.number().number();
    call->did_description = match.number().description();
    call->number_id = match.number().id();
    call->trunk_id = match.trunk().id();
    call->project_id = match.number().project_id();
  }
  if (!routed.ok()) {
    const absl::StatusCode code = routed.status().code();
    int sip = 503;
    // Not one of our numbers, or not a number at all (NOT_E164): 404, never 503 (which invites
    // the carrier to retry).
    if (code == absl::StatusCode::kNotFound || code == absl::StatusCode::kInvalidArgument)
      sip = 404;
    if (code == absl::StatusCode::kPermissionDenied) sip = 403;
    if (call->tenant_id.empty()) {
      // Unknown number or untrusted source: refused before it became anyone's call.
      spdlog::info("sip: refusing INVITE {} from {} to {}: {} {}", call->sip_call_id,
                   call->source_ip, WithoutPin(call->dialled), sip,
                   std::string(routed.status().message()));
      ReplyOptions options;
      if (sip == 503)
        options.headers = {
            {"Retry-After", absl::StrCat(absl::ToInt64Seconds(options_.retry_after))}};
      call->ended = true;
      call->invite->Reply(sip, "", options);
      Forget(call_id);
      return;
    }
    spdlog::warn("sip: routing call {} failed: {}", call->id,
                 std::string(routed.status().message()));
    cv1::Event created = NewEvent(*call, cv1::EVENT_TYPE_CALL_CREATED);
    Publish(call, {created});
    RejectCaller(call, sip, sip == 503 ? cv1::HANGUP_CAUSE_INTERNAL_ERROR : CauseForCode(sip),
                 "ROUTING_FAILED");
    return;
  }
  call->to_number = call->did.empty() ? ToNumber(*call, routed->instruction()) : call->did;
  call->direction = routed->direction() == cv1::CALL_DIRECTION_UNSPECIFIED
                        ? cv1::CALL_DIRECTION_INBOUND
                        : routed->direction();
  const auto& attrs = routed->instruction().attributes();
  if (!attrs.caller_name().empty()) call->caller_name = attrs.caller_name();
  cv1::Event created = NewEvent(*call, cv1::EVENT_TYPE_CALL_CREATED);
  auto* c = created.mutable_call()->mutable_created();
  c->set_origin(call->caller_user_id.empty() ? cv1::CallEvent::Created::ORIGIN_TRUNK
                                             : cv1::CallEvent::Created::ORIGIN_PHONE);
  c->set_caller_user_id(call->caller_user_id);
  c->set_from_number(call->from_number);
  c->set_from_display_name(call->from_display);
  c->set_to_number(call->to_number);
  c->set_did(call->did);
  c->set_number_id(call->number_id);
  c->set_trunk_id(call->trunk_id);
  if (!call->caller_user_id.empty()) created.add_user_ids(call->caller_user_id);
  std::vector<cv1::Event> events = {created};
  if (!call->caller_name.empty()) {
    cv1::Event named = NewEvent(*call, cv1::EVENT_TYPE_CALL_CALLER_IDENTIFIED);
    named.mutable_call()->mutable_caller_identified()->set_caller_name(call->caller_name);
    named.mutable_call()->mutable_caller_identified()->set_source(
        cv1::CallEvent::CallerIdentified::SOURCE_CONTACT);
    events.push_back(named);
  }
  Publish(call, std::move(events));
  if (media_offer.has_value() && !media_offer->ok()) {
    const absl::Status& failed = media_offer->status();
    spdlog::warn("sip: call {}: media cannot anchor the caller's offer: {}", call->id,
                 std::string(failed.message()));
    const int code = MediaFailureCode(failed);
    RejectCaller(call, code,
                 code == 488 ? cv1::HANGUP_CAUSE_CALL_REJECTED : cv1::HANGUP_CAUSE_NETWORK_FAILURE,
                 code == 488 ? "MEDIA_NOT_ACCEPTABLE" : "MEDIA_UNAVAILABLE");
    return;
  }
  Apply(call, routed->instruction());
}

void CallManager::Apply(const CallPtr& call, const rv1::RoutingInstruction& instruction) {
  if (call->ended) return;
  call->sequence = instruction.sequence();
  const auto& attrs = instruction.attributes();
  if (!attrs.project_id().empty()) call->project_id = attrs.project_id();
  if (!attrs.queue_id().empty()) call->queue_id = attrs.queue_id();
  if (!attrs.caller_name().empty()) call->caller_name = attrs.caller_name();
  if (attrs.record()) {
    call->record = true;
    call->recording_retention = absl::Seconds(attrs.recording_retention().seconds());
  }
  if (attrs.has_max_duration() && attrs.max_duration().seconds() > 0) {
    call->max_duration = absl::Seconds(attrs.max_duration().seconds());
  }
  switch (instruction.action_case()) {
    case rv1::RoutingInstruction::kRing:
      if (instruction.ring().steps_size() == 0) {
        RejectCaller(call, 480, cv1::HANGUP_CAUSE_USER_UNAVAILABLE, "EMPTY_RING_PLAN");
        return;
      }
      // A new plan replaces the old one; branches of the old plan are over by now.
      call->plan = instruction.ring();
      call->branches.erase(std::remove_if(call->branches.begin(), call->branches.end(),
                                          [](const auto& b) { return b->done && !b->answered; }),
                           call->branches.end());
      StartStep(call, 0);
      return;
    case rv1::RoutingInstruction::kReject: {
      const auto& r = instruction.reject();
      const int code = r.sip_code() >= 300 && r.sip_code() <= 699 ? r.sip_code() : 480;
      RejectCaller(call, code,
                   r.cause() == cv1::HANGUP_CAUSE_UNSPECIFIED ? CauseForCode(code) : r.cause(),
                   r.reason());
      return;
    }
    case rv1::RoutingInstruction::kHangup:
      End(call, instruction.hangup().cause(), cv1::HANGUP_PARTY_SYSTEM, 0,
          instruction.hangup().reason());
      return;
    case rv1::RoutingInstruction::kMedia:
    case rv1::RoutingInstruction::kWait:
      // Prompts, digit collection and queue music need the media service (issue #6).
      RejectCaller(call, 480, cv1::HANGUP_CAUSE_INTERNAL_ERROR, "MEDIA_NOT_AVAILABLE");
      return;
    case rv1::RoutingInstruction::ACTION_NOT_SET:
      RejectCaller(call, 500, cv1::HANGUP_CAUSE_INTERNAL_ERROR, "EMPTY_INSTRUCTION");
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Ringing

void CallManager::StartStep(const CallPtr& call, size_t step) {
  call->step = step;
  call->state = cv1::CALL_STATE_RINGING;
  const rv1::RingStep& s = call->plan.steps(static_cast<int>(step));
  call->targets.clear();
  call->targets.resize(static_cast<size_t>(s.targets_size()));
  absl::Duration timeout =
      s.has_timeout() && s.timeout().seconds() > 0
          ? absl::Seconds(s.timeout().seconds()) + absl::Nanoseconds(s.timeout().nanos())
          : options_.default_step_timeout;
  std::weak_ptr<Call> weak = call;
  call->step_timer = stack_.After(timeout, [this, weak, step] {
    auto c = weak.lock();
    if (c != nullptr && !c->ended && c->step == step && c->answered == nullptr) StepOver(c);
  });
  if (s.targets_size() == 0) {
    StepOver(call);
    return;
  }
  for (int i = 0; i < s.targets_size(); ++i) {
    const auto& target = s.targets(i);
    const absl::Duration delay =
        absl::Seconds(target.delay().seconds()) + absl::Nanoseconds(target.delay().nanos());
    if (delay > absl::ZeroDuration()) {
      call->targets[static_cast<size_t>(i)].delay = stack_.After(delay, [this, weak, step, i] {
        auto c = weak.lock();
        if (c != nullptr && !c->ended && c->step == step && c->answered == nullptr &&
            !c->targets[static_cast<size_t>(i)].launched) {
          LaunchTarget(c, static_cast<size_t>(i));
        }
      });
    } else {
      LaunchTarget(call, static_cast<size_t>(i));
    }
  }
}

void CallManager::LaunchTarget(const CallPtr& call, size_t target_index) {
  TargetState& ts = call->targets[target_index];
  ts.launched = true;
  ts.lookup_pending = true;
  ts.delay.reset();
  const auto& target =
      call->plan.steps(static_cast<int>(call->step)).targets(static_cast<int>(target_index));
  const std::string tenant = call->tenant_id;
  const std::string call_id = call->id;
  const size_t step = call->step;
  std::weak_ptr<bool> alive = alive_;
  const bool queued =
      executor_.TrySubmit([this, alive, tenant, call_id, step, target_index, target]() {
        absl::StatusOr<std::vector<v1::Registration>> bindings = std::vector<v1::Registration>{};
        absl::StatusOr<ov1::Trunk> trunk = absl::NotFoundError("no trunk");
        if (target.has_external()) {
          trunk = peers_.GetTrunk(tenant, target.external().trunk_id());
        } else {
          bindings = registrations_.Lookup(tenant, target.extension(), clock_.Now());
        }
        if (alive.expired()) return;
        stack_.Post([this, alive, call_id, step, target_index, bindings = std::move(bindings),
                     trunk = std::move(trunk)]() mutable {
          if (!alive.expired()) {
            LaunchBranches(call_id, step, target_index, std::move(bindings), std::move(trunk));
          }
        });
      });
  if (!queued) {
    ts.lookup_pending = false;
    ts.failed = true;
    ts.code = 503;
    CheckStep(call);
  }
}

void CallManager::LaunchBranches(const std::string& call_id, size_t step, size_t target_index,
                                 absl::StatusOr<std::vector<v1::Registration>> bindings,
                                 absl::StatusOr<ov1::Trunk> trunk) {
  CallPtr call = Find(call_id);
  if (call == nullptr || call->step != step || call->answered != nullptr) return;
  TargetState& ts = call->targets[target_index];
  ts.lookup_pending = false;
  const auto& target =
      call->plan.steps(static_cast<int>(step)).targets(static_cast<int>(target_index));
  if (target.has_external()) {
    if (!trunk.ok() || trunk->outbound_host().empty()) {
      spdlog::warn("sip: call {}: no usable trunk {} for {}", call->id,
                   target.external().trunk_id(),
                   trunk.ok() ? "(no outbound host)" : std::string(trunk.status().message()));
      ts.failed = true;
      ts.code = 503;
      CheckStep(call);
      return;
    }
    std::string number = target.external().number();
    std::string user =
        trunk->dial_prefix() + (absl::StartsWith(number, "+") && trunk->send_national_format()
                                    ? number.substr(1)
                                    : number);
    const int port = trunk->outbound_port() > 0                       ? trunk->outbound_port()
                     : trunk->transport() == ov1::TRUNK_TRANSPORT_TLS ? 5061
                                                                      : 5060;
    std::string uri = absl::StrCat("sip:", user, "@", trunk->outbound_host(), ":", port);
    if (trunk->transport() == ov1::TRUNK_TRANSPORT_TCP) absl::StrAppend(&uri, ";transport=tcp");
    if (trunk->transport() == ov1::TRUNK_TRANSPORT_TLS) {
      uri = absl::StrCat("sips:", user, "@", trunk->outbound_host(), ":", port, ";transport=tls");
    }
    SendBranch(call, target_index, uri, "", absl::StrCat("<", uri, ">"),
               !target.agent_user_id().empty());
  } else {
    if (!bindings.ok() || bindings->empty()) {
      if (!bindings.ok()) {
        spdlog::warn("sip: call {}: cannot look up extension {}: {}", call->id, target.extension(),
                     std::string(bindings.status().message()));
      } else {
        spdlog::info("sip: call {}: extension {} has no registered contact", call->id,
                     target.extension());
      }
      ts.failed = true;
      ts.code = 480;
      CheckStep(call);
      return;
    }
    // Contacts that stopped answering keepalives are left out, unless no other is left.
    const bool some_reachable =
        std::any_of(bindings->begin(), bindings->end(),
                    [](const v1::Registration& r) { return r.reachable(); });
    for (const v1::Registration& r : *bindings) {
      if (some_reachable && !r.reachable()) continue;
      SendBranch(call, target_index, r.contact_uri(), NextHop(r), absl::StrCat("<", r.aor(), ">"),
                 false);
    }
  }
  CheckStep(call);
}

void CallManager::SendBranch(const CallPtr& call, size_t target_index,
                             const std::string& request_uri, const std::string& next_hop,
                             const std::string& to, bool mobile) {
  const auto& target =
      call->plan.steps(static_cast<int>(call->step)).targets(static_cast<int>(target_index));
  auto branch = std::make_unique<Branch>();
  Branch* b = branch.get();
  b->step = call->step;
  b->target_index = target_index;
  b->target = target;
  b->leg_id = NewUuid();
  b->label = target.has_external() ? target.external().number() : target.extension();
  b->mobile = mobile;
  b->created_at = clock_.Now();
  const std::string caller_id =
      !call->plan.caller_id_number().empty() ? call->plan.caller_id_number() : call->from_number;
  const std::string display = !call->plan.caller_id_name().empty() ? call->plan.caller_id_name()
                              : !call->caller_name.empty()         ? call->caller_name
                                                                   : call->from_display;
  std::string from = absl::StrCat("<sip:", caller_id.empty() ? "anonymous" : caller_id, "@",
                                  stack_.public_host(), ">");
  if (!display.empty()) from = absl::StrCat(QuoteDisplay(display), " ", from);
  std::weak_ptr<Call> weak = call;
  auto dialog =
      Dialog::Create(stack_, {.from = from, .to = to}, [this, weak, b](ServerTransactionPtr in) {
        if (auto c = weak.lock())
          OnBLegRequest(c, b, std::move(in));
        else
          in->Reply(481);
      });
  if (!dialog.ok()) {
    spdlog::warn("sip: call {}: cannot ring {}: {}", call->id, request_uri,
                 std::string(dialog.status().message()));
    return;
  }
  b->dialog = *dialog;
  std::vector<Header> headers = {{"X-SB-Call-ID", call->id}};
  for (const auto& [name, value] : target.headers()) headers.push_back({name, value});
  const bool tcp = absl::StrContains(next_hop, "transport=tcp") ||
                   absl::StrContains(request_uri, "transport=tcp");
  // A transfer target is invited without an offer: its offer goes to the caller (RFC 3725).
  const bool offerless = call->offer.empty() || call->delayed_offer;
  auto sent = b->dialog->Send(
      {.method = "INVITE",
       .request_uri = request_uri,
       .next_hop = next_hop,
       .headers = std::move(headers),
       .contact = stack_.ContactFor(tcp ? "tcp" : "udp"),
       .content_type = offerless ? "" : call->offer_type,
       .body = offerless ? "" : ToBranch(*b, call->media ? call->media_offer : call->offer)},
      [this, weak, b](const Message& response) {
        if (auto c = weak.lock()) OnBranchResponse(c, b, response);
      });
  if (!sent.ok()) {
    spdlog::warn("sip: call {}: cannot ring {}: {}", call->id, request_uri,
                 std::string(sent.status().message()));
    return;
  }
  b->invite = *sent;
  call->targets[target_index].open_branches++;
  call->branches.push_back(std::move(branch));
}

void CallManager::OnBranchResponse(const CallPtr& call, Branch* b, const Message& response) {
  const int code = response.status();
  if (code < 200) {
    if (code == 100 || call->ended || b->done || call->answered != nullptr) return;
    if (!b->ringing) {
      b->ringing = true;
      const auto& target = TargetOf(*call, *b);
      cv1::Event ringing = NewEvent(*call, cv1::EVENT_TYPE_CALL_RINGING);
      ringing.mutable_call()->set_leg_id(b->leg_id);
      ringing.mutable_call()->set_leg_role(target.agent_user_id().empty() ? cv1::LEG_ROLE_EXTERNAL
                                                                          : cv1::LEG_ROLE_AGENT);
      auto* r = ringing.mutable_call()->mutable_ringing();
      r->set_agent_user_id(target.agent_user_id());
      r->set_target(b->label);
      r->set_mobile(b->mobile);
      r->set_queue_id(call->queue_id);
      if (!target.agent_user_id().empty()) ringing.add_user_ids(target.agent_user_id());
      Publish(call, {ringing});
      rv1::ReportCallEventRequest report;
      report.mutable_target_ringing()->set_target_id(target.target_id());
      Report(call, std::move(report));
    }
    // Ringing and early media go to the caller once (the first branch that has them).
    const bool early_media = code == 183 && !response.body().empty();
    if (call->invite != nullptr && (!call->provisional_sent || early_media)) {
      call->provisional_sent = true;
      if (early_media && call->media) {
        // The early media's description through media first; a failure costs only the early
        // media (the caller hears its own ringback).
        std::weak_ptr<Call> weak = call;
        MediaAnswer(call, call->a_leg_id, b->leg_id, std::string(response.body()),
                    response.source_ip(),
                    [this, weak,
                     type = std::string(response.content_type())](absl::StatusOr<std::string> sdp) {
                      CallPtr c = weak.lock();
                      if (c == nullptr || c->ended || c->answered != nullptr || c->a_final != 0 ||
                          c->invite == nullptr || c->invite->status() >= 200) {
                        return;
                      }
                      ReplyOptions options;
                      if (sdp.ok()) {
                        c->a_sdp_sent = *sdp;
                        options.content_type = type;
                        options.body = ToCaller(*c, *sdp);
                      }
                      c->invite->Reply(sdp.ok() ? 183 : 180, "", options);
                    });
        return;
      }
      ReplyOptions options;
      if (early_media) {
        options.content_type = response.content_type();
        options.body = ToCaller(*call, response.body());
      }
      call->invite->Reply(code == 183 ? 183 : 180, "", options);
    }
    return;
  }
  if (code < 300) {
    if (b->answered) {
      // A retransmitted 2xx: our ACK was lost (or, mid-transfer, is not sent yet).
      if (!b->awaiting_answer) b->dialog->Ack(response);
      return;
    }
    b->dialog->Establish(response);
    b->sdp_type = response.content_type();
    b->sdp = std::string(response.body());
    const bool late = call->ended || call->answered != nullptr;
    if (call->delayed_offer && !late) {
      b->awaiting_answer = true;  // ACKed with the caller's answer (CompleteTransfer)
    } else {
      b->dialog->Ack(response);
    }
    if (late) {
      // Answered too late (another branch won, or the caller left): hang it up at once.
      b->done = true;
      auto bye = b->dialog->Send({.method = "BYE"}, nullptr);
      if (bye.ok()) b->other.push_back(*bye);
      return;
    }
    b->answered = true;
    b->done = true;
    call->answered = b;
    call->answered_at = clock_.Now();
    call->state = cv1::CALL_STATE_ANSWERED;
    call->step_timer.reset();
    for (auto& ts : call->targets) ts.delay.reset();
    for (auto& other : call->branches) {
      if (other.get() != b && !other->done && other->invite != nullptr) other->invite->Cancel();
    }
    if (call->transferor != nullptr) {
      CompleteTransfer(call, b, response);
      return;
    }
    if (call->originated) {
      call->a_final = 200;
      ConnectOriginator(call, b);
    } else if (call->media && !response.body().empty()) {
      // The caller gets the answer as media wrote it; until then the call is answered but the
      // caller's INVITE still waits (ending meanwhile answers it with an error, not a BYE).
      b->sdp_sent = call->media_offer;
      std::weak_ptr<Call> weak = call;
      MediaAnswer(call, call->a_leg_id, b->leg_id, std::string(response.body()),
                  response.source_ip(),
                  [this, weak,
                   type = std::string(response.content_type())](absl::StatusOr<std::string> sdp) {
                    CallPtr c = weak.lock();
                    if (c == nullptr || c->ended) return;
                    if (!sdp.ok()) {
                      spdlog::warn("sip: call {}: media cannot anchor the answer: {}", c->id,
                                   std::string(sdp.status().message()));
                      End(c, cv1::HANGUP_CAUSE_NETWORK_FAILURE, cv1::HANGUP_PARTY_SYSTEM,
                          MediaFailureCode(sdp.status()), "MEDIA_FAILED");
                      return;
                    }
                    c->a_sdp_sent = *sdp;
                    AnswerCaller(c, type, ToCaller(*c, *sdp));
                    if (c->record && c->answered != nullptr) StartRecording(c, *c->answered);
                  });
    } else {
      AnswerCaller(call, response.body().empty() ? "" : std::string(response.content_type()),
                   ToCaller(*call, response.body()));
    }
    std::weak_ptr<Call> weak = call;
    call->max_timer = stack_.After(call->max_duration, [this, weak] {
      if (auto c = weak.lock())
        End(c, cv1::HANGUP_CAUSE_MAX_DURATION, cv1::HANGUP_PARTY_SYSTEM, 0, "MAX_DURATION");
    });
    const auto& target = TargetOf(*call, *b);
    Publish(call, {AnsweredEvent(*call, *b)});
    rv1::ReportCallEventRequest report;
    report.mutable_target_answered()->set_target_id(target.target_id());
    report.mutable_target_answered()->set_leg_id(b->leg_id);
    Report(call, std::move(report));
    return;
  }
  BranchFailed(call, b, code);
}

void CallManager::AnswerCaller(const CallPtr& call, const std::string& content_type,
                               std::string body) {
  call->a_final = 200;
  call->invite->Reply(200, "OK",
                      {.headers = SessionTimerHeaders(*call),
                       .contact = stack_.ContactFor(call->a_transport == "tcp" ? "tcp" : "udp"),
                       .content_type = content_type,
                       .body = std::move(body)});
  ArmSessionTimer(call);
}

void CallManager::BranchFailed(const CallPtr& call, Branch* b, int code) {
  if (b->done) return;
  b->done = true;
  b->final_code = code;
  if (call->ended || call->answered != nullptr || b->step != call->step) return;
  TargetState& ts = call->targets[b->target_index];
  ts.open_branches--;
  // The target's answer is the most telling of its branches' (busy beats no answer).
  if (ts.code == 0 || code == 486 || code == 600 || code == 603) ts.code = code;
  if (ts.open_branches <= 0 && !ts.lookup_pending) ts.failed = true;
  CheckStep(call);
}

void CallManager::CheckStep(const CallPtr& call) {
  if (call->ended || call->answered != nullptr) return;
  bool all_failed = true;
  bool delayed_left = false;
  for (const TargetState& ts : call->targets) {
    if (!ts.launched) {
      delayed_left = true;
      continue;
    }
    if (!ts.failed) all_failed = false;
  }
  if (!all_failed) return;
  if (delayed_left) {
    // Everything rung so far failed (e.g. an unregistered extension): do not make the caller
    // wait for the delayed targets (the mobile after N seconds); ring them now.
    for (size_t i = 0; i < call->targets.size(); ++i) {
      if (!call->targets[i].launched) LaunchTarget(call, i);
    }
    return;
  }
  StepOver(call);
}

void CallManager::StepOver(const CallPtr& call) {
  for (auto& b : call->branches) {
    if (b->step == call->step && !b->done && b->invite != nullptr) {
      b->invite->Cancel();
      b->final_code = 0;
      b->done = true;
    }
  }
  for (auto& ts : call->targets) ts.delay.reset();
  call->step_timer.reset();
  if (call->step + 1 < static_cast<size_t>(call->plan.steps_size())) {
    StartStep(call, call->step + 1);
  } else {
    RingPlanFailed(call);
  }
}

void CallManager::RingPlanFailed(const CallPtr& call) {
  if (call->transferor != nullptr) {
    int code = 480;
    for (const auto& ts : call->targets) {
      if (ts.code != 0) code = ts.code;
    }
    TransferFailed(call, code);
    return;
  }
  rv1::ReportCallEventRequest report;
  auto* failed = report.mutable_ring_plan_failed();
  int best = 0;
  for (size_t s = 0; s < static_cast<size_t>(call->plan.steps_size()); ++s) {
    const auto& step = call->plan.steps(static_cast<int>(s));
    for (int t = 0; t < step.targets_size(); ++t) {
      auto* r = failed->add_results();
      r->set_target_id(step.targets(t).target_id());
      int code = 0;
      if (s == call->step) code = call->targets[static_cast<size_t>(t)].code;
      for (const auto& b : call->branches) {
        if (b->step == s && b->target_index == static_cast<size_t>(t) && b->final_code != 0 &&
            code == 0) {
          code = b->final_code;
        }
      }
      r->set_sip_code(code);
      r->set_cause(code == 0 ? cv1::HANGUP_CAUSE_NO_ANSWER : CauseForCode(code));
      if (code == 486 || best == 0) best = code;
    }
  }
  report.set_call_id(call->id);
  report.set_node_id(options_.node_id);
  report.set_instruction_sequence(call->sequence);
  *report.mutable_occurred_at() = Stamp(clock_.Now());
  const std::string call_id = call->id;
  std::weak_ptr<bool> alive = alive_;
  const bool queued = executor_.TrySubmit([this, alive, call_id, best, report]() {
    auto next = peers_.ReportCallEvent(report);
    if (alive.expired()) return;
    stack_.Post([this, alive, call_id, best, next = std::move(next)] {
      if (alive.expired()) return;
      CallPtr c = Find(call_id);
      if (c == nullptr) return;
      if (next.ok() && next->has_next()) {
        Apply(c, next->next());
      } else {
        const int code = best == 486 ? 486 : 480;
        RejectCaller(c, code, CauseForCode(code), "RING_PLAN_FAILED");
      }
    });
  });
  if (!queued) RejectCaller(call, 480, cv1::HANGUP_CAUSE_NO_ANSWER, "RING_PLAN_FAILED");
}

// ---------------------------------------------------------------------------------------------
// In-dialog requests

void CallManager::OnCallerCancel(const CallPtr& call) {
  call->a_final = 487;  // nta has answered the INVITE 487 already
  End(call, cv1::HANGUP_CAUSE_ORIGINATOR_CANCEL, CallerParty(*call), 487, "", Side::kCaller);
}

void CallManager::OnALegRequest(const CallPtr& call, ServerTransactionPtr tx) {
  const std::string_view method = tx->request().method();
  if (method == "ACK") return;
  if (method == "BYE") {
    tx->Reply(200);
    End(call, cv1::HANGUP_CAUSE_NORMAL_CLEARING, CallerParty(*call), 0, "", Side::kCaller);
    return;
  }
  if (method == "OPTIONS") {
    tx->Reply(200);
    return;
  }
  if (method == "INVITE" || method == "UPDATE" || method == "INFO") {
    if (method != "INFO") ArmSessionTimer(call);  // a refresh (RFC 4028 §10)
    Relay(call, true, std::move(tx));
    return;
  }
  tx->Reply(501, "Not Implemented");
}

std::vector<Header> CallManager::SessionTimerHeaders(const Call& call) const {
  if (call.session_expires <= absl::ZeroDuration()) return {};
  return {{"Session-Expires",
           absl::StrCat(absl::ToInt64Seconds(call.session_expires), ";refresher=uac")},
          {"Require", "timer"}};
}

void CallManager::ArmSessionTimer(const CallPtr& call) {
  if (call->session_expires <= absl::ZeroDuration() || call->ended) return;
  // The refresher has until the interval is nearly over (RFC 4028 §10: minus a third, at most
  // 32 s); then the session is gone.
  const absl::Duration grace = std::min(absl::Seconds(32), call->session_expires / 3);
  std::weak_ptr<Call> weak = call;
  call->session_timer = stack_.After(call->session_expires - grace, [this, weak] {
    if (auto c = weak.lock()) {
      spdlog::info("sip: call {}: no session refresh from the caller in time", c->id);
      End(c, cv1::HANGUP_CAUSE_MEDIA_TIMEOUT, cv1::HANGUP_PARTY_SYSTEM, 0, "SESSION_EXPIRED");
    }
  });
}

void CallManager::OnBLegRequest(const CallPtr& call, Branch* b, ServerTransactionPtr tx) {
  const std::string_view method = tx->request().method();
  if (method == "ACK") return;
  if (!b->answered || call->ended || b->gone) {
    tx->Reply(method == "BYE" ? 200 : 481);
    return;
  }
  if (b != call->answered) {
    // The agent who transferred the call: once they hang up, the caller waits for the target.
    if (method == "BYE") {
      b->gone = true;
      tx->Reply(200);
    } else {
      tx->Reply(method == "NOTIFY" ? 200 : 481);
    }
    return;
  }
  if (method == "REFER") {
    OnRefer(call, b, std::move(tx));
    return;
  }
  if (method == "BYE") {
    tx->Reply(200);
    const bool agent = !TargetOf(*call, *b).agent_user_id().empty();
    const bool customer = call->direction == cv1::CALL_DIRECTION_OUTBOUND;
    End(call, cv1::HANGUP_CAUSE_NORMAL_CLEARING,
        agent      ? cv1::HANGUP_PARTY_AGENT
        : customer ? cv1::HANGUP_PARTY_CUSTOMER
                   : cv1::HANGUP_PARTY_EXTERNAL,
        0, "", Side::kCallee);
    return;
  }
  if (method == "OPTIONS") {
    tx->Reply(200);
    return;
  }
  if (method == "INVITE" || method == "UPDATE" || method == "INFO") {
    Relay(call, false, std::move(tx));
    return;
  }
  tx->Reply(501, "Not Implemented");
}

void CallManager::Relay(const CallPtr& call, bool from_caller, ServerTransactionPtr tx) {
  if (call->ended || call->answered == nullptr) {
    tx->Reply(tx->request().method() == "INVITE" ? 491 : 481);
    return;
  }
  // Glare with our own hold/resume re-INVITE on these dialogs: the phone retries after a random
  // wait (RFC 3261 section 14.2).
  if (call->own_reinvites > 0 && tx->request().method() == "INVITE") {
    tx->Reply(491, "Request Pending");
    return;
  }
  const Message& req = tx->request();
  const std::string_view method = req.method();
  call->pending_in.push_back(tx);
  Branch* target = call->answered;
  // Session descriptions (INVITE, UPDATE; not INFO bodies) are the sender's, restamped per leg.
  const bool sdp = (method == "INVITE" || method == "UPDATE") && req.content_type() == kSdp;
  std::string body(req.body());
  // An offerless re-INVITE gets its offer in the 2xx and its answer in the ACK, which is not
  // relayed through media: the call's media goes end to end from here on.
  if (call->media && method == "INVITE" && body.empty()) Unanchor(call);
  if (call->media && sdp && !body.empty()) {
    // The offer through media first; the other leg gets media's description.
    std::weak_ptr<Call> weak = call;
    std::weak_ptr<ServerTransaction> weak_tx = tx;
    MediaOffer(
        call, from_caller ? call->a_leg_id : target->leg_id, std::move(body), req.source_ip(),
        [this, weak, weak_tx, from_caller, target](absl::StatusOr<std::string> anchored) {
          CallPtr c = weak.lock();
          ServerTransactionPtr in = weak_tx.lock();
          if (c == nullptr || in == nullptr || c->ended) return;  // End() answered it
          if (c->answered != target || !anchored.ok()) {
            // A transfer replaced the other leg meanwhile, or media refused the offer:
            // the session stays as it was (RFC 3261 section 14.1).
            std::erase(c->pending_in, in);
            if (anchored.ok()) {
              in->Reply(491, "Request Pending");
            } else {
              spdlog::info("sip: call {}: media refused a re-offer: {}", c->id,
                           std::string(anchored.status().message()));
              in->Reply(MediaFailureCode(anchored.status()));
            }
            return;
          }
          (from_caller ? target->sdp_sent : c->a_sdp_sent) = *anchored;
          ForwardRelayed(c, from_caller, in,
                         from_caller ? ToBranch(*target, *anchored) : ToCaller(*c, *anchored),
                         /*anchored=*/true);
        });
    return;
  }
  if (sdp && !body.empty()) body = from_caller ? ToBranch(*target, body) : ToCaller(*call, body);
  ForwardRelayed(call, from_caller, std::move(tx), std::move(body), /*anchored=*/false);
}

void CallManager::ForwardRelayed(const CallPtr& call, bool from_caller, ServerTransactionPtr tx,
                                 std::string body, bool anchored) {
  Dialog& other = from_caller ? *call->answered->dialog : *call->a_dialog;
  const Message& req = tx->request();
  const std::string method(req.method());
  std::vector<Header> headers;
  for (const char* name : {"Content-Disposition", "Event", "Info-Package"}) {
    const std::string v = req.header(name);
    if (!v.empty()) headers.push_back({name, v});
  }
  const bool tcp = !from_caller ? call->a_transport == "tcp" : false;
  std::weak_ptr<Call> weak = call;
  std::weak_ptr<ServerTransaction> weak_tx = tx;
  DialogPtr other_dialog = from_caller ? call->answered->dialog : call->a_dialog;
  Branch* target = call->answered;
  auto sent = other.Send(
      {.method = method,
       .headers = std::move(headers),
       .contact =
           method == "INVITE" || method == "UPDATE" ? stack_.ContactFor(tcp ? "tcp" : "udp") : "",
       .content_type = req.body().empty() ? "" : req.content_type(),
       .body = std::move(body)},
      [this, weak, weak_tx, other_dialog, method, from_caller, target,
       anchored](const Message& response) {
        auto c = weak.lock();
        if (method == "INVITE" && response.status() >= 200 && response.status() < 300) {
          other_dialog->Ack(response);
        }
        auto in = weak_tx.lock();
        if (c == nullptr || in == nullptr || response.status() < 200) return;
        std::string answer(response.body());
        const bool ok = response.status() < 300;
        RelayedAnswer relayed{
            .status = response.status(),
            .phrase = std::string(response.phrase()),
            .content_type = answer.empty() ? "" : std::string(response.content_type())};
        if (ok && (method == "INVITE" || method == "UPDATE")) {
          // Both sides' current descriptions, for later transfers and holds.
          const std::string offer(in->request().body());
          std::string& requester = from_caller ? c->offer : target->sdp;
          std::string& answerer = from_caller ? target->sdp : c->offer;
          if (!offer.empty() && in->request().content_type() == kSdp) requester = offer;
          if (!answer.empty() && response.content_type() == kSdp) {
            answerer = answer;
            if (anchored && c->media && c->answered == target) {
              // The answer through media, then to the requester; if media fails now, the
              // other leg has the new session and this one cannot: the call is over.
              MediaAnswer(c, from_caller ? c->a_leg_id : target->leg_id,
                          from_caller ? target->leg_id : c->a_leg_id, std::move(answer),
                          response.source_ip(),
                          [this, weak, weak_tx, from_caller, target,
                           relayed = std::move(relayed)](absl::StatusOr<std::string> sdp) mutable {
                            CallPtr cc = weak.lock();
                            ServerTransactionPtr tx_in = weak_tx.lock();
                            if (cc == nullptr || tx_in == nullptr || cc->ended) return;
                            if (!sdp.ok()) {
                              spdlog::warn("sip: call {}: media cannot anchor a re-answer: {}",
                                           cc->id, std::string(sdp.status().message()));
                              End(cc, cv1::HANGUP_CAUSE_NETWORK_FAILURE, cv1::HANGUP_PARTY_SYSTEM,
                                  0, "MEDIA_FAILED");
                              return;
                            }
                            (from_caller ? cc->a_sdp_sent : target->sdp_sent) = *sdp;
                            relayed.body =
                                from_caller ? ToCaller(*cc, *sdp) : ToBranch(*target, *sdp);
                            ReplyRelayed(cc, from_caller, tx_in, std::move(relayed));
                          });
              return;
            }
            answer = from_caller ? ToCaller(*c, answer) : ToBranch(*target, answer);
          }
        }
        relayed.body = std::move(answer);
        ReplyRelayed(c, from_caller, in, std::move(relayed));
      });
  if (!sent.ok()) {
    std::erase(call->pending_in, tx);
    tx->Reply(500);
    return;
  }
  (from_caller ? call->answered->other : call->a_requests).push_back(*sent);
}

void CallManager::ReplyRelayed(const CallPtr& c, bool from_caller, const ServerTransactionPtr& in,
                               RelayedAnswer answer) {
  const std::string_view method = in->request().method();
  const bool ok = answer.status < 300;
  // A caller's refresh is answered with the session interval (RFC 4028 §9).
  const bool refresh = from_caller && ok && (method == "INVITE" || method == "UPDATE");
  in->Reply(answer.status, answer.phrase,
            {.headers = refresh ? SessionTimerHeaders(*c) : std::vector<Header>{},
             .contact = method == "INVITE" || method == "UPDATE"
                            ? stack_.ContactFor(c->a_transport == "tcp" ? "tcp" : "udp")
                            : "",
             .content_type = answer.content_type,
             .body = std::move(answer.body)});
  std::erase(c->pending_in, in);
  // Hold and resume show on the live state: a=sendonly / a=inactive from the holder.
  if (method == "INVITE") {
    const std::string offer(in->request().body());
    const bool held = IsHold(offer);
    const cv1::CallState next = held ? cv1::CALL_STATE_HELD : cv1::CALL_STATE_ANSWERED;
    if (next != c->state && ok) {
      c->state = next;
      cv1::Event e = NewEvent(*c, held ? cv1::EVENT_TYPE_CALL_HELD : cv1::EVENT_TYPE_CALL_RESUMED);
      if (held)
        e.mutable_call()->mutable_held();
      else
        e.mutable_call()->mutable_resumed();
      Publish(c, {e});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Blind transfer (REFER from the agent's phone, RFC 3515)

void CallManager::NotifyTransferor(const CallPtr& call, Branch* transferor, int status,
                                   bool final) {
  if (transferor == nullptr || transferor->gone || transferor->dialog == nullptr ||
      !call->transferor_subscribed) {
    return;
  }
  const std::string phrase(StatusPhrase(status));
  auto sent = transferor->dialog->Send(
      {.method = "NOTIFY",
       .headers = {{"Event", "refer"},
                   {"Subscription-State",
                    final ? "terminated;reason=noresource" : "active;expires=60"}},
       .contact = stack_.ContactFor("udp"),
       .content_type = kSipfrag,
       .body = absl::StrCat("SIP/2.0 ", status, " ", phrase, "\r\n")},
      nullptr);
  if (sent.ok()) transferor->other.push_back(*sent);
}

void CallManager::OnRefer(const CallPtr& call, Branch* b, ServerTransactionPtr tx) {
  const std::string refer_to = tx->request().header("Refer-To");
  if (call->transferor != nullptr || call->transfer_requested) {
    tx->Reply(491, "Request Pending");
    return;
  }
  if (refer_to.empty()) {
    tx->Reply(400, "Missing Refer-To");
    return;
  }
  const std::string by_user = TargetOf(*call, *b).agent_user_id();
  if (by_user.empty()) {
    tx->Reply(403, "Only agents transfer calls");
    return;
  }
  if (HasReplaces(refer_to)) {
    OnAttendedRefer(call, b, std::move(tx));
    return;
  }
  const std::string target = ReferUser(refer_to);
  if (target.empty() || target.size() > 32) {
    tx->Reply(400, "Refer-To names no user");
    return;
  }
  tx->Reply(202, "Accepted");
  call->transferor_subscribed = true;
  NotifyTransferor(call, b, 100, false);
  rv1::TransferRequested t;
  if (absl::StartsWith(target, "+")) {
    t.set_number(target);
  } else {
    t.set_extension(target);
  }
  RequestBlindTransfer(call, b, std::move(t));
}

void CallManager::RequestBlindTransfer(const CallPtr& call, Branch* b, rv1::TransferRequested t) {
  rv1::ReportCallEventRequest report;
  report.set_call_id(call->id);
  report.set_node_id(options_.node_id);
  report.set_tenant_id(call->tenant_id);
  report.set_instruction_sequence(call->sequence);
  *report.mutable_occurred_at() = Stamp(clock_.Now());
  t.set_type(cv1::TRANSFER_TYPE_BLIND);
  t.set_by_user_id(b->target.agent_user_id());
  *report.mutable_transfer_requested() = std::move(t);
  // Until routing answers, a second transfer waits (491 / FailedPrecondition).
  call->transfer_requested = true;
  const std::string call_id = call->id;
  std::weak_ptr<bool> alive = alive_;
  const bool queued = executor_.TrySubmit([this, alive, call_id, b, report]() {
    auto next = peers_.ReportCallEvent(report);
    if (alive.expired()) return;
    stack_.Post([this, alive, call_id, b, next = std::move(next), report] {
      if (alive.expired()) return;
      CallPtr c = Find(call_id);
      if (c == nullptr) return;
      c->transfer_requested = false;
      if (c->answered != b) return;
      if (!next.ok() || !next->has_next() || !next->next().has_ring() ||
          next->next().ring().steps_size() == 0 ||
          next->next().ring().steps(0).targets_size() == 0) {
        const int code = next.ok() && next->has_next() && next->next().has_reject()
                             ? next->next().reject().sip_code()
                             : 503;
        spdlog::info(
            "sip: call {}: transfer refused: {}", c->id,
            next.ok() ? next->next().reject().reason() : std::string(next.status().message()));
        NotifyTransferor(c, b, code >= 300 ? code : 503, true);
        c->transferor_subscribed = false;
        return;
      }
      // Ring the target; the caller stays connected to the agent until it answers.
      c->transferor = b;
      c->answered = nullptr;
      c->delayed_offer = true;
      c->state = cv1::CALL_STATE_TRANSFERRING;
      c->sequence = next->next().sequence();
      c->plan = next->next().ring();
      c->plan.set_caller_id_number(c->from_number);
      c->plan.set_caller_id_name(!c->caller_name.empty() ? c->caller_name : c->from_display);
      cv1::Event e = NewEvent(*c, cv1::EVENT_TYPE_CALL_TRANSFERRED);
      auto* tr = e.mutable_call()->mutable_transferred();
      tr->set_type(cv1::TRANSFER_TYPE_BLIND);
      tr->set_by_user_id(report.transfer_requested().by_user_id());
      const auto& first = c->plan.steps(0).targets(0);
      if (!first.agent_user_id().empty()) {
        tr->set_to_user_id(first.agent_user_id());
      } else if (first.has_external()) {
        tr->set_to_number(first.external().number());
      }
      e.add_user_ids(report.transfer_requested().by_user_id());
      Publish(c, {e});
      StartStep(c, 0);
    });
  });
  if (!queued) {
    call->transfer_requested = false;
    NotifyTransferor(call, b, 503, true);
    call->transferor_subscribed = false;
  }
}

void CallManager::CompleteTransfer(const CallPtr& call, Branch* target, const Message& answer) {
  // The target's 2xx carries its offer: the caller gets it in a re-INVITE, and the caller's answer
  // goes to the target in our ACK (third-party call control, RFC 3725 flow I).
  const Message offer = answer;
  Unanchor(call);  // not anchored yet: the caller and the target talk end to end
  std::weak_ptr<Call> weak = call;
  auto sent = call->a_dialog->Send(
      {.method = "INVITE",
       .contact = stack_.ContactFor(call->a_transport == "tcp" ? "tcp" : "udp"),
       .content_type = offer.body().empty() ? "" : offer.content_type(),
       .body = ToCaller(*call, offer.body())},
      [this, weak, target, offer](const Message& response) {
        auto c = weak.lock();
        if (c == nullptr || response.status() < 200) return;
        if (response.status() >= 300) {
          // The caller refused the new media: give up on the target, keep the agent if there.
          target->awaiting_answer = false;
          target->dialog->Ack(offer);
          auto bye = target->dialog->Send({.method = "BYE"}, nullptr);
          if (bye.ok()) target->other.push_back(*bye);
          target->answered = false;
          TransferFailed(c, response.status());
          return;
        }
        c->a_dialog->Ack(response);
        if (!target->awaiting_answer) return;  // a retransmitted 2xx
        target->awaiting_answer = false;
        c->offer_type = response.content_type();
        c->offer = std::string(response.body());
        target->dialog->Ack(offer, response.content_type(), ToBranch(*target, response.body()));
        RetireTransferor(c);
        c->delayed_offer = false;
        c->state = cv1::CALL_STATE_ANSWERED;
        Publish(c, {AnsweredEvent(*c, *target)});
      });
  if (!sent.ok()) {
    TransferFailed(call, 500);
    return;
  }
  call->a_requests.push_back(*sent);
}

void CallManager::RetireTransferor(const CallPtr& call) {
  Branch* transferor = call->transferor;
  call->transferor = nullptr;
  NotifyTransferor(call, transferor, 200, true);
  const bool subscribed = call->transferor_subscribed;
  call->transferor_subscribed = false;
  if (transferor == nullptr || transferor->gone) return;
  // The transferor's phone hangs up on the final NOTIFY (RFC 5589); one that does not gets a BYE
  // shortly after. One that never REFERred (a transfer asked over gRPC) gets it at once.
  transferor->retired = true;
  std::weak_ptr<Call> weak = call;
  call->timers.push_back(
      stack_.After(subscribed ? kTransferorGrace : absl::ZeroDuration(), [weak, transferor] {
        auto c = weak.lock();
        if (c == nullptr || transferor->gone) return;
        transferor->gone = true;
        auto bye = transferor->dialog->Send({.method = "BYE"}, nullptr);
        if (bye.ok()) transferor->other.push_back(*bye);
      }));
}

// ---------------------------------------------------------------------------------------------
// Anchored media

void CallManager::Media(const CallPtr& call, absl::AnyInvocable<absl::StatusOr<std::string>()> rpc,
                        MediaThen then) {
  call->media_steps.push_back({.rpc = std::move(rpc), .then = std::move(then)});
  if (!call->media_busy) NextMediaStep(call->id);
}

void CallManager::NextMediaStep(const std::string& call_id) {
  // Ended calls are still found while they linger: their last step releases the session.
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  Call& call = *it->second;
  call.media_busy = !call.media_steps.empty();
  if (!call.media_busy) return;
  auto step = std::make_shared<MediaStep>(std::move(call.media_steps.front()));
  call.media_steps.pop_front();
  std::weak_ptr<bool> alive = alive_;
  const bool queued = executor_.TrySubmit([this, alive, call_id, step] {
    absl::StatusOr<std::string> result = step->rpc();
    if (alive.expired()) return;
    stack_.Post([this, alive, call_id, step, result = std::move(result)]() mutable {
      if (alive.expired()) return;
      step->then(std::move(result));
      NextMediaStep(call_id);
    });
  });
  if (!queued) {
    step->then(absl::UnavailableError("sip: every worker is busy; media was not asked"));
    NextMediaStep(call_id);
  }
}

// A description through media: `rpc` (ProcessOffer or ProcessAnswer) returns media's version.
template <typename Request, typename Response>
void CallManager::MediaRewrite(const CallPtr& call, Request req,
                               absl::StatusOr<Response> (SipPeers::*rpc)(const Request&),
                               MediaThen then) {
  Media(
      call,
      [peers = &peers_, req = std::move(req), rpc]() -> absl::StatusOr<std::string> {
        SB_ASSIGN_OR_RETURN(Response resp, (peers->*rpc)(req));
        return std::move(*resp.mutable_sdp());
      },
      std::move(then));
}

void CallManager::MediaOffer(const CallPtr& call, const std::string& from_tag, std::string sdp,
                             const std::string& signalling_ip, MediaThen then) {
  mv1::ProcessOfferRequest req;
  req.set_call_id(call->id);
  req.set_tenant_id(call->tenant_id);
  req.set_from_tag(from_tag);
  req.set_sdp(std::move(sdp));
  req.mutable_options()->set_signalling_address(signalling_ip);
  MediaRewrite(call, std::move(req), &SipPeers::ProcessOffer, std::move(then));
}

void CallManager::MediaAnswer(const CallPtr& call, const std::string& from_tag,
                              const std::string& to_tag, std::string sdp,
                              const std::string& signalling_ip, MediaThen then) {
  mv1::ProcessAnswerRequest req;
  req.set_call_id(call->id);
  req.set_from_tag(from_tag);
  req.set_to_tag(to_tag);
  req.set_sdp(std::move(sdp));
  req.mutable_options()->set_signalling_address(signalling_ip);
  MediaRewrite(call, std::move(req), &SipPeers::ProcessAnswer, std::move(then));
}

void CallManager::StartRecording(const CallPtr& call, const Branch& answered) {
  mv1::StartRecordingRequest req;
  req.set_call_id(call->id);
  req.set_tenant_id(call->tenant_id);
  req.set_recording_id(NewUuid());
  // The customer left, the agent right: on a call from an agent's phone the customer is the
  // party it called.
  const bool agent_called = !call->caller_user_id.empty();
  const bool customer_answered = agent_called && answered.target.agent_user_id().empty();
  req.set_left_tag(customer_answered ? answered.leg_id : call->a_leg_id);
  req.set_right_tag(customer_answered ? call->a_leg_id : answered.leg_id);
  req.set_agent_user_id(agent_called ? call->caller_user_id : answered.target.agent_user_id());
  if (call->recording_retention > absl::ZeroDuration()) {
    req.mutable_retention()->set_seconds(absl::ToInt64Seconds(call->recording_retention));
  }
  std::weak_ptr<Call> weak = call;
  Media(
      call,
      [peers = &peers_, req = std::move(req)]() -> absl::StatusOr<std::string> {
        SB_ASSIGN_OR_RETURN(mv1::Recording recording, peers->StartRecording(req));
        return recording.id();
      },
      [this, weak](absl::StatusOr<std::string> id) {
        CallPtr c = weak.lock();
        if (c == nullptr || c->ended) return;
        if (!id.ok()) {
          // Once, then every thousandth: a node without a recording root under a policy that
          // records everything must be loud, not a log storm.
          if (recordings_failed_++ % 1000 == 0) {
            spdlog::warn("sip: call {}: the recording did not start ({} so far): {}", c->id,
                         recordings_failed_, std::string(id.status().message()));
          }
          return;
        }
        c->recording_id = *id;
        cv1::Event e = NewEvent(*c, cv1::EVENT_TYPE_CALL_RECORDING_STARTED);
        e.mutable_call()->mutable_recording_started()->set_recording_id(*id);
        Publish(c, {e});
      });
}

void CallManager::Unanchor(const CallPtr& call) {
  if (!call->media) return;
  call->media = false;
  mv1::DeleteSessionRequest req;
  req.set_call_id(call->id);
  // Late retransmissions of what was relayed still find their ports for a few seconds.
  req.mutable_delay()->set_seconds(5);
  Media(
      call,
      [peers = &peers_, req = std::move(req)]() -> absl::StatusOr<std::string> {
        SB_RETURN_IF_ERROR(peers->DeleteMediaSession(req));
        return std::string();
      },
      [id = call->id](absl::StatusOr<std::string> done) {
        if (!done.ok()) {
          spdlog::warn("sip: call {}: releasing its media session failed: {}", id,
                       std::string(done.status().message()));
        }
      });
}

int CallManager::MediaFailureCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 488;
    default:
      return 503;
  }
}

void CallManager::OnMediaEvent(const mv1::MediaEvent& event) {
  if (!event.has_rtp_timeout()) return;
  CallPtr call = Find(event.call_id());
  if (call == nullptr || !call->media) {
    // Not ours (any more): a session media still holds for nothing.
    auto it = calls_.find(event.call_id());
    if (it != calls_.end() && it->second->media_busy) return;  // its release is on its way
    const bool queued = executor_.TrySubmit([peers = &peers_, id = event.call_id()] {
      mv1::DeleteSessionRequest release;
      release.set_call_id(id);
      (void)peers->DeleteMediaSession(release);
    });
    (void)queued;
    return;
  }
  spdlog::info("sip: call {}: no RTP from leg {} for {}s; hanging up", call->id, event.tag(),
               event.rtp_timeout().silent_for().seconds());
  End(call, cv1::HANGUP_CAUSE_MEDIA_TIMEOUT, cv1::HANGUP_PARTY_SYSTEM,
      call->answered != nullptr ? 0 : 408, "MEDIA_TIMEOUT");
}

std::string CallManager::ToCaller(Call& call, std::string_view sdp) const {
  return sdp.empty() ? "" : StampOrigin(sdp, call.a_origin, stack_.public_host());
}

std::string CallManager::ToBranch(Branch& branch, std::string_view sdp) const {
  return sdp.empty() ? "" : StampOrigin(sdp, branch.origin, stack_.public_host());
}

cv1::Event CallManager::AnsweredEvent(const Call& call, const Branch& b) const {
  const auto& target = b.target;
  cv1::Event e = NewEvent(call, cv1::EVENT_TYPE_CALL_ANSWERED);
  e.mutable_call()->set_leg_id(b.leg_id);
  e.mutable_call()->set_leg_role(target.agent_user_id().empty() ? cv1::LEG_ROLE_EXTERNAL
                                                                : cv1::LEG_ROLE_AGENT);
  auto* a = e.mutable_call()->mutable_answered();
  a->set_agent_user_id(target.agent_user_id());
  a->set_target(b.label);
  a->set_mobile(b.mobile);
  if (!target.agent_user_id().empty()) e.add_user_ids(target.agent_user_id());
  return e;
}

// ---------------------------------------------------------------------------------------------
// Attended transfer (REFER with Replaces from the agent's phone, RFC 5589 §7)
//
// The agent talks to the caller on this call and, having put them on hold, to the transfer
// target on a consultation call. The REFER's Replaces names the agent's leg of the consultation;
// the target's leg moves into this call and takes the agent's place. The media is re-wired
// without a media server (RFC 3725 flow I): an offerless re-INVITE to the target, its offer in
// a re-INVITE to the caller, the caller's answer in the ACK to the target. If any of that fails
// the target goes back to the consultation untouched and the agent keeps the caller.

void CallManager::OnAttendedRefer(const CallPtr& call, Branch* b, ServerTransactionPtr tx) {
  const std::optional<Replaces> replaces = ParseReplaces(tx->request().header("Refer-To"));
  if (!replaces.has_value()) {
    tx->Reply(400, "Bad Replaces in Refer-To");
    return;
  }
  const std::string by_user = b->target.agent_user_id();
  // The consultation: the agent's leg of it is the dialog Replaces names, on this node.
  CallPtr consult;
  for (const auto& [id, c] : calls_) {
    if (c == call || c->ended || c->answered == nullptr || c->tenant_id != call->tenant_id) {
      continue;
    }
    const bool agent_called =
        c->a_dialog != nullptr && c->caller_user_id == by_user && Names(*replaces, *c->a_dialog);
    const bool agent_answered = c->answered->target.agent_user_id() == by_user &&
                                c->answered->dialog != nullptr &&
                                Names(*replaces, *c->answered->dialog);
    if (agent_called || agent_answered) {
      consult = c;
      break;
    }
  }
  tx->Reply(202, "Accepted");
  call->transferor_subscribed = true;
  NotifyTransferor(call, b, 100, false);
  if (consult == nullptr) {
    spdlog::info("sip: call {}: attended transfer names no consultation call of {} here", call->id,
                 by_user);
    NotifyTransferor(call, b, 481, true);
    call->transferor_subscribed = false;
    return;
  }
  StartJoin(call, b, consult);
}

namespace {

// The consultation's leg that is not `by_user`'s: its answered target when the agent placed it
// (returned), or its caller when the agent answered it (nullptr).
Branch* ConsultationPeer(const Call& consult, const std::string& by_user) {
  return consult.caller_user_id == by_user ? consult.answered : nullptr;
}

}  // namespace

void CallManager::StartJoin(const CallPtr& call, Branch* b, const CallPtr& consult) {
  Branch* peer = ConsultationPeer(*consult, b->target.agent_user_id());
  // Not anchored yet: the caller and the target will talk end to end.
  Unanchor(call);
  Unanchor(consult);
  // Until the media is re-wired the agent's leg is set aside: its BYE (some phones hang up at
  // once) does not end the call, and requests from the caller wait (491).
  call->transferor = b;
  call->answered = nullptr;
  call->state = cv1::CALL_STATE_TRANSFERRING;
  DialogPtr target = peer != nullptr ? peer->dialog : consult->a_dialog;
  // What the target had before, to fall back to: its own last offer or answer is not ours to
  // send back; the agent's description it was talking to is.
  const std::string fallback_type =
      peer != nullptr ? consult->offer_type : consult->answered->sdp_type;
  const std::string fallback = peer != nullptr ? consult->offer : consult->answered->sdp;
  struct Rewiring {
    bool offered = false;
    std::optional<Message> target_ok;  // the target's 2xx with its offer
    std::string answer_type;
    std::string answer;  // the caller's answer, as stamped for the target
  };
  auto rw = std::make_shared<Rewiring>();
  std::weak_ptr<Call> weak = call;
  std::weak_ptr<Call> weak_consult = consult;
  // The target's leg's origin, while the consultation is there (afterwards the leg is ours).
  auto stamp = [this, weak_consult, peer](std::string_view body) {
    CallPtr c = weak_consult.lock();
    if (c == nullptr) return std::string(body);
    return peer != nullptr ? ToBranch(*peer, body) : ToCaller(*c, body);
  };
  auto ack_fallback = [target, fallback_type, fallback, stamp](const Message& ok) {
    target->Ack(ok, fallback.empty() ? "" : fallback_type, fallback.empty() ? "" : stamp(fallback));
  };
  auto sent = target->Send(
      {.method = "INVITE", .contact = stack_.ContactFor("udp")},
      [this, weak, weak_consult, target, peer, rw, ack_fallback, stamp](const Message& response) {
        if (response.status() < 200) return;
        auto c = weak.lock();
        if (response.status() >= 300) {
          if (c != nullptr && !c->ended) TransferFailed(c, response.status());
          return;
        }
        if (rw->offered) {  // a retransmitted 2xx: ACK it as before
          if (!rw->answer.empty()) {
            target->Ack(response, rw->answer_type, rw->answer);
          } else if (!rw->target_ok.has_value()) {
            ack_fallback(response);
          }
          return;
        }
        rw->offered = true;
        rw->target_ok = response;
        if (c == nullptr || c->ended || response.body().empty()) {
          // Nobody to hand the offer to (or no offer): the target keeps its old session.
          ack_fallback(response);
          rw->target_ok.reset();
          if (c != nullptr && !c->ended) TransferFailed(c, 488);
          return;
        }
        auto to_caller = c->a_dialog->Send(
            {.method = "INVITE",
             .contact = stack_.ContactFor(c->a_transport == "tcp" ? "tcp" : "udp"),
             .content_type = response.content_type(),
             .body = ToCaller(*c, response.body())},
            [this, weak, weak_consult, target, peer, rw, ack_fallback,
             stamp](const Message& answer) {
              if (answer.status() < 200 || !rw->target_ok.has_value()) return;
              auto cc = weak.lock();
              if (answer.status() >= 300) {
                ack_fallback(*rw->target_ok);
                rw->target_ok.reset();
                if (cc != nullptr && !cc->ended) TransferFailed(cc, answer.status());
                return;
              }
              if (cc == nullptr) return;
              cc->a_dialog->Ack(answer);
              if (!rw->answer.empty()) return;  // a retransmitted 2xx
              rw->answer_type = answer.content_type();
              rw->answer = stamp(answer.body());
              target->Ack(*rw->target_ok, rw->answer_type, rw->answer);
              cc->offer_type = answer.content_type();
              cc->offer = std::string(answer.body());
              if (cc->ended) return;
              CallPtr consultation = weak_consult.lock();
              if (consultation == nullptr || consultation->ended ||
                  (peer != nullptr ? consultation->answered != peer
                                   : consultation->a_dialog != target)) {
                // The target hung up meanwhile: the agent keeps the caller (and re-INVITEs them
                // back when taking them off hold).
                TransferFailed(cc, 487);
                return;
              }
              JoinConsultation(cc, consultation, peer, rw->target_ok->content_type(),
                               std::string(rw->target_ok->body()));
            });
        if (!to_caller.ok()) {
          ack_fallback(response);
          rw->target_ok.reset();
          TransferFailed(c, 500);
          return;
        }
        c->a_requests.push_back(*to_caller);
      });
  if (!sent.ok()) {
    TransferFailed(call, 500);
    return;
  }
  (peer != nullptr ? peer->other : consult->a_requests).push_back(*sent);
}

void CallManager::JoinConsultation(const CallPtr& call, const CallPtr& consult, Branch* peer,
                                   const std::string& sdp_type, const std::string& sdp) {
  Branch* transferor = call->transferor;
  std::unique_ptr<Branch> joined;
  if (peer != nullptr) {
    // The agent placed the consultation: its answered target moves over.
    auto it = std::find_if(consult->branches.begin(), consult->branches.end(),
                           [&](const auto& b) { return b.get() == peer; });
    joined = std::move(*it);
    consult->branches.erase(it);
    consult->answered = nullptr;
  } else {
    // The target called the agent: the consultation's caller becomes this call's target.
    joined = std::make_unique<Branch>();
    joined->leg_id = consult->a_leg_id;
    joined->dialog = consult->a_dialog;
    joined->created_at = consult->created_at;
    joined->answered = true;
    joined->done = true;
    if (!consult->caller_user_id.empty()) {
      joined->target.set_agent_user_id(consult->caller_user_id);
      joined->target.set_extension(consult->caller_extension);
      joined->label = consult->caller_extension;
    } else {
      joined->target.mutable_external()->set_number(consult->from_number);
      joined->target.mutable_external()->set_trunk_id(consult->trunk_id);
      joined->label = consult->from_number;
    }
    joined->origin = consult->a_origin;
    consult->a_dialog.reset();
    consult->a_requests.clear();
  }
  Branch* b = joined.get();
  b->sdp_type = sdp_type;
  b->sdp = sdp;
  std::weak_ptr<Call> weak = call;
  b->dialog->OnRequest([this, weak, b](ServerTransactionPtr in) {
    if (auto c = weak.lock())
      OnBLegRequest(c, b, std::move(in));
    else
      in->Reply(481);
  });
  call->branches.push_back(std::move(joined));
  call->answered = b;
  call->state = cv1::CALL_STATE_ANSWERED;

  cv1::Event e = NewEvent(*call, cv1::EVENT_TYPE_CALL_TRANSFERRED);
  auto* tr = e.mutable_call()->mutable_transferred();
  tr->set_type(cv1::TRANSFER_TYPE_ATTENDED);
  tr->set_by_user_id(transferor->target.agent_user_id());
  if (!b->target.agent_user_id().empty()) {
    tr->set_to_user_id(b->target.agent_user_id());
  } else if (b->target.has_external()) {
    tr->set_to_number(b->target.external().number());
  }
  tr->set_consult_call_id(consult->id);
  e.add_user_ids(transferor->target.agent_user_id());
  Publish(call, {e, AnsweredEvent(*call, *b)});
  rv1::ReportCallEventRequest report;
  report.mutable_leg_ended()->set_leg_id(transferor->leg_id);
  report.mutable_leg_ended()->set_user_id(transferor->target.agent_user_id());
  report.mutable_leg_ended()->set_cause(cv1::HANGUP_CAUSE_TRANSFERRED);
  Report(call, std::move(report));
  RetireTransferor(call);
  // What is left of the consultation is the agent's own leg: it ends, transferred.
  End(consult, cv1::HANGUP_CAUSE_TRANSFERRED, cv1::HANGUP_PARTY_AGENT, 0, "REPLACED");
}

void CallManager::TransferFailed(const CallPtr& call, int code) {
  Branch* transferor = call->transferor;
  call->transferor = nullptr;
  call->delayed_offer = false;
  call->step_timer.reset();
  for (auto& b : call->branches) {
    if (!b->done && b->invite != nullptr) {
      b->invite->Cancel();
      b->done = true;
    }
  }
  NotifyTransferor(call, transferor, code, true);
  call->transferor_subscribed = false;
  if (transferor != nullptr && !transferor->gone) {
    // The agent is still on: the call goes on with them.
    call->answered = transferor;
    call->state = cv1::CALL_STATE_ANSWERED;
    return;
  }
  End(call, CauseForCode(code), cv1::HANGUP_PARTY_SYSTEM, 0, "TRANSFER_FAILED");
}

// ---------------------------------------------------------------------------------------------
// Call control over gRPC (the console, the API, other services)

absl::StatusOr<CallManager::CallPtr> CallManager::Controllable(const std::string& call_id) const {
  CallPtr call = Find(call_id);
  if (call == nullptr) return absl::NotFoundError(absl::StrCat("call ", call_id, " not found"));
  if (call->answered == nullptr || call->transferor != nullptr || call->transfer_requested) {
    return absl::FailedPreconditionError(absl::StrCat(
        "call ", call_id,
        call->transferor != nullptr || call->transfer_requested ? " is being transferred"
                                                                : " is not answered"));
  }
  return call;
}

absl::StatusOr<v1::ActiveCall> CallManager::SetHold(const std::string& call_id,
                                                    const std::string& leg_id, bool hold,
                                                    const std::string& by_user) {
  SB_ASSIGN_OR_RETURN(CallPtr call, Controllable(call_id));
  Branch* answered = call->answered;
  // The held party: the named leg, else the customer (the caller of a trunk call, the callee of
  // an agent's outbound call).
  bool caller_held;
  if (leg_id.empty()) {
    if (call->caller_user_id.empty()) {
      caller_held = true;
    } else if (answered->target.agent_user_id().empty()) {
      caller_held = false;
    } else {
      return app::FieldError("leg_id", "REQUIRED",
                             "a call between two agents has no customer leg: name the leg");
    }
  } else if (leg_id == call->a_leg_id || leg_id == answered->leg_id) {
    caller_held = leg_id == call->a_leg_id;
  } else {
    return app::FieldError("leg_id", "NOT_FOUND",
                           absl::StrCat("call ", call_id, " has no answered leg ", leg_id));
  }
  const bool held = call->state == cv1::CALL_STATE_HELD;
  if (hold && held) return absl::FailedPreconditionError("the call is on hold already");
  if (!hold && !held) return absl::FailedPreconditionError("the call is not on hold");
  if (call->offer.empty() || answered->sdp.empty()) {
    return absl::FailedPreconditionError("the call has no session description to change");
  }
  if (!call->pending_in.empty()) {
    return absl::FailedPreconditionError("an offer/answer exchange is in progress; try again");
  }
  if (call->own_reinvites > 0) {
    return absl::AbortedError(
        "the previous hold or resume is still being negotiated with the phones; try again");
  }
  // There is no music yet: both sides stop sending (a=inactive) and get their own directions
  // back on resume. Each side sees the description it has (media's, when anchored: the ports
  // stay) or the other side's (end to end), restamped; the phones' answers go to media as their
  // legs' new descriptions, so that silence on hold is no RTP timeout.
  if (call->media && (call->a_sdp_sent.empty() || answered->sdp_sent.empty())) Unanchor(call);
  const bool anchored = call->media;
  const std::string direction = hold ? "inactive" : "sendrecv";
  const std::string to_caller =
      WithDirection(anchored ? call->a_sdp_sent : answered->sdp, direction);
  const std::string to_target =
      WithDirection(anchored ? answered->sdp_sent : call->offer, direction);
  auto reinvite = [this, weak = std::weak_ptr<Call>(call), anchored](
                      DialogPtr dialog, std::string tag, std::string transport,
                      std::string content_type,
                      std::string body) -> absl::StatusOr<ClientTransactionPtr> {
    auto sent = dialog->Send(
        {.method = "INVITE",
         .contact = stack_.ContactFor(transport),
         .content_type = std::move(content_type),
         .body = std::move(body)},
        [this, dialog, weak, anchored, tag](const Message& response) {
          if (response.status() < 200) return;
          CallPtr c = weak.lock();
          if (c != nullptr) --c->own_reinvites;
          if (response.status() >= 300) {
            spdlog::info("sip: hold/resume re-INVITE refused: {}", response.status());
            return;
          }
          dialog->Ack(response);
          if (c == nullptr || c->ended || !anchored || !c->media || response.body().empty()) {
            return;
          }
          MediaOffer(c, tag, std::string(response.body()), response.source_ip(),
                     [id = c->id](absl::StatusOr<std::string> done) {
                       if (!done.ok()) {
                         spdlog::warn("sip: call {}: media did not take a held description: {}", id,
                                      std::string(done.status().message()));
                       }
                     });
        });
    if (sent.ok()) {
      if (CallPtr c = weak.lock()) ++c->own_reinvites;
    }
    return sent;
  };
  auto a = reinvite(call->a_dialog, call->a_leg_id, call->a_transport == "tcp" ? "tcp" : "udp",
                    answered->sdp_type, ToCaller(*call, to_caller));
  if (a.ok()) call->a_requests.push_back(*a);
  auto b = reinvite(answered->dialog, answered->leg_id, "udp", call->offer_type,
                    ToBranch(*answered, to_target));
  if (b.ok()) answered->other.push_back(*b);
  if (!a.ok() || !b.ok()) return absl::InternalError("cannot send the re-INVITEs");
  call->state = hold ? cv1::CALL_STATE_HELD : cv1::CALL_STATE_ANSWERED;
  cv1::Event e = NewEvent(*call, hold ? cv1::EVENT_TYPE_CALL_HELD : cv1::EVENT_TYPE_CALL_RESUMED);
  e.mutable_call()->set_leg_id(caller_held ? call->a_leg_id : answered->leg_id);
  if (hold) {
    e.mutable_call()->mutable_held()->set_by_user_id(by_user);
  } else {
    e.mutable_call()->mutable_resumed()->set_by_user_id(by_user);
  }
  if (!by_user.empty()) e.add_user_ids(by_user);
  Publish(call, {e});
  return Snapshot(*call, options_.node_id);
}

absl::StatusOr<v1::ActiveCall> CallManager::Transfer(const v1::TransferCallRequest& request) {
  SB_ASSIGN_OR_RETURN(CallPtr call, Controllable(request.call_id()));
  Branch* agent = call->answered;
  if (!request.leg_id().empty() && request.leg_id() != agent->leg_id) {
    return absl::FailedPreconditionError(
        request.leg_id() == call->a_leg_id
            ? "transferring away from the calling leg is not supported yet; name the answered leg"
            : absl::StrCat("call ", call->id, " has no answered leg ", request.leg_id()));
  }
  if (agent->target.agent_user_id().empty()) {
    return absl::FailedPreconditionError("only an agent's leg is transferred");
  }
  const std::string& by_user = agent->target.agent_user_id();
  rv1::TransferRequested t;
  switch (request.target_case()) {
    case v1::TransferCallRequest::kUserId:
      t.set_user_id(request.user_id());
      break;
    case v1::TransferCallRequest::kExtension:
      t.set_extension(request.extension());
      break;
    case v1::TransferCallRequest::kNumber:
      t.set_number(request.number());
      break;
    case v1::TransferCallRequest::kConsultCallId: {
      CallPtr consult = Find(request.consult_call_id());
      if (consult == nullptr || consult->tenant_id != call->tenant_id || consult == call) {
        return app::FieldError(
            "consult_call_id", "NOT_FOUND",
            absl::StrCat("no call ", request.consult_call_id(), " on this node"));
      }
      if (consult->answered == nullptr || consult->transferor != nullptr) {
        return absl::FailedPreconditionError("the consultation call is not answered");
      }
      const bool agents = consult->caller_user_id == by_user ||
                          consult->answered->target.agent_user_id() == by_user;
      if (!agents) {
        return app::FieldError("consult_call_id", "NOT_THE_AGENTS",
                               "the consultation call is not the transferring agent's");
      }
      StartJoin(call, agent, consult);
      return Snapshot(*call, options_.node_id);
    }
    case v1::TransferCallRequest::kQueueId:
    case v1::TransferCallRequest::kFlowId:
      return absl::UnimplementedError("transfers to queues and call flows come with issue #7");
    case v1::TransferCallRequest::TARGET_NOT_SET:
      return app::FieldError("target", "REQUIRED",
                             "name a user_id, extension, number or consult_call_id");
  }
  RequestBlindTransfer(call, agent, std::move(t));
  return Snapshot(*call, options_.node_id);
}

// ---------------------------------------------------------------------------------------------
// Click-to-call
//
// The agent's phone is rung with a placeholder offer (inactive audio on the discard port); its
// answer carries its real media, which is offered to the destination along routing's ring plan.
// When the destination answers, the agent's phone is re-INVITEd with the destination's answer,
// and should the phone then answer with other media, the destination is re-INVITEd with that.
// Until then the agent hears nothing: ringback needs the media service (issue #6).

absl::StatusOr<std::string> CallManager::Originate(OriginateRequest request) {
  const rv1::RoutingInstruction& instruction = request.routed.instruction();
  if (!instruction.has_ring() || instruction.ring().steps_size() == 0) {
    return absl::FailedPreconditionError("routing gave no ring plan for the destination");
  }
  if (active_calls() >= options_.max_calls) {
    return absl::UnavailableError("this SIP node is at its call limit; try again");
  }
  auto call = std::make_shared<Call>();
  call->id = request.call_id.empty() ? NewUuid() : request.call_id;
  call->created_at = clock_.Now();
  call->tenant_id = request.tenant_id;
  call->originated = true;
  call->auto_answer = request.auto_answer;
  call->direction = request.routed.direction() == cv1::CALL_DIRECTION_UNSPECIFIED
                        ? cv1::CALL_DIRECTION_OUTBOUND
                        : request.routed.direction();
  call->caller_user_id = request.user_id;
  call->caller_extension = request.extension;
  call->from_number = request.extension;
  call->dialled = request.dialled;
  call->to_number = ToNumber(*call, instruction);
  call->a_leg_id = NewUuid();
  call->a_transport = "udp";
  call->max_duration = options_.max_call_duration;
  call->pending_instruction = instruction;
  call->state = cv1::CALL_STATE_RINGING;
  call->offer_type = kSdp;  // what the agent is offered (and, once it answers, its answer)
  call->offer = PlaceholderOffer(stack_.public_host());
  calls_[call->id] = call;

  cv1::Event created = NewEvent(*call, cv1::EVENT_TYPE_CALL_CREATED);
  auto* c = created.mutable_call()->mutable_created();
  c->set_origin(cv1::CallEvent::Created::ORIGIN_CLICK_TO_CALL);
  c->set_caller_user_id(call->caller_user_id);
  c->set_from_number(call->from_number);
  c->set_to_number(call->to_number);
  created.add_user_ids(call->caller_user_id);
  Publish(call, {created});

  std::weak_ptr<Call> weak = call;
  call->originate_timer = stack_.After(request.ring_timeout, [this, weak] {
    auto c = weak.lock();
    if (c != nullptr && !c->ended && c->a_dialog == nullptr) {
      End(c, cv1::HANGUP_CAUSE_NO_ANSWER, cv1::HANGUP_PARTY_SYSTEM, 408, "AGENT_NO_ANSWER");
    }
  });
  const std::string call_id = call->id;
  const std::string tenant = call->tenant_id;
  const std::string extension = request.extension;
  std::weak_ptr<bool> alive = alive_;
  const bool queued = executor_.TrySubmit([this, alive, call_id, tenant, extension] {
    auto bindings = registrations_.Lookup(tenant, extension, clock_.Now());
    if (alive.expired()) return;
    stack_.Post([this, alive, call_id, bindings = std::move(bindings)]() mutable {
      if (!alive.expired()) RingOriginator(call_id, std::move(bindings));
    });
  });
  if (!queued) {
    End(call, cv1::HANGUP_CAUSE_OVERLOAD, cv1::HANGUP_PARTY_SYSTEM, 503, "OVERLOAD");
    return absl::UnavailableError("this SIP node is overloaded; try again");
  }
  return call->id;
}

void CallManager::RingOriginator(const std::string& call_id,
                                 absl::StatusOr<std::vector<v1::Registration>> bindings) {
  CallPtr call = Find(call_id);
  if (call == nullptr) return;
  if (!bindings.ok() || bindings->empty()) {
    End(call, cv1::HANGUP_CAUSE_USER_UNAVAILABLE, cv1::HANGUP_PARTY_SYSTEM, 480,
        bindings.ok() ? "AGENT_NOT_REGISTERED" : "REGISTRATIONS_UNAVAILABLE");
    return;
  }
  // The agent's phone shows whom it is about to call.
  const std::string shown = call->to_number.empty() ? "anonymous" : call->to_number;
  const std::string from = absl::StrCat(QuoteDisplay(absl::StrCat("Call ", shown)), " <sip:", shown,
                                        "@", stack_.public_host(), ">");
  std::weak_ptr<Call> weak = call;
  for (const v1::Registration& r : *bindings) {
    auto dialog = Dialog::Create(stack_, {.from = from, .to = absl::StrCat("<", r.aor(), ">")},
                                 [this, weak](ServerTransactionPtr in) {
                                   if (auto c = weak.lock())
                                     OnALegRequest(c, std::move(in));
                                   else
                                     in->Reply(481);
                                 });
    if (!dialog.ok()) continue;
    std::vector<Header> headers = {{"X-SB-Call-ID", call->id}};
    if (call->auto_answer) {
      headers.push_back(
          {"Call-Info", absl::StrCat("<sip:", stack_.public_host(), ">;answer-after=0")});
    }
    const size_t fork = call->forks.size();
    const std::string next_hop = NextHop(r);
    const bool tcp = absl::StrContains(next_hop, "transport=tcp");
    auto sent = (*dialog)->Send({.method = "INVITE",
                                 .request_uri = r.contact_uri(),
                                 .next_hop = next_hop,
                                 .headers = std::move(headers),
                                 .contact = stack_.ContactFor(tcp ? "tcp" : "udp"),
                                 .content_type = kSdp,
                                 .body = ToCaller(*call, call->offer)},
                                [this, weak, fork](const Message& response) {
                                  if (auto c = weak.lock()) OnOriginatorResponse(c, fork, response);
                                });
    if (!sent.ok()) continue;
    call->forks.push_back({.dialog = *dialog, .invite = *sent});
    if (tcp) call->a_transport = "tcp";
  }
  if (call->forks.empty()) {
    End(call, cv1::HANGUP_CAUSE_NETWORK_FAILURE, cv1::HANGUP_PARTY_SYSTEM, 500,
        "AGENT_UNREACHABLE");
  }
}

void CallManager::OnOriginatorResponse(const CallPtr& call, size_t fork, const Message& response) {
  Call::Fork& f = call->forks[fork];
  const int code = response.status();
  if (code < 200) {
    if (code != 100 && !call->provisional_sent && !call->ended) {
      call->provisional_sent = true;
      Publish(call, {});  // the agent's leg rings (live state)
    }
    return;
  }
  if (code >= 300) {
    f.done = true;
    if (call->ended || call->a_dialog != nullptr) return;
    if (std::all_of(call->forks.begin(), call->forks.end(), [](const auto& x) { return x.done; })) {
      End(call, CauseForCode(code), cv1::HANGUP_PARTY_AGENT, code, "AGENT_DID_NOT_ANSWER");
    }
    return;
  }
  f.dialog->Establish(response);
  f.dialog->Ack(response);
  if (f.answered) return;  // a retransmitted 2xx
  f.answered = true;
  f.done = true;
  if (call->ended || call->a_dialog != nullptr) {
    // Another of the agent's phones answered first (or the call is over): hang this one up.
    auto bye = f.dialog->Send({.method = "BYE"}, nullptr);
    if (bye.ok()) call->a_requests.push_back(*bye);
    return;
  }
  call->a_dialog = f.dialog;
  call->originate_timer.reset();
  for (auto& other : call->forks) {
    if (!other.done && other.invite != nullptr) other.invite->Cancel();
  }
  if (response.body().empty()) {
    End(call, cv1::HANGUP_CAUSE_INTERNAL_ERROR, cv1::HANGUP_PARTY_SYSTEM, 0, "NO_AGENT_MEDIA");
    return;
  }
  // The agent's media, offered to the destination as a two-way stream.
  call->offer_type = response.content_type();
  call->offer = WithDirection(response.body(), "sendrecv");
  Apply(call, call->pending_instruction);
}

void CallManager::ConnectOriginator(const CallPtr& call, Branch* answered) {
  std::weak_ptr<Call> weak = call;
  auto sent = call->a_dialog->Send(
      {.method = "INVITE",
       .contact = stack_.ContactFor(call->a_transport),
       .content_type = answered->sdp_type,
       .body = ToCaller(*call, answered->sdp)},
      [this, weak, answered](const Message& response) {
        auto c = weak.lock();
        if (c == nullptr || response.status() < 200) return;
        if (response.status() >= 300) {
          spdlog::warn("sip: call {}: the agent's phone refused the destination's media: {}", c->id,
                       response.status());
          End(c, cv1::HANGUP_CAUSE_NETWORK_FAILURE, cv1::HANGUP_PARTY_SYSTEM, 0, "MEDIA_REFUSED");
          return;
        }
        c->a_dialog->Ack(response);
        const std::string agent(response.body());
        if (agent.empty() || c->ended || SameMedia(agent, c->offer)) return;
        // The phone answers from elsewhere than it first did: tell the destination.
        c->offer = agent;
        auto update = answered->dialog->Send(
            {.method = "INVITE",
             .contact = stack_.ContactFor("udp"),
             .content_type = response.content_type(),
             .body = ToBranch(*answered, agent)},
            [weak, answered](const Message& r) {
              if (r.status() >= 200 && r.status() < 300 && weak.lock() != nullptr) {
                answered->dialog->Ack(r);
              }
            });
        if (update.ok()) answered->other.push_back(*update);
      });
  if (!sent.ok()) {
    End(call, cv1::HANGUP_CAUSE_INTERNAL_ERROR, cv1::HANGUP_PARTY_SYSTEM, 0, "REINVITE_FAILED");
    return;
  }
  call->a_requests.push_back(*sent);
}

// ---------------------------------------------------------------------------------------------
// The end

void CallManager::RejectCaller(const CallPtr& call, int code, cv1::HangupCause cause,
                               const std::string& reason) {
  End(call, cause, cv1::HANGUP_PARTY_SYSTEM, code, reason);
}

void CallManager::End(const CallPtr& call, cv1::HangupCause cause, cv1::HangupParty by,
                      int sip_code, const std::string& reason, Side side) {
  if (call->ended) return;
  const bool was_answered = call->answered != nullptr;
  // The caller: a final answer if none went out yet, else a BYE unless they hung up.
  if (call->invite != nullptr && call->invite->status() < 200 && call->a_final == 0) {
    const int code = sip_code >= 300 ? sip_code : 480;
    call->a_final = code;
    call->invite->Reply(code);
  } else if ((was_answered || call->originated) && side != Side::kCaller &&
             call->a_dialog != nullptr) {
    auto bye = call->a_dialog->Send({.method = "BYE"}, nullptr);
    if (bye.ok()) call->a_requests.push_back(*bye);
  }
  // The targets: CANCEL what still rings, BYE the one that answered unless it hung up.
  for (auto& b : call->branches) {
    if (b->gone) continue;  // a transferor already hung up (or was hung up)
    if (b->answered) {
      if (side != Side::kCallee) {
        auto bye = b->dialog->Send({.method = "BYE"}, nullptr);
        if (bye.ok()) b->other.push_back(*bye);
      }
    } else if (!b->done && b->invite != nullptr) {
      b->invite->Cancel();
      b->done = true;
    }
  }
  for (auto& fork : call->forks) {
    if (!fork.done && fork.invite != nullptr) fork.invite->Cancel();
    fork.done = true;
  }
  call->originate_timer.reset();
  for (auto& in : call->pending_in) in->Reply(481);
  call->pending_in.clear();
  // A caller refused or cancelled has no dialog with us: drop its leg now, so that a retried
  // INVITE (same Call-ID and From tag, e.g. after a digest challenge) is a new call.
  if (call->a_final >= 300) call->a_dialog.reset();
  call->ended = true;
  call->state = cv1::CALL_STATE_ENDED;
  call->step_timer.reset();
  call->max_timer.reset();
  call->session_timer.reset();
  for (auto& ts : call->targets) ts.delay.reset();
  Unanchor(call);

  if (!call->tenant_id.empty()) {
    cv1::Event ended = NewEvent(*call, cv1::EVENT_TYPE_CALL_ENDED);
    auto* e = ended.mutable_call()->mutable_ended();
    e->set_cause(cause);
    e->set_sip_code(sip_code);
    e->set_reason(reason);
    e->set_hangup_by(by);
    e->set_outcome(OutcomeFor(*call, cause));
    Publish(call, {ended}, /*ended=*/true);
    rv1::ReportCallEventRequest report;
    auto* ce = report.mutable_call_ended();
    ce->set_cause(cause);
    ce->set_hangup_by(by);
    ce->set_sip_code(sip_code);
    Report(call, std::move(report));
  }
  // Keep the call's transactions for the time SIP needs to finish them (CANCEL/BYE answers,
  // ACK of the caller's final response), then let it go.
  const std::string id = call->id;
  ++lingering_;
  call->lingers = true;
  call->linger = stack_.After(absl::Seconds(32), [this, id] { Forget(id); });
}

absl::Status CallManager::Hangup(const std::string& call_id, cv1::HangupCause cause) {
  CallPtr call = Find(call_id);
  if (call == nullptr) return absl::NotFoundError(absl::StrCat("call ", call_id, " not found"));
  End(call, cause, cv1::HANGUP_PARTY_SYSTEM, call->answered != nullptr ? 0 : 480,
      "HANGUP_REQUESTED");
  return absl::OkStatus();
}

void CallManager::CloseAll() {
  std::vector<CallPtr> all;
  for (auto& [id, call] : calls_) all.push_back(call);
  for (auto& call : all) {
    End(call, cv1::HANGUP_CAUSE_ADMINISTRATIVE, cv1::HANGUP_PARTY_SYSTEM, 503, "SHUTDOWN");
  }
  calls_.clear();
  lingering_ = 0;
}

void CallManager::Forget(const std::string& call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  if (it->second->lingers) --lingering_;
  calls_.erase(it);
}

// ---------------------------------------------------------------------------------------------
// State and events

cv1::Event CallManager::NewEvent(const Call& call, cv1::EventType type) const {
  cv1::Event e;
  const absl::Time now = clock_.Now();
  e.set_event_id(NewUuidV7(now));
  e.set_type(type);
  e.set_tenant_id(call.tenant_id);
  e.set_call_id(call.id);
  *e.mutable_occurred_at() = Stamp(now);
  e.set_source(absl::StrCat("sip/", options_.node_id));
  e.set_queue_id(call.queue_id);
  e.set_project_id(call.project_id);
  auto* c = e.mutable_call();
  c->set_direction(call.direction);
  c->set_node_id(options_.node_id);
  return e;
}

void CallManager::Publish(const CallPtr& call, std::vector<cv1::Event> events, bool ended) {
  if (call->tenant_id.empty()) return;
  if (!state_.Write(Snapshot(*call, options_.node_id), std::move(events), ended)) {
    spdlog::error("sip: call state queue full; call {} change lost", call->id);
  }
}

void CallManager::Report(const CallPtr& call, rv1::ReportCallEventRequest req) {
  req.set_call_id(call->id);
  req.set_node_id(options_.node_id);
  req.set_tenant_id(call->tenant_id);
  req.set_instruction_sequence(call->sequence);
  *req.mutable_occurred_at() = Stamp(clock_.Now());
  // Fire and forget, without a worker thread: routing's answer to these reports matters from
  // issue #7 on (queues).
  peers_.ReportCallEventAsync(std::move(req));
}

}  // namespace sb::sip
