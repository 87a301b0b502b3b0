#pragma once

// CallManager: the back-to-back user agent. Each call has an A-leg (the caller's INVITE, which we
// answer as a UAS) and B-legs (INVITEs we send, as a UAC, to the targets of routing's ring
// plan). Signalling is relayed between them; nothing of one leg's dialog (Call-ID, tags, CSeq,
// Via, Record-Route) leaks into the other.
//
// Everything here runs on the SIP loop thread, except the blocking lookups (org, routing, Redis
// bindings), which go to the worker executor and come back to the loop with Stack::Post. Calls are
// found by id after such a round trip: a call that ended meanwhile is simply gone.
//
// What is built (issue #5, first part): calls from agents' phones (digest-authenticated with a
// 407 challenge; internal to another extension, or outbound after routing's authorisation with
// the PIN as a dialled prefix), inbound calls from trunks to DIDs, routing's ring plans
// with sequential steps, parallel targets, delayed targets and step timeouts, ringing the
// registered contacts of extensions (NAT-safe: sent to the address the phone registered from) and
// external numbers through trunks, first 2xx wins and the other branches get CANCEL, caller CANCEL,
// BYE from either side, re-INVITE/UPDATE/INFO relayed across the legs, a maximum call duration,
// live state and events, blind transfer by REFER from the agent's phone (the target rung without
// SDP, its offer handed to the caller in a re-INVITE: RFC 3725; NOTIFY sipfrag progress), attended
// transfer (REFER with Replaces naming the agent's consultation call on this node: the target's
// leg joins the call), click-to-call, session timers (RFC 4028, the caller as refresher).
//
// Anchored media (issue #6, CallManagerOptions::anchor_media): the caller's offer goes to media
// with routing's question, on the same worker, and every branch gets media's rewrite; answers
// (183, 200), relayed re-INVITEs and UPDATEs, and the console's hold and resume go through media
// before they reach the other leg, one operation of a call at a time and in order (MediaStep).
// A media failure refuses a new call (488 for a description media cannot anchor, 503 when media
// is unavailable) and ends an answered one; an RTP timeout from media ends the call
// (MEDIA_TIMEOUT). Transfers, click-to-call and delayed-offer calls are not anchored yet: a
// transfer hands the descriptions end to end and releases the call's media session.

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/bounded_executor.h"
#include "libs/common/clock.h"
#include "libs/common/token_bucket.h"
#include "libs/sip/stack.h"
#include "services/sip/call_state.h"
#include "services/sip/peers.h"
#include "services/sip/registrar.h"
#include "services/sip/registrations.h"

namespace sb::sip {

struct CallManagerOptions {
  std::string node_id;
  // Ring time of a step when routing gives none.
  absl::Duration default_step_timeout = absl::Seconds(30);
  // Hard limit on an answered call when routing gives none.
  absl::Duration max_call_duration = absl::Hours(4);
  // Calls in progress on this node past which new INVITEs get 503 (ended calls that linger for
  // their last transactions do not count).
  size_t max_calls = 10'000;
  // Admission by queueing delay: while new calls wait longer than this for their routing answer
  // (a moving average) and more than `min_routing_backlog` wait, new INVITEs get 503 at once
  // instead of joining a queue the caller would hang up in.
  absl::Duration max_routing_delay = absl::Milliseconds(250);
  size_t min_routing_backlog = 16;
  // New calls waiting for routing past which INVITEs get 503 whatever the delay.
  size_t max_routing_backlog = 2'048;
  // Admission by rate: new INVITEs past this many a second (bursts of up to a second's worth)
  // get 503 at once, before any lookup. Zero: no limit. Set it at what the node is measured to
  // carry, so that past capacity the calls admitted still complete.
  int64_t max_cps = 0;
  // Retry-After on 503s.
  absl::Duration retry_after = absl::Seconds(5);
  // Shortest session interval a caller may ask for (RFC 4028 Min-SE; shorter: 422). The RFC's
  // floor is 90 s; tests set less.
  absl::Duration min_session_expires = absl::Seconds(90);
  // Anchored media: each call's descriptions go through the media service (SipPeers'
  // ProcessOffer/ProcessAnswer), so its audio flows through media's relay.
  bool anchor_media = true;
};

struct Call;
struct Branch;

// Click-to-call: ring the agent's phone, then dial the destination from it.
struct OriginateRequest {
  std::string call_id;  // as routing was told
  std::string tenant_id;
  std::string user_id;
  std::string extension;    // the agent's, whose registered phones ring first
  std::string destination;  // as shown: the number or extension, never with a PIN
  std::string dialled;      // as routing saw it (with the PIN prefix when one was given)
  absl::Duration ring_timeout = absl::Seconds(30);
  bool auto_answer = false;  // Call-Info answer-after=0 for phones that take it
  // Routing's answer for the agent dialling `dialled` (a ring plan to the destination).
  rv1::RouteCallResponse routed;
};

class CallManager {
 public:
  CallManager(Stack& stack, BoundedExecutor& executor, SipPeers& peers,
              RegistrationStore& registrations, Registrar& registrar, CallStateWriter& state,
              const Clock& clock, CallManagerOptions options);
  ~CallManager();

  // An INVITE outside any dialog. Loop thread.
  void OnInvite(ServerTransactionPtr tx);
  // Ends every call (shutdown, node drain). Loop thread.
  void CloseAll();
  // Ends one call at an operator's or service's request. NotFound when it is not (or no longer)
  // on this node. Loop thread.
  absl::Status Hangup(const std::string& call_id, cv1::HangupCause cause);
  // Puts a call on hold or takes it off (both sides re-INVITEd, a=inactive while held); `leg_id`
  // empty: the customer's leg. NotFound, FailedPrecondition, InvalidArgument. Loop thread.
  absl::StatusOr<v1::ActiveCall> SetHold(const std::string& call_id, const std::string& leg_id,
                                         bool hold, const std::string& by_user);
  // Transfers the answered agent's caller: blind (routing rings the target as if the agent
  // dialled it) or attended (joins a consultation call of the agent's). Loop thread.
  absl::StatusOr<v1::ActiveCall> Transfer(const v1::TransferCallRequest& request);
  // Starts a click-to-call and returns its call id; the call goes on by itself (events tell how).
  // Loop thread.
  absl::StatusOr<std::string> Originate(OriginateRequest request);
  // An event from the media service (RtpTimeout: the call is over). Loop thread.
  void OnMediaEvent(const mv1::MediaEvent& event);
  // Loop thread.
  size_t active_calls() const { return calls_.size() - lingering_; }
  // This node's admission state (GetOverloadStatus, the node's heartbeat). Loop thread.
  v1::OverloadStatus Overload();
  // New calls waiting for their routing answer, and how long they waited lately. Loop thread.
  size_t routing_backlog() const { return routing_backlog_; }
  absl::Duration routing_delay() const { return routing_delay_; }

 private:
  friend struct Call;
  using CallPtr = std::shared_ptr<Call>;

  // Who placed a new call: a trunk (with the number it called) or an agent's phone.
  struct Origin {
    bool phone = false;
    std::string tenant_id;
    std::string user_id;
    std::string extension;
    ov1::MatchInboundTrunkResponse match;
  };
  CallPtr Find(const std::string& call_id) const;
  // Drops a call from calls_ (keeping lingering_ right).
  void Forget(const std::string& call_id);
  // A new call's routing answer (or refusal) came back.
  void RoutingAnswered(absl::Time since);
  void Refuse(const std::string& call_id, const SipAnswer& refusal);
  void Routed(const std::string& call_id, absl::StatusOr<rv1::RouteCallResponse> routed,
              Origin origin, std::optional<absl::StatusOr<std::string>> media_offer);
  void Apply(const CallPtr& call, const rv1::RoutingInstruction& instruction);
  void StartStep(const CallPtr& call, size_t step);
  void LaunchTarget(const CallPtr& call, size_t target_index);
  void LaunchBranches(const std::string& call_id, size_t step, size_t target_index,
                      absl::StatusOr<std::vector<v1::Registration>> bindings,
                      absl::StatusOr<ov1::Trunk> trunk);
  void SendBranch(const CallPtr& call, size_t target_index, const std::string& request_uri,
                  const std::string& next_hop, const std::string& to, bool mobile);
  void OnBranchResponse(const CallPtr& call, Branch* branch, const Message& response);
  void BranchFailed(const CallPtr& call, Branch* branch, int code);
  // The caller's 200 (with the session timer's headers, and the timer armed).
  void AnswerCaller(const CallPtr& call, const std::string& content_type, std::string body);
  void CheckStep(const CallPtr& call);
  void StepOver(const CallPtr& call);
  void RingPlanFailed(const CallPtr& call);
  void OnCallerCancel(const CallPtr& call);
  // Click-to-call: the agent's phones ring (`bindings`), the first to answer is the call's caller.
  void RingOriginator(const std::string& call_id,
                      absl::StatusOr<std::vector<v1::Registration>> bindings);
  void OnOriginatorResponse(const CallPtr& call, size_t fork, const Message& response);
  // The destination answered a click-to-call: the agent's phone gets its description.
  void ConnectOriginator(const CallPtr& call, Branch* answered);
  void OnALegRequest(const CallPtr& call, ServerTransactionPtr tx);
  void OnBLegRequest(const CallPtr& call, Branch* branch, ServerTransactionPtr tx);
  // RFC 4028 with the caller as refresher: the headers of answers to it, and the timer that
  // ends the call without a refresh.
  std::vector<Header> SessionTimerHeaders(const Call& call) const;
  void ArmSessionTimer(const CallPtr& call);
  void Relay(const CallPtr& call, bool from_caller, ServerTransactionPtr tx);
  // Relay's two halves: the request to the other leg (its description `body` ready, through media
  // when `anchored`), and the other leg's final answer back to the requester.
  struct RelayedAnswer {
    int status = 0;
    std::string phrase;
    std::string content_type;
    std::string body;
  };
  void ForwardRelayed(const CallPtr& call, bool from_caller, ServerTransactionPtr tx,
                      std::string body, bool anchored);
  void ReplyRelayed(const CallPtr& call, bool from_caller, const ServerTransactionPtr& in,
                    RelayedAnswer answer);
  void OnRefer(const CallPtr& call, Branch* agent, ServerTransactionPtr tx);
  void NotifyTransferor(const CallPtr& call, Branch* transferor, int status, bool final);
  void CompleteTransfer(const CallPtr& call, Branch* target, const Message& answer);
  // The transfer is done: final NOTIFY to the transferor, who leaves the call.
  void RetireTransferor(const CallPtr& call);
  cv1::Event AnsweredEvent(const Call& call, const Branch& b) const;
  void OnAttendedRefer(const CallPtr& call, Branch* agent, ServerTransactionPtr tx);
  // Asks routing where `agent` transfers the caller to, then rings it.
  void RequestBlindTransfer(const CallPtr& call, Branch* agent, rv1::TransferRequested t);
  // A call that call control may change: answered, not being transferred.
  absl::StatusOr<CallPtr> Controllable(const std::string& call_id) const;
  // Attended transfer: re-wires the media of `call`'s caller and the other party of `consult`
  // (which `agent`, answered on `call`, is on), then joins them.
  void StartJoin(const CallPtr& call, Branch* agent, const CallPtr& consult);
  // Moves the transfer target's leg of `consult` into `call` in place of the transferor: `peer`
  // (the consultation's answered target), or, when null, the consultation's caller. `sdp` is the
  // target's current description.
  void JoinConsultation(const CallPtr& call, const CallPtr& consult, Branch* peer,
                        const std::string& sdp_type, const std::string& sdp);
  // Anchored media. Media(): queues a step after the call's earlier ones. MediaOffer/MediaAnswer:
  // `sdp` from leg `from_tag` (its SIP messages from `signalling_ip`) to media; `then` gets the
  // description for the other leg. Unanchor(): the call's media session is released (now, or
  // after the steps queued) and descriptions go end to end from here on.
  using MediaThen = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;
  void Media(const CallPtr& call, absl::AnyInvocable<absl::StatusOr<std::string>()> rpc,
             MediaThen then);
  void NextMediaStep(const std::string& call_id);
  void MediaOffer(const CallPtr& call, const std::string& from_tag, std::string sdp,
                  const std::string& signalling_ip, MediaThen then);
  void MediaAnswer(const CallPtr& call, const std::string& from_tag, const std::string& to_tag,
                   std::string sdp, const std::string& signalling_ip, MediaThen then);
  template <typename Request, typename Response>
  void MediaRewrite(const CallPtr& call, Request req,
                    absl::StatusOr<Response> (SipPeers::*rpc)(const Request&), MediaThen then);
  void Unanchor(const CallPtr& call);
  // Routing said to record: media records the answered call (customer left, agent right).
  void StartRecording(const CallPtr& call, const Branch& answered);
  // The SIP answer to a media failure on an offer: 488 for a description media cannot anchor,
  // 503 when it is unavailable.
  static int MediaFailureCode(const absl::Status& status);
  // A description for one leg, with our o= line for it (libs/sip/sdp.h).
  std::string ToCaller(Call& call, std::string_view sdp) const;
  std::string ToBranch(Branch& branch, std::string_view sdp) const;
  void TransferFailed(const CallPtr& call, int code);
  void RejectCaller(const CallPtr& call, int code, cv1::HangupCause cause,
                    const std::string& reason);
  // Which leg hung up (it gets no BYE): the caller's, the answering target's, or neither.
  enum class Side { kSystem, kCaller, kCallee };
  // Ends the call: BYE/CANCEL to whatever is still up, events, routing told, state cleared.
  void End(const CallPtr& call, cv1::HangupCause cause, cv1::HangupParty by, int sip_code,
           const std::string& reason, Side side = Side::kSystem);
  void Publish(const CallPtr& call, std::vector<cv1::Event> events, bool ended = false);
  cv1::Event NewEvent(const Call& call, cv1::EventType type) const;
  void Report(const CallPtr& call, rv1::ReportCallEventRequest req);

  Stack& stack_;
  BoundedExecutor& executor_;
  SipPeers& peers_;
  RegistrationStore& registrations_;
  Registrar& registrar_;
  CallStateWriter& state_;
  const Clock& clock_;
  const CallManagerOptions options_;
  absl::flat_hash_map<std::string, CallPtr> calls_;
  size_t lingering_ = 0;  // ended calls in calls_
  size_t routing_backlog_ = 0;
  // New calls wait too long for routing, or too many wait: new INVITEs get 503.
  bool RoutingCongested() const;
  uint64_t recordings_failed_ = 0;                     // StartRecording refusals
  uint64_t invites_total_ = 0;                         // new INVITEs seen
  uint64_t invites_rejected_ = 0;                      // of which refused with 503 (overload)
  TokenBucket new_calls_;                              // --sip_max_cps
  absl::Time rate_refused_at_ = absl::InfinitePast();  // the last INVITE new_calls_ refused
  // The INVITE rate over the time between two Overload() calls.
  uint64_t rate_invites_ = 0;
  absl::Time rate_since_ = absl::InfinitePast();
  double invite_rate_ = 0;
  absl::Duration routing_delay_;  // moving average of INVITE -> routing answer
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sb::sip
