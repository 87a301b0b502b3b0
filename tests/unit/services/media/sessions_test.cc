// Sessions over a real RtpRelay on loopback: offer/answer rewrite the SDP to the node's ports and
// the audio flows through them; re-offers, forks, deletes, errors and timeout events.

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "libs/common/fake_clock.h"
#include "services/media/sessions.h"
#include "tests/support/udp_party.h"

namespace sb::media {
namespace {

using Party = test::UdpParty;
using test::Rtp;

// The port the audio of a rewritten SDP goes to.
int PortOf(const std::string& sdp) { return ParseAudio(sdp)->port; }

struct World {
  explicit World(absl::Duration timeout = absl::ZeroDuration())
      : relay([timeout] {
          RelayOptions o;
          o.port_min = 42400;
          o.port_max = 42500;
          o.rtp_timeout = timeout;
          return o;
        }()),
        sessions(relay, clock, {.node_id = "media-test", .advertised_address = "127.0.0.1"}) {
    REQUIRE(relay.Start().ok());
  }
  FakeClock clock;
  RtpRelay relay;
  Sessions sessions;
};

v1::ProcessOfferRequest Offer(const std::string& call, const std::string& tag,
                              const std::string& sdp) {
  v1::ProcessOfferRequest req;
  req.set_call_id(call);
  req.set_tenant_id("tenant-1");
  req.set_from_tag(tag);
  req.set_sdp(sdp);
  req.mutable_options()->set_strip_ice(true);
  return req;
}

v1::ProcessAnswerRequest Answer(const std::string& call, const std::string& from,
                                const std::string& to, const std::string& sdp) {
  v1::ProcessAnswerRequest req;
  req.set_call_id(call);
  req.set_from_tag(from);
  req.set_to_tag(to);
  req.set_sdp(sdp);
  return req;
}

TEST_CASE("Sessions: offer and answer anchor a call's audio on the node", "[media][sessions]") {
  World w;
  Party caller, agent;
  absl::StatusOr<v1::ProcessOfferResponse> offer =
      w.sessions.Offer(Offer("call-1", "caller-tag", caller.Sdp()));
  INFO(offer.status().ToString());
  REQUIRE(offer.ok());
  CHECK(offer->node_id() == "media-test");
  const int agent_side = PortOf(offer->sdp());
  CHECK(offer->endpoint().rtp_port() == agent_side);
  CHECK(ParseAudio(offer->sdp())->address == "127.0.0.1");
  CHECK(ParseAudio(offer->sdp())->formats.size() == 3);

  absl::StatusOr<v1::ProcessAnswerResponse> answer =
      w.sessions.Answer(Answer("call-1", "caller-tag", "agent-tag", agent.Sdp("8 101")));
  INFO(answer.status().ToString());
  REQUIRE(answer.ok());
  const int caller_side = PortOf(answer->sdp());
  CHECK(caller_side != agent_side);

  caller.SendTo(caller_side, Rtp(1));
  auto heard = agent.Receive();
  REQUIRE(heard);
  CHECK(heard->first == Rtp(1));
  CHECK(heard->second == agent_side);
  agent.SendTo(agent_side, Rtp(2));
  auto back = caller.Receive();
  REQUIRE(back);
  CHECK(back->first == Rtp(2));
  CHECK(back->second == caller_side);

  absl::StatusOr<v1::MediaSession> session = w.sessions.Get("call-1");
  REQUIRE(session.ok());
  REQUIRE(session->legs_size() == 2);
  CHECK(session->tenant_id() == "tenant-1");
  CHECK(session->legs(0).tag() == "caller-tag");
  CHECK(session->legs(1).tag() == "agent-tag");
  CHECK(session->legs(0).codec() == "PCMA/8000");
  CHECK(session->legs(0).local().rtp_port() == caller_side);
  CHECK(session->legs(0).packets_received() == 1);
  CHECK(session->legs(0).packets_sent() == 1);
  CHECK(session->legs(0).latched());
  CHECK(session->legs(0).remote_address() == absl::StrCat("127.0.0.1:", caller.port()));

  const v1::MediaNodeStats stats = w.sessions.Stats();
  CHECK(stats.active_sessions() == 1);
  CHECK(stats.rtp_ports_in_use() == 4);
  CHECK(stats.packets_relayed_total() == 2);

  v1::DeleteSessionRequest del;
  del.set_call_id("call-1");
  const v1::DeleteSessionResponse deleted = w.sessions.Delete(del);
  CHECK(deleted.legs_size() == 2);
  CHECK(w.sessions.size() == 0);
  CHECK(w.relay.ports_in_use() == 0);
  CHECK(absl::IsNotFound(w.sessions.Get("call-1").status()));
  // Idempotent.
  CHECK(w.sessions.Delete(del).legs_size() == 0);
}

TEST_CASE(
    "Sessions: a re-offer from the answerer keeps the ports; a new answerer after a "
    "transfer",
    "[media][sessions]") {
  World w;
  Party caller, agent, second_agent;
  const auto offer = w.sessions.Offer(Offer("call-2", "a", caller.Sdp()));
  REQUIRE(offer.ok());
  const auto answer = w.sessions.Answer(Answer("call-2", "a", "b", agent.Sdp()));
  REQUIRE(answer.ok());
  // The agent holds (re-INVITE): its offer goes to the caller and names the caller's port.
  const auto hold = w.sessions.Offer(Offer("call-2", "b", agent.Sdp("0 8 101", "sendonly")));
  REQUIRE(hold.ok());
  CHECK(PortOf(hold->sdp()) == PortOf(answer->sdp()));
  CHECK(ParseAudio(hold->sdp())->direction == "sendonly");
  const auto held = w.sessions.Answer(Answer("call-2", "b", "a", caller.Sdp("0", "recvonly")));
  REQUIRE(held.ok());
  CHECK(PortOf(held->sdp()) == PortOf(offer->sdp()));

  // A third tag cannot offer into the call.
  CHECK(absl::IsFailedPrecondition(w.sessions.Offer(Offer("call-2", "c", caller.Sdp())).status()));

  // The agent's leg goes (a transfer): the caller's side stays and a new party answers the
  // caller's offer on the same port.
  v1::DeleteSessionRequest drop;
  drop.set_call_id("call-2");
  drop.set_tag("b");
  CHECK(w.sessions.Delete(drop).legs_size() == 1);
  CHECK(w.sessions.size() == 1);
  REQUIRE(w.sessions.Offer(Offer("call-2", "a", caller.Sdp())).ok());
  const auto second = w.sessions.Answer(Answer("call-2", "a", "c", second_agent.Sdp()));
  REQUIRE(second.ok());
  caller.SendTo(PortOf(second->sdp()), Rtp(7));
  auto got = second_agent.Receive();
  REQUIRE(got);
  CHECK(got->first == Rtp(7));
  CHECK_FALSE(agent.Receive(100));
}

TEST_CASE("Sessions: bad requests get errors that name the problem", "[media][sessions]") {
  World w;
  Party caller, agent;
  CHECK(absl::IsInvalidArgument(w.sessions.Offer(Offer("", "a", caller.Sdp())).status()));
  CHECK(absl::IsInvalidArgument(w.sessions.Offer(Offer("call-3", "", caller.Sdp())).status()));
  CHECK(absl::IsInvalidArgument(w.sessions.Offer(Offer("call-3", "a", "not sdp")).status()));
  CHECK(absl::IsFailedPrecondition(
      w.sessions.Offer(Offer("call-3", "a", caller.Sdp("101"))).status()));  // DTMF, no audio
  CHECK(w.sessions.size() == 0);  // nothing was allocated for them
  CHECK(absl::IsNotFound(w.sessions.Answer(Answer("call-3", "a", "b", agent.Sdp())).status()));

  v1::ProcessOfferRequest only_pcma = Offer("call-3", "a", caller.Sdp());
  only_pcma.mutable_options()->add_codecs("PCMA");
  REQUIRE(w.sessions.Offer(only_pcma).ok());
  CHECK(absl::IsNotFound(w.sessions.Answer(Answer("call-3", "x", "b", agent.Sdp())).status()));
  absl::Status mismatch = w.sessions.Answer(Answer("call-3", "a", "b", agent.Sdp("0"))).status();
  CHECK(absl::IsFailedPrecondition(mismatch));
  CHECK(std::string(mismatch.message()).find("no audio codec in common") != std::string::npos);
  absl::Status declined =
      w.sessions
          .Answer(
              Answer("call-3", "a", "b", "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 8\r\n"))
          .status();
  CHECK(absl::IsFailedPrecondition(declined));
  v1::ProcessAnswerRequest bad_signalling = Answer("call-3", "a", "b", agent.Sdp("8"));
  bad_signalling.mutable_options()->set_signalling_address("not-an-ip");
  CHECK(absl::IsInvalidArgument(w.sessions.Answer(bad_signalling).status()));
}

TEST_CASE("Sessions: a delayed delete keeps the ports until it is due", "[media][sessions]") {
  World w;
  Party caller;
  REQUIRE(w.sessions.Offer(Offer("call-4", "a", caller.Sdp())).ok());
  v1::DeleteSessionRequest del;
  del.set_call_id("call-4");
  del.mutable_delay()->set_seconds(2);
  w.sessions.Delete(del);
  w.sessions.Sweep();
  CHECK(w.sessions.size() == 1);
  w.clock.Advance(absl::Seconds(2));
  w.sessions.Sweep();
  CHECK(w.sessions.size() == 0);
  CHECK(w.relay.ports_in_use() == 0);
}

TEST_CASE("Sessions: a silent party becomes an RtpTimeout event for subscribers",
          "[media][sessions]") {
  World w(absl::Milliseconds(200));
  auto all = w.sessions.Subscribe("");
  auto other = w.sessions.Subscribe("some-other-call");
  Party caller, agent;
  REQUIRE(w.sessions.Offer(Offer("call-5", "a", caller.Sdp())).ok());
  REQUIRE(w.sessions.Answer(Answer("call-5", "a", "b", agent.Sdp())).ok());
  // Both parties are silent: both legs are reported, each once.
  std::vector<v1::MediaEvent> events;
  for (int i = 0; i < 10 && events.size() < 2; ++i) {
    for (auto& e : all->Next(absl::Seconds(1))) events.push_back(std::move(e));
  }
  REQUIRE(events.size() == 2);
  for (const v1::MediaEvent& e : events) {
    CHECK(e.call_id() == "call-5");
    CHECK(e.has_rtp_timeout());
    CHECK(e.rtp_timeout().silent_for().nanos() + e.rtp_timeout().silent_for().seconds() > 0);
  }
  CHECK(((events[0].tag() == "a" && events[1].tag() == "b") ||
         (events[0].tag() == "b" && events[1].tag() == "a")));
  CHECK(other->Next(absl::Milliseconds(10)).empty());
  w.sessions.Unsubscribe(all);
  CHECK(all->closed());
}

TEST_CASE("Sessions: telephone-events become DTMF events, once per digit, with the leg's tag",
          "[media][sessions][dtmf]") {
  World w;
  auto all = w.sessions.Subscribe("call-6");
  Party caller, agent;
  REQUIRE(w.sessions.Offer(Offer("call-6", "a", caller.Sdp())).ok());
  REQUIRE(w.sessions.Answer(Answer("call-6", "a", "b", agent.Sdp())).ok());
  auto anchor = w.sessions.Find("call-6");
  REQUIRE(anchor.ok());
  const int to = anchor->pair->local_port(1);  // the agent presses 5, then #
  uint16_t seq = 1;
  for (const auto& [event, timestamp] : {std::pair{5, 1600u}, std::pair{11, 4800u}}) {
    agent.SendTo(to, test::TelephoneEvent(seq++, timestamp, event, false, 400));
    for (int copy = 0; copy < 3; ++copy) {
      agent.SendTo(to, test::TelephoneEvent(seq++, timestamp, event, true, 960));
    }
  }
  std::vector<v1::MediaEvent> events;
  for (int i = 0; i < 10 && events.size() < 2; ++i) {
    for (auto& e : all->Next(absl::Seconds(1))) events.push_back(std::move(e));
  }
  CHECK(all->Next(absl::Milliseconds(200)).empty());  // no more: the end copies are not digits
  REQUIRE(events.size() == 2);
  CHECK(events[0].tag() == "b");
  CHECK(events[0].dtmf().digit() == "5");
  CHECK(events[0].dtmf().rtp_timestamp() == 1600);
  CHECK(events[0].dtmf().duration().nanos() == 120'000'000);  // 960 / 8 kHz
  CHECK(events[1].dtmf().digit() == "#");
  w.sessions.Unsubscribe(all);
}

}  // namespace
}  // namespace sb::media
