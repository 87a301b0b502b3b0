#include "services/media/sessions.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"

namespace sb::media {

struct Sessions::Session {
  std::string call_id;
  std::string tenant_id;
  std::shared_ptr<RtpRelay::LegPair> pair;
  // Side 0: the first offerer; side 1: the answerer (empty until an answer came).
  std::string tags[2];
  v1::MediaOptions options[2];
  // The last offer: who made it and the formats it carried (what an answer may choose from).
  int offerer = 0;
  std::vector<PayloadFormat> offered;
  std::string codec;
  absl::Time created_at;
  absl::Time delete_at = absl::InfiniteFuture();

  int SideOf(const std::string& tag) const {
    if (tag.empty()) return -1;
    if (tags[0] == tag) return 0;
    if (tags[1] == tag) return 1;
    return -1;
  }
};

namespace {

absl::Status Required(const std::string& value, absl::string_view field) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": is required"));
  if (value.size() > 256) return absl::InvalidArgumentError(absl::StrCat(field, ": too long"));
  return absl::OkStatus();
}

// The party's addresses and behaviour from its SDP and the leg's options.
absl::StatusOr<LegRemote> RemoteFrom(const AudioStream& stream, const v1::MediaOptions& options) {
  LegRemote remote;
  SB_ASSIGN_OR_RETURN(remote.rtp, UdpAddress::Parse(stream.address, stream.port));
  SB_ASSIGN_OR_RETURN(
      remote.rtcp, UdpAddress::Parse(stream.address,
                                     stream.rtcp_port.value_or(std::min(stream.port + 1, 65535))));
  if (!options.signalling_address().empty()) {
    absl::StatusOr<UdpAddress> signalling = UdpAddress::Parse(options.signalling_address(), 0);
    if (!signalling.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.signalling_address: ", signalling.status().message()));
    }
    remote.signalling = *signalling;
  }
  remote.latching = !options.disable_latching();
  remote.sends = stream.direction == "sendrecv" || stream.direction == "sendonly";
  return remote;
}

// An offer's or answer's response: `sdp` rewritten to `address`:`port` and the endpoint named.
template <typename Response>
Response Anchored(const std::string& sdp, const std::string& address, int port,
                  const std::vector<PayloadFormat>& formats, bool strip_ice,
                  const std::string& node_id) {
  Response out;
  out.set_sdp(RewriteAudio(sdp, address, port, formats, strip_ice));
  out.mutable_endpoint()->set_address(address);
  out.mutable_endpoint()->set_rtp_port(port);
  out.mutable_endpoint()->set_rtcp_port(port + 1);
  out.set_node_id(node_id);
  return out;
}

// The audio codec the formats lead with (not DTMF or comfort noise).
const PayloadFormat* FirstAudio(const std::vector<PayloadFormat>& formats) {
  for (const PayloadFormat& f : formats) {
    const std::string e = absl::AsciiStrToLower(f.encoding);
    if (e != "telephone-event" && e != "cn") return &f;
  }
  return nullptr;
}

// The payload type of telephone-events among the formats; -1 when not negotiated.
int DtmfPayloadType(const std::vector<PayloadFormat>& formats) {
  for (const PayloadFormat& f : formats) {
    if (absl::AsciiStrToLower(f.encoding) == "telephone-event") return f.payload_type;
  }
  return -1;
}

}  // namespace

Sessions::Sessions(RtpRelay& relay, const Clock& clock, SessionsOptions options)
    : relay_(relay), clock_(clock), options_(std::move(options)), started_at_(clock.Now()) {
  relay_.set_timeout_handler([this](const RtpRelay::LegPair& pair, int side,
                                    absl::Duration silent) { OnTimeout(pair, side, silent); });
  relay_.set_dtmf_handler([this](const RtpRelay::LegPair& pair, int side, const DtmfDigit& digit) {
    OnDtmf(pair, side, digit);
  });
  absl::MutexLock lock(&rate_mu_);
  rate_at_ = clock_.Now();
}

Sessions::~Sessions() {
  std::vector<std::shared_ptr<Session>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
    sessions_.clear();
  }
  for (auto& s : all) relay_.Release(s->pair);
  absl::MutexLock lock(&subscribers_mu_);
  for (auto& sub : subscribers_) {
    absl::MutexLock sub_lock(&sub->mu);
    sub->is_closed = true;
  }
}

std::string Sessions::Advertised() const {
  return options_.advertised_address.empty() ? relay_.options().bind_address
                                             : options_.advertised_address;
}

absl::StatusOr<v1::ProcessOfferResponse> Sessions::Offer(const v1::ProcessOfferRequest& request) {
  SB_RETURN_IF_ERROR(Required(request.call_id(), "call_id"));
  SB_RETURN_IF_ERROR(Required(request.from_tag(), "from_tag"));
  SB_RETURN_IF_ERROR(Required(request.sdp(), "sdp"));
  absl::StatusOr<AudioStream> stream = ParseAudio(request.sdp());
  SB_RETURN_IF_ERROR(stream.status());
  SB_ASSIGN_OR_RETURN(std::vector<PayloadFormat> formats,
                      ChooseFormats(*stream, {request.options().codecs().begin(),
                                              request.options().codecs().end()}));
  SB_ASSIGN_OR_RETURN(LegRemote remote, RemoteFrom(*stream, request.options()));
  if (const PayloadFormat* audio = FirstAudio(formats); audio != nullptr && audio->clock_rate > 0) {
    remote.clock_rate = audio->clock_rate;
  }
  remote.dtmf_payload_type = DtmfPayloadType(formats);

  std::shared_ptr<Session> session;
  int side = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.call_id());
    if (it == sessions_.end()) {
      SB_ASSIGN_OR_RETURN(std::shared_ptr<RtpRelay::LegPair> pair,
                          relay_.Create(request.call_id()));
      session = std::make_shared<Session>();
      session->call_id = request.call_id();
      session->tenant_id = request.tenant_id();
      session->pair = std::move(pair);
      session->tags[0] = request.from_tag();
      session->created_at = clock_.Now();
      sessions_[request.call_id()] = session;
    } else {
      session = it->second;
      side = session->SideOf(request.from_tag());
      if (side < 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("from_tag: call ", request.call_id(), " has legs '", session->tags[0],
                         "' and '", session->tags[1], "', not '", request.from_tag(), "'"));
      }
    }
    session->offerer = side;
    session->offered = formats;
    session->options[side] = request.options();
    session->delete_at = absl::InfiniteFuture();
  }
  relay_.SetRemote(session->pair, side, std::move(remote));
  const int port = session->pair->local_port(1 - side);
  return Anchored<v1::ProcessOfferResponse>(request.sdp(), Advertised(), port, formats,
                                            request.options().strip_ice(), options_.node_id);
}

absl::StatusOr<v1::ProcessAnswerResponse> Sessions::Answer(
    const v1::ProcessAnswerRequest& request) {
  SB_RETURN_IF_ERROR(Required(request.call_id(), "call_id"));
  SB_RETURN_IF_ERROR(Required(request.from_tag(), "from_tag"));
  SB_RETURN_IF_ERROR(Required(request.to_tag(), "to_tag"));
  SB_RETURN_IF_ERROR(Required(request.sdp(), "sdp"));
  absl::StatusOr<AudioStream> stream = ParseAudio(request.sdp());
  SB_RETURN_IF_ERROR(stream.status());
  if (stream->port == 0) {
    return absl::FailedPreconditionError("sdp: the answer declines the audio stream (port 0)");
  }
  SB_ASSIGN_OR_RETURN(LegRemote remote, RemoteFrom(*stream, request.options()));

  std::shared_ptr<Session> session;
  std::vector<PayloadFormat> formats;
  int offerer = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.call_id());
    if (it == sessions_.end()) {
      return absl::NotFoundError(absl::StrCat("no offer for call ", request.call_id()));
    }
    session = it->second;
    offerer = session->SideOf(request.from_tag());
    if (offerer < 0 || offerer != session->offerer) {
      return absl::NotFoundError(
          absl::StrCat("no offer from tag '", request.from_tag(), "' in call ", request.call_id()));
    }
    SB_ASSIGN_OR_RETURN(formats, ChooseFormats(*stream,
                                               {request.options().codecs().begin(),
                                                request.options().codecs().end()},
                                               &session->offered));
    const int answerer = 1 - offerer;
    // A fork's earlier answer (early media of another branch) is replaced by this one.
    session->tags[answerer] = request.to_tag();
    session->options[answerer] = request.options();
    const PayloadFormat* audio = FirstAudio(formats);
    session->codec = audio != nullptr ? audio->Name() : "";
    if (audio != nullptr && audio->clock_rate > 0) remote.clock_rate = audio->clock_rate;
    remote.dtmf_payload_type = DtmfPayloadType(formats);
  }
  relay_.SetRemote(session->pair, 1 - offerer, std::move(remote));
  const int port = session->pair->local_port(offerer);
  return Anchored<v1::ProcessAnswerResponse>(request.sdp(), Advertised(), port, formats,
                                             request.options().strip_ice(), options_.node_id);
}

v1::MediaLeg Sessions::LegProto(const Session& session, int side, const LegState& state) const {
  v1::MediaLeg leg;
  leg.set_tag(session.tags[side]);
  leg.set_role(session.options[side].role());
  leg.mutable_local()->set_address(Advertised());
  leg.mutable_local()->set_rtp_port(state.local_rtp_port);
  leg.mutable_local()->set_rtcp_port(state.local_rtp_port + 1);
  leg.set_remote_address(state.latched ? state.latched_rtp.ToString()
                                       : state.remote.rtp.ToString());
  leg.set_latched(state.latched);
  leg.set_codec(session.codec);
  leg.set_packets_received(state.counters.packets_received);
  leg.set_packets_sent(state.counters.packets_sent);
  leg.set_packets_lost(state.counters.packets_lost);
  const absl::Duration jitter =
      absl::Microseconds(static_cast<int64_t>(state.counters.jitter_ms * 1000));
  leg.mutable_jitter()->set_seconds(absl::ToInt64Seconds(jitter));
  leg.mutable_jitter()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(jitter) % 1'000'000'000));
  if (state.last_packet_at != absl::InfinitePast()) {
    pg::SetTimestamp(leg.mutable_last_packet_at(), state.last_packet_at);
  }
  return leg;
}

v1::DeleteSessionResponse Sessions::Delete(const v1::DeleteSessionRequest& request) {
  v1::DeleteSessionResponse out;
  std::shared_ptr<Session> session;
  bool whole = true;
  bool ended = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.call_id());
    if (it == sessions_.end()) return out;
    session = it->second;
    const int side = session->SideOf(request.tag());
    if (!request.tag().empty() && side < 0) return out;  // not a leg of this call
    whole = side <= 0;
    ended = whole;
    const absl::Duration delay =
        request.has_delay() ? pg::FromProto(request.delay()) : absl::ZeroDuration();
    if (whole && delay > absl::ZeroDuration()) {
      session->delete_at = clock_.Now() + std::min(delay, absl::Minutes(5));
      whole = false;
      session = nullptr;  // released by Sweep
    } else if (whole) {
      sessions_.erase(it);
    } else {
      session->tags[1].clear();
      session->options[1] = {};
    }
  }
  if (ended && on_release_) on_release_(request.call_id());
  if (session == nullptr) return out;
  if (whole) {
    const std::array<LegState, 2> states = relay_.Release(session->pair);
    for (int side : {0, 1}) {
      if (!session->tags[side].empty()) *out.add_legs() = LegProto(*session, side, states[side]);
    }
    return out;
  }
  // The answerer alone: its side waits for a new answer.
  const std::array<LegState, 2> states = relay_.Snapshot(session->pair);
  v1::MediaLeg released = LegProto(*session, 1, states[1]);
  released.set_tag(request.tag());
  *out.add_legs() = std::move(released);
  relay_.SetRemote(session->pair, 1, LegRemote{});
  return out;
}

void Sessions::CloseAll() {
  std::vector<std::shared_ptr<Session>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, session] : sessions_) all.push_back(session);
    sessions_.clear();
  }
  for (auto& session : all) {
    if (on_release_) on_release_(session->call_id);
    relay_.Release(session->pair);
  }
}

void Sessions::Sweep() {
  const absl::Time now = clock_.Now();
  std::vector<std::shared_ptr<Session>> due;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->delete_at <= now) {
        due.push_back(it->second);
        sessions_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : due) {
    if (on_release_) on_release_(s->call_id);
    relay_.Release(s->pair);
  }
}

absl::StatusOr<Sessions::Anchor> Sessions::Find(const std::string& call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(call_id);
  if (it == sessions_.end() || it->second->delete_at != absl::InfiniteFuture()) {
    return absl::NotFoundError(absl::StrCat("call ", call_id, " has no media session here"));
  }
  return Anchor{.pair = it->second->pair,
                .tenant_id = it->second->tenant_id,
                .tags = {it->second->tags[0], it->second->tags[1]}};
}

absl::StatusOr<v1::MediaSession> Sessions::Get(const std::string& call_id) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(call_id);
    if (it == sessions_.end())
      return absl::NotFoundError(absl::StrCat("no media for call ", call_id));
    session = it->second;
  }
  const std::array<LegState, 2> states = relay_.Snapshot(session->pair);
  v1::MediaSession out;
  out.set_call_id(session->call_id);
  out.set_tenant_id(session->tenant_id);
  out.set_node_id(options_.node_id);
  absl::MutexLock lock(&mu_);
  for (int side : {0, 1}) {
    if (!session->tags[side].empty()) *out.add_legs() = LegProto(*session, side, states[side]);
  }
  pg::SetTimestamp(out.mutable_created_at(), session->created_at);
  return out;
}

v1::MediaNodeStats Sessions::Stats() {
  v1::MediaNodeStats out;
  out.set_node_id(options_.node_id);
  pg::SetTimestamp(out.mutable_started_at(), started_at_);
  out.set_active_sessions(static_cast<int32_t>(size()));
  out.set_rtp_ports_in_use(relay_.ports_in_use());
  out.set_rtp_ports_total(relay_.ports_total());
  out.set_worker_threads(std::max(1, relay_.options().threads));
  const RtpRelay::Totals t = relay_.totals();
  out.set_packets_relayed_total(t.packets_relayed);
  out.set_bytes_relayed_total(t.bytes_relayed);
  auto& dropped = *out.mutable_packets_dropped_total();
  dropped["unlatched_source"] = t.dropped_source;
  dropped["malformed"] = t.dropped_malformed;
  dropped["oversized"] = t.dropped_oversized;
  dropped["no_destination"] = t.dropped_no_destination;
  // Since the previous Stats call.
  absl::MutexLock lock(&rate_mu_);
  const absl::Time now = clock_.Now();
  const double seconds = absl::ToDoubleSeconds(now - rate_at_);
  if (seconds > 0) {
    out.set_packets_per_second(static_cast<double>(t.packets_relayed - rate_packets_) / seconds);
  }
  rate_at_ = now;
  rate_packets_ = t.packets_relayed;
  return out;
}

size_t Sessions::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

std::optional<v1::MediaEvent> Sessions::EventOf(const RtpRelay::LegPair& pair, int side) {
  v1::MediaEvent event;
  event.set_call_id(pair.opaque());
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(pair.opaque());
    if (it == sessions_.end() || it->second->pair.get() != &pair) return std::nullopt;
    event.set_tag(it->second->tags[side]);
  }
  pg::SetTimestamp(event.mutable_occurred_at(), clock_.Now());
  return event;
}

void Sessions::OnDtmf(const RtpRelay::LegPair& pair, int side, const DtmfDigit& digit) {
  std::optional<v1::MediaEvent> event = EventOf(pair, side);
  if (!event.has_value()) return;
  v1::DtmfDigit& d = *event->mutable_dtmf();
  d.set_digit(std::string(1, digit.digit));
  // telephone-event runs at 8 kHz (RFC 4733 §2.3; the clock of the audio it goes with).
  pg::SetDuration(d.mutable_duration(), absl::Milliseconds(int64_t{digit.duration} / 8));
  d.set_rtp_timestamp(digit.timestamp);
  Publish(*std::move(event));
}

void Sessions::OnTimeout(const RtpRelay::LegPair& pair, int side, absl::Duration silent) {
  std::optional<v1::MediaEvent> found = EventOf(pair, side);
  if (!found.has_value()) return;
  v1::MediaEvent& event = *found;
  auto& timeout = *event.mutable_rtp_timeout()->mutable_silent_for();
  timeout.set_seconds(absl::ToInt64Seconds(silent));
  timeout.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(silent) % 1'000'000'000));
  Publish(std::move(event));
}

// ---------------------------------------------------------------------------------------------
// Events

std::shared_ptr<Sessions::Subscription> Sessions::Subscribe(const std::string& call_id) {
  auto sub = std::make_shared<Subscription>();
  sub->call_id = call_id;
  sub->capacity = options_.subscriber_queue;
  absl::MutexLock lock(&subscribers_mu_);
  subscribers_.push_back(sub);
  return sub;
}

void Sessions::Unsubscribe(const std::shared_ptr<Subscription>& subscription) {
  absl::MutexLock lock(&subscribers_mu_);
  std::erase(subscribers_, subscription);
  absl::MutexLock sub_lock(&subscription->mu);
  subscription->is_closed = true;
}

void Sessions::Publish(v1::MediaEvent event) {
  absl::MutexLock lock(&subscribers_mu_);
  for (auto& sub : subscribers_) {
    if (!sub->call_id.empty() && sub->call_id != event.call_id()) continue;
    absl::MutexLock sub_lock(&sub->mu);
    if (sub->queue.size() >= sub->capacity) {
      sub->queue.pop_front();
      ++sub->dropped_events;
    }
    sub->queue.push_back(event);
  }
}

std::vector<v1::MediaEvent> Sessions::Subscription::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !queue.empty() || is_closed; };
  mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  std::vector<v1::MediaEvent> out(std::make_move_iterator(queue.begin()),
                                  std::make_move_iterator(queue.end()));
  queue.clear();
  return out;
}

bool Sessions::Subscription::closed() const {
  absl::MutexLock lock(&mu);
  return is_closed;
}

int64_t Sessions::Subscription::dropped() const {
  absl::MutexLock lock(&mu);
  return dropped_events;
}

}  // namespace sb::media
