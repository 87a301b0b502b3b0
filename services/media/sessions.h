#pragma once

// Sessions: media's offer/answer state per call, over the RtpRelay (in the spirit of rtpengine's
// control protocol). A call's first offer creates its LegPair: side 0 is the offerer (its
// from-tag), side 1 the answerer. The offer's rewritten SDP (for the answerer) names side 1's port,
// the answer's (for the offerer) side 0's. Either side may offer again later (re-INVITE: hold, a
// moved stream): the ports stay, the offerer's remote address and direction change.
//
// Forks: every branch of a forked call gets the same rewritten offer; the answer that comes last
// (the one sip accepted) names the answerer. Deleting the answerer's tag alone frees that side for
// a new answer (a transfer's new party); deleting the offerer's tag or the call frees both.
//
// Thread-safe. Timeouts from the relay become MediaEvents for the subscribers of
// StreamMediaEvents (Subscribe).

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/clock.h"
#include "services/media/rtp_relay.h"
#include "services/media/sdp_anchor.h"
#include "switchboard/media/v1/media_service.pb.h"

namespace sb::media {

namespace v1 = ::switchboard::media::v1;

struct SessionsOptions {
  std::string node_id;
  // The address put in rewritten SDP (what phones and carriers can reach); empty: the relay's
  // bind address.
  std::string advertised_address;
  // Events a subscriber may have waiting before the oldest are dropped (a stuck subscriber must
  // not hold memory without bound).
  size_t subscriber_queue = 10'000;
};

class Sessions {
 public:
  Sessions(RtpRelay& relay, const Clock& clock, SessionsOptions options);
  ~Sessions();

  absl::StatusOr<v1::ProcessOfferResponse> Offer(const v1::ProcessOfferRequest& request);
  absl::StatusOr<v1::ProcessAnswerResponse> Answer(const v1::ProcessAnswerRequest& request);
  // Idempotent: an unknown call or tag releases nothing.
  v1::DeleteSessionResponse Delete(const v1::DeleteSessionRequest& request);
  absl::StatusOr<v1::MediaSession> Get(const std::string& call_id);
  v1::MediaNodeStats Stats();
  // Releases every session (the node stops), telling the release handler of each.
  void CloseAll();
  // Releases calls whose delayed deletion is due (DeleteSession with a delay); the service runs
  // it about once a second.
  void Sweep();

  // A subscription to media events (every call, or one call's).
  class Subscription {
   public:
    // The next events, waiting up to `timeout` for one; empty when none came (or closed).
    std::vector<v1::MediaEvent> Next(absl::Duration timeout);
    bool closed() const;
    int64_t dropped() const;

   private:
    friend class Sessions;
    std::string call_id;
    size_t capacity = 0;
    mutable absl::Mutex mu;
    std::deque<v1::MediaEvent> queue ABSL_GUARDED_BY(mu);
    bool is_closed ABSL_GUARDED_BY(mu) = false;
    int64_t dropped_events ABSL_GUARDED_BY(mu) = 0;
  };
  std::shared_ptr<Subscription> Subscribe(const std::string& call_id);
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription);

  size_t size() const;

  // A call's relay pair and legs (for recording and listening). NotFound without a session.
  struct Anchor {
    std::shared_ptr<RtpRelay::LegPair> pair;
    std::string tenant_id;
    std::array<std::string, 2> tags;  // side 0: the first offerer; side 1: the answerer
  };
  absl::StatusOr<Anchor> Find(const std::string& call_id) const;
  // Called (outside any lock) when a call's session is deleted, at once even when its ports are
  // kept a while longer: the call is over. Set before use.
  void set_release_handler(std::function<void(const std::string& call_id)> handler) {
    on_release_ = std::move(handler);
  }

 private:
  struct Session;

  void Publish(v1::MediaEvent event);
  void OnTimeout(const RtpRelay::LegPair& pair, int side, absl::Duration silent);
  void OnDtmf(const RtpRelay::LegPair& pair, int side, const DtmfDigit& digit);
  // An event of `side` of the call on `pair` (tag and time set); none once the call is gone.
  std::optional<v1::MediaEvent> EventOf(const RtpRelay::LegPair& pair, int side);
  v1::MediaLeg LegProto(const Session& session, int side, const LegState& state) const;
  std::string Advertised() const;

  RtpRelay& relay_;
  std::function<void(const std::string&)> on_release_;
  const Clock& clock_;
  const SessionsOptions options_;
  const absl::Time started_at_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  absl::Mutex subscribers_mu_;
  std::vector<std::shared_ptr<Subscription>> subscribers_ ABSL_GUARDED_BY(subscribers_mu_);
  absl::Mutex rate_mu_;
  absl::Time rate_at_ ABSL_GUARDED_BY(rate_mu_);
  int64_t rate_packets_ ABSL_GUARDED_BY(rate_mu_) = 0;
};

}  // namespace sb::media
