// RtpRelay on loopback: two UDP sockets play the parties; what one sends to its port arrives at
// the other from the other's port, source checks and latching hold, bad datagrams are counted and
// dropped, silent legs are reported.

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "services/media/rtp_relay.h"
#include "tests/support/udp_party.h"

namespace sb::media {
namespace {

using test::Rtp;

// A party that also knows its address as the relay sees it.
class Party : public test::UdpParty {
 public:
  UdpAddress address() const { return *UdpAddress::Parse("127.0.0.1", port()); }
};

LegRemote At(const UdpAddress& rtp) {
  LegRemote r;
  r.rtp = rtp;
  r.rtcp = rtp.WithPort(rtp.port() + 1);
  return r;
}

RelayOptions Options() {
  RelayOptions o;
  o.bind_address = "127.0.0.1";
  o.port_min = 42000;
  o.port_max = 42100;
  o.rtp_timeout = absl::ZeroDuration();
  return o;
}

TEST_CASE("RtpRelay relays both ways from the port each party sends to", "[media][relay]") {
  RtpRelay relay(Options());
  REQUIRE(relay.Start().ok());
  Party caller, agent;
  auto pair = relay.Create("call-1");
  REQUIRE(pair.ok());
  const int caller_port = (*pair)->local_port(0);
  const int agent_port = (*pair)->local_port(1);
  CHECK(caller_port % 2 == 0);
  CHECK(agent_port != caller_port);
  CHECK(relay.ports_in_use() == 4);
  relay.SetRemote(*pair, 0, At(caller.address()));
  relay.SetRemote(*pair, 1, At(agent.address()));

  // 1..5, then 8 (6 and 7 lost on the way).
  for (uint16_t seq = 1; seq <= 5; ++seq) caller.SendTo(caller_port, Rtp(seq, "hello"));
  caller.SendTo(caller_port, Rtp(8, "hello"));
  for (uint16_t seq : {1, 2, 3, 4, 5, 8}) {
    auto got = agent.Receive();
    REQUIRE(got);
    CHECK(got->first == Rtp(seq, "hello"));
    CHECK(got->second == agent_port);  // symmetric: from where the agent sends
  }
  agent.SendTo(agent_port, Rtp(9, "back"));
  auto back = caller.Receive();
  REQUIRE(back);
  CHECK(back->first == Rtp(9, "back"));
  CHECK(back->second == caller_port);

  const auto states = relay.Snapshot(*pair);
  CHECK(states[0].counters.packets_received == 6);
  CHECK(states[0].counters.packets_lost == 2);
  CHECK(states[0].counters.packets_sent == 1);
  CHECK(states[1].counters.packets_received == 1);
  CHECK(states[1].counters.packets_lost == 0);
  CHECK(states[1].counters.packets_sent == 6);
  CHECK(states[0].latched);
  CHECK(states[0].latched_rtp == caller.address());
  CHECK(relay.totals().packets_relayed == 7);

  const auto final_states = relay.Release(*pair);
  CHECK(final_states[1].counters.packets_sent == 6);
  CHECK(relay.ports_in_use() == 0);
}

TEST_CASE("RtpReception counts lost packets and jitter the RFC 3550 way", "[media][relay]") {
  constexpr int64_t kMs = 1'000'000;
  RtpReception r;
  // 20 ms packets, on time: nothing lost, no jitter.
  for (uint16_t seq = 100; seq < 110; ++seq) r.Observe(7, seq, seq * 160u, seq * 20 * kMs, 8000);
  CHECK(r.lost() == 0);
  CHECK(r.jitter_ms(8000) == Approx(0));
  // 110..112 never arrive; 114 comes before 113 (reordered, not lost).
  r.Observe(7, 114, 114 * 160u, 114 * 20 * kMs, 8000);
  r.Observe(7, 113, 113 * 160u, 114 * 20 * kMs, 8000);
  CHECK(r.lost() == 3);
  // A duplicate is no gain.
  r.Observe(7, 114, 114 * 160u, 115 * 20 * kMs, 8000);
  CHECK(r.lost() == 3);

  // The sequence wraps: 65534, 65535, 0, 1 are consecutive.
  RtpReception wrap;
  for (uint32_t i = 0; i < 4; ++i) {
    wrap.Observe(9, static_cast<uint16_t>(65534 + i), i * 160, int64_t(i) * 20 * kMs, 8000);
  }
  CHECK(wrap.lost() == 0);
  wrap.Observe(9, 3, 5 * 160, 5 * 20 * kMs, 8000);  // 2 never arrives
  CHECK(wrap.lost() == 1);

  // A new source (a transfer's new party) starts afresh and keeps what was lost before.
  r.Observe(8, 5000, 0, 200 * 20 * kMs, 8000);
  r.Observe(8, 5001, 160, 201 * 20 * kMs, 8000);
  CHECK(r.lost() == 3);

  // Arrivals alternating 10 and 30 ms apart for 20 ms of audio each: jitter ~10 ms.
  RtpReception jittery;
  int64_t at = 0;
  for (uint32_t i = 0; i < 400; ++i) {
    jittery.Observe(1, static_cast<uint16_t>(i), i * 160, at, 8000);
    at += (i % 2 == 0 ? 10 : 30) * kMs;
  }
  CHECK(jittery.jitter_ms(8000) == Approx(10).margin(0.5));
  CHECK(jittery.lost() == 0);
}

TEST_CASE("RtpRelay drops strangers, garbage and oversized datagrams, and counts them",
          "[media][relay]") {
  RtpRelay relay(Options());
  REQUIRE(relay.Start().ok());
  Party caller, agent;
  auto pair = relay.Create("call-2");
  REQUIRE(pair.ok());
  const int caller_port = (*pair)->local_port(0);
  LegRemote remote = At(caller.address());
  remote.latching = false;  // only the SDP's address is the caller's
  relay.SetRemote(*pair, 0, remote);
  relay.SetRemote(*pair, 1, At(agent.address()));

  Party stranger;
  stranger.SendTo(caller_port, Rtp(1, "intruder"));
  caller.SendTo(caller_port, "abc");  // shorter than an RTP header
  std::string v1 = Rtp(2);
  v1[0] = 0x40;  // RTP version 1
  caller.SendTo(caller_port, v1);
  caller.SendTo(caller_port, Rtp(3, std::string(3000, 'x')));  // larger than any RTP packet
  caller.SendTo(caller_port, Rtp(4, "genuine"));
  auto got = agent.Receive();
  REQUIRE(got);
  CHECK(got->first == Rtp(4, "genuine"));  // the only one relayed
  CHECK_FALSE(agent.Receive(200));

  const auto states = relay.Snapshot(*pair);
  CHECK(states[0].counters.dropped_source == 1);
  CHECK(states[0].counters.dropped_malformed == 2);
  CHECK(states[0].counters.dropped_oversized == 1);
  CHECK(states[0].counters.packets_received == 1);
  CHECK_FALSE(states[0].latched);
  const RtpRelay::Totals totals = relay.totals();
  CHECK(totals.dropped_source == 1);
  CHECK(totals.dropped_malformed == 2);
  CHECK(totals.dropped_oversized == 1);
  relay.Release(*pair);
}

TEST_CASE("RtpRelay latches to a party behind NAT: its signalling IP, another port",
          "[media][relay]") {
  RtpRelay relay(Options());
  REQUIRE(relay.Start().ok());
  Party phone, agent, stranger_port;
  auto pair = relay.Create("call-3");
  REQUIRE(pair.ok());
  const int phone_port = (*pair)->local_port(0);
  const int agent_port = (*pair)->local_port(1);
  // The phone's SDP names a private address the relay cannot reach; its SIP came from 127.0.0.1.
  LegRemote remote = At(*UdpAddress::Parse("10.0.0.7", 4000));
  remote.signalling = *UdpAddress::Parse("127.0.0.1", 5060);
  relay.SetRemote(*pair, 0, remote);
  relay.SetRemote(*pair, 1, At(agent.address()));

  // Before the phone has sent anything, the agent's audio has nowhere to go but the SDP address;
  // after the phone's first packet it goes where that packet came from.
  phone.SendTo(phone_port, Rtp(1, "first"));
  auto first = agent.Receive();
  REQUIRE(first);
  CHECK(first->first == Rtp(1, "first"));
  agent.SendTo(agent_port, Rtp(1, "reply"));
  auto reply = phone.Receive();
  REQUIRE(reply);
  CHECK(reply->first == Rtp(1, "reply"));

  // Latched: another socket on the same IP is now a stranger.
  stranger_port.SendTo(phone_port, Rtp(2, "other"));
  CHECK_FALSE(agent.Receive(200));
  const auto states = relay.Snapshot(*pair);
  CHECK(states[0].latched);
  CHECK(states[0].latched_rtp == phone.address());
  CHECK(states[0].counters.dropped_source == 1);

  // A re-INVITE that moves the phone's media unlatches it.
  relay.SetRemote(*pair, 0, At(stranger_port.address()));
  stranger_port.SendTo(phone_port, Rtp(3, "moved"));
  auto moved = agent.Receive();
  REQUIRE(moved);
  CHECK(moved->first == Rtp(3, "moved"));
  relay.Release(*pair);
}

TEST_CASE("RtpRelay runs out of ports with ResourceExhausted and gets them back",
          "[media][relay]") {
  RelayOptions o = Options();
  o.port_min = 42200;
  o.port_max = 42208;  // four RTP/RTCP pairs: two legs pairs
  RtpRelay relay(o);
  REQUIRE(relay.Start().ok());
  std::vector<std::shared_ptr<RtpRelay::LegPair>> pairs;
  for (;;) {
    auto pair = relay.Create("call");
    if (!pair.ok()) {
      CHECK(absl::IsResourceExhausted(pair.status()));
      break;
    }
    pairs.push_back(*pair);
    REQUIRE(pairs.size() <= 2);
  }
  CHECK(relay.ports_in_use() <= 8);
  for (auto& p : pairs) relay.Release(p);
  CHECK(relay.ports_in_use() == 0);
  auto again = relay.Create("call");
  CHECK(again.ok());
  if (again.ok()) relay.Release(*again);
}

TEST_CASE("RtpRelay reports a leg whose party stops sending, once", "[media][relay]") {
  RelayOptions o = Options();
  o.rtp_timeout = absl::Milliseconds(300);
  RtpRelay relay(o);
  std::atomic<int> reports{0};
  absl::Notification reported;
  std::atomic<int> silent_side{-1};
  relay.set_timeout_handler([&](const RtpRelay::LegPair& pair, int side, absl::Duration) {
    if (pair.opaque() != "call-5") return;
    silent_side = side;
    if (reports.fetch_add(1) == 0) reported.Notify();
  });
  REQUIRE(relay.Start().ok());
  Party caller, agent;
  auto pair = relay.Create("call-5");
  REQUIRE(pair.ok());
  relay.SetRemote(*pair, 0, At(caller.address()));
  LegRemote quiet = At(agent.address());
  quiet.sends = false;  // recvonly: its silence is no timeout
  relay.SetRemote(*pair, 1, quiet);
  // The caller never sends: reported within the timeout plus the worker's one-second sweep.
  REQUIRE(reported.WaitForNotificationWithTimeout(absl::Seconds(5)));
  CHECK(silent_side == 0);
  // Once: the next sweeps do not report it again.
  absl::SleepFor(absl::Milliseconds(1200));
  CHECK(reports == 1);
  relay.Release(*pair);
}

TEST_CASE("RtpRelay reports each RFC 4733 digit once, in order, and still relays the events",
          "[media][relay][dtmf]") {
  RtpRelay relay(Options());
  absl::Mutex mu;
  std::vector<DtmfDigit> digits;
  std::vector<int> sides;
  relay.set_dtmf_handler([&](const RtpRelay::LegPair&, int side, const DtmfDigit& d) {
    absl::MutexLock lock(&mu);
    digits.push_back(d);
    sides.push_back(side);
  });
  REQUIRE(relay.Start().ok());
  Party caller, agent;
  auto pair = relay.Create("call-dtmf");
  REQUIRE(pair.ok());
  LegRemote from_caller = At(caller.address());
  from_caller.dtmf_payload_type = 101;
  relay.SetRemote(*pair, 0, from_caller);
  relay.SetRemote(*pair, 1, At(agent.address()));
  const int to = (*pair)->local_port(0);
  uint16_t seq = 1;
  int sent = 0;
  // "1", "#", "1" again (a repeated digit is a new event), "D": each as a phone sends it, the
  // start and updates without the end bit, then the end packet three times (RFC 4733 §2.5.1.4).
  const std::vector<std::pair<int, uint32_t>> events = {
      {1, 8000}, {11, 16000}, {1, 24000}, {15, 32000}};
  for (const auto& [event, timestamp] : events) {
    for (int duration : {160, 320, 480}) {
      caller.SendTo(to, test::TelephoneEvent(seq++, timestamp, event, false, duration));
      ++sent;
    }
    for (int copy = 0; copy < 3; ++copy) {
      caller.SendTo(to, test::TelephoneEvent(seq++, timestamp, event, true, 800));
      ++sent;
    }
  }
  // A garbled event (a payload too short) and audio are no digits.
  caller.SendTo(to, Rtp(seq++, "ab").replace(1, 1, 1, static_cast<char>(101)));
  caller.SendTo(to, Rtp(seq++, std::string(160, '\xff')));
  sent += 2;
  for (int i = 0; i < sent; ++i) REQUIRE(agent.Receive().has_value());  // all relayed
  absl::MutexLock lock(&mu);
  REQUIRE(digits.size() == 4);
  std::string text;
  for (const DtmfDigit& d : digits) text.push_back(d.digit);
  CHECK(text == "1#1D");
  CHECK(digits[0].timestamp == 8000);
  CHECK(digits[3].timestamp == 32000);
  CHECK(digits[1].duration == 800);
  CHECK(sides == std::vector<int>{0, 0, 0, 0});
  relay.Release(*pair);
}

}  // namespace
}  // namespace sb::media
