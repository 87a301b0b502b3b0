#pragma once

// RtpRelay: the data path of anchored media. A call's two parties each send their RTP (and RTCP,
// on the next port) to a port pair of this node; what comes in on one party's pair goes out of
// the other party's pair to that party (so each sees symmetric RTP from the address it sends
// to). A pair of such legs is a LegPair.
//
// Threads: `threads` workers, each with its own epoll set; a LegPair lives on one worker (chosen
// round-robin) for its whole life, and only that worker touches its addresses and sockets while
// it runs. Control calls (Create, SetRemote, Snapshot, Release) may come from any thread: they
// post a command to the worker (a mutex taken per batch of commands, never per packet) and wake
// it. Packets are read with recvmmsg and forwarded with sendmmsg in batches, into buffers the
// worker allocated once.
//
// Source checks (symmetric RTP, for phones behind NAT): until a leg has latched, a packet is
// taken only from the address its SDP named, or (when latching) from the IP its SIP signalling
// came from, on any port; the first such packet latches the leg to its source, and from then on
// only that source is relayed. With latching off, only the SDP address is ever taken. Everything
// else, and anything that is not RTP/RTCP version 2 or does not fit the buffer, is counted and
// dropped.
//
// RFC 4733 telephone-events (the leg's negotiated payload type) are relayed like any RTP and each
// digit is reported once to the DTMF handler, on the worker thread.
//
// A leg whose party sends nothing for `rtp_timeout` (counted from its creation or its last
// packet; not while its SDP says it does not send: recvonly or inactive) is reported once to the
// timeout handler, on the worker thread.

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sb::media {

// An IPv4 or IPv6 UDP address.
class UdpAddress {
 public:
  UdpAddress() = default;
  // InvalidArgument for an address that is not an IP literal or a port outside 0..65535.
  static absl::StatusOr<UdpAddress> Parse(const std::string& ip, int port);
  static UdpAddress FromSockaddr(const sockaddr* sa, socklen_t len);

  bool valid() const { return len_ > 0; }
  // 0.0.0.0 or :: (RFC 2543 hold): nothing is sent there.
  bool unspecified() const;
  bool ip6() const { return storage_.ss_family == AF_INET6; }
  int port() const;
  UdpAddress WithPort(int port) const;
  bool SameIp(const UdpAddress& other) const;
  bool operator==(const UdpAddress& other) const { return SameIp(other) && port() == other.port(); }
  std::string Ip() const;
  std::string ToString() const;  // "192.0.2.1:4000", "[2001:db8::1]:4000"

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return len_; }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

struct RelayOptions {
  // Where the relay binds its ports.
  std::string bind_address = "127.0.0.1";
  // Ports: RTP on even ports in [port_min, port_max), RTCP on the next one.
  int port_min = 30000;
  int port_max = 40000;
  int threads = 1;
  // 0: legs never time out.
  absl::Duration rtp_timeout = absl::Seconds(60);
};

// RFC 3550 reception statistics of one leg's RTP (one SSRC at a time; a new SSRC starts afresh and
// keeps what was lost before).
class RtpReception {
 public:
  // A packet with this header arrived at `arrival_ns` (a monotonic clock), `clock_rate` Hz.
  void Observe(uint32_t ssrc, uint16_t seq, uint32_t timestamp, int64_t arrival_ns, int clock_rate);
  int64_t lost() const;
  double jitter_ms(int clock_rate) const;

 private:
  void Restart(uint32_t ssrc, uint16_t seq);
  int64_t LostSinceStart() const;
  bool started_ = false;
  uint32_t ssrc_ = 0;
  uint16_t max_seq_ = 0;
  uint32_t cycles_ = 0;
  uint32_t base_seq_ = 0;
  uint32_t bad_seq_ = 0x10000;  // RFC 3550 A.1: RTP_SEQ_MOD + 1, "none"
  int64_t received_ = 0;
  int64_t lost_before_ = 0;
  bool have_transit_ = false;
  int64_t transit_ = 0;
  double jitter_ = 0;  // in timestamp units
};

// Where a leg's party is and how to take its packets.
struct LegRemote {
  // From the SDP (c= and m=; RTCP on port + 1 unless a=rtcp said otherwise). Unset: not known
  // yet (the answer has not come): packets to this party are dropped.
  UdpAddress rtp;
  UdpAddress rtcp;
  // The IP the party's SIP messages come from (may differ from the SDP's behind NAT).
  std::optional<UdpAddress> signalling;
  bool latching = true;
  // The party said it will not send (recvonly, inactive): its silence is no timeout.
  bool sends = true;
  // The RTP clock rate of the negotiated codec (jitter is measured in its units).
  int clock_rate = 8000;
  // The payload type of RFC 4733 telephone-events on this leg; -1: none negotiated.
  int dtmf_payload_type = -1;
};

// One RFC 4733 digit a party sent, reported once: at the first packet of the event that has the
// end bit (the end packet's two retransmissions, and the event's earlier packets, are not).
struct DtmfDigit {
  char digit = 0;          // 0-9, *, #, A-D
  int duration = 0;        // in RTP timestamp units
  uint32_t timestamp = 0;  // the event's RTP timestamp: orders digits exactly
};

// Counters of one leg, as the worker keeps them.
struct LegCounters {
  int64_t packets_received = 0;  // relayed from this party
  int64_t packets_sent = 0;      // relayed to this party
  int64_t bytes_received = 0;
  int64_t dropped_source = 0;          // from an address that is not the party's
  int64_t dropped_malformed = 0;       // not RTP/RTCP version 2, or shorter than its header
  int64_t dropped_oversized = 0;       // larger than the receive buffer (2 KiB)
  int64_t dropped_no_destination = 0;  // the other party's address not known (yet), or hold
  int64_t send_errors = 0;
  // From the RTP sequence numbers and timestamps of what the party sent (RFC 3550 A.3, A.8):
  // packets it sent that never arrived here, and the interarrival jitter. Arrival times are
  // taken once per received batch, so jitter is an estimate to the batch's spread.
  int64_t packets_lost = 0;
  double jitter_ms = 0;
};

// A leg as a snapshot sees it.
struct LegState {
  int local_rtp_port = 0;
  bool latched = false;
  UdpAddress latched_rtp;
  LegRemote remote;
  LegCounters counters;
  absl::Time last_packet_at = absl::InfinitePast();
};

// Sees each RTP packet a LegPair takes from its parties (recording, live listen), on the pair's
// worker thread: it must neither block nor allocate. `arrival_ns` is CLOCK_MONOTONIC.
class PacketTap {
 public:
  virtual ~PacketTap() = default;
  virtual void OnRtp(int side, const uint8_t* packet, size_t size, int64_t arrival_ns) = 0;
};

// CLOCK_MONOTONIC now, in nanoseconds (the clock of PacketTap's arrival times).
int64_t MonotonicNanos();

class RtpRelay {
 public:
  class LegPair;
  using TimeoutHandler = std::function<void(const LegPair& pair, int side, absl::Duration silent)>;
  // On the worker thread: it must not block.
  using DtmfHandler = std::function<void(const LegPair& pair, int side, const DtmfDigit& digit)>;

  explicit RtpRelay(RelayOptions options);
  ~RtpRelay();
  RtpRelay(const RtpRelay&) = delete;
  RtpRelay& operator=(const RtpRelay&) = delete;

  // Starts the workers. Internal if epoll or a thread cannot be made.
  absl::Status Start();
  // Stops the workers; pairs not released are closed.
  void Stop();

  // Set before Start.
  void set_timeout_handler(TimeoutHandler handler) { on_timeout_ = std::move(handler); }
  void set_dtmf_handler(DtmfHandler handler) { on_dtmf_ = std::move(handler); }

  // Two legs relaying to each other, each on its own port pair. `opaque` is the caller's (a call
  // id, for the timeout handler). ResourceExhausted when the port range has no two free pairs.
  absl::StatusOr<std::shared_ptr<LegPair>> Create(std::string opaque);
  // Where side 0 or 1's party is. Re-setting a latched leg's remote unlatches it only when the SDP
  // address changed (a re-INVITE that moves the media).
  void SetRemote(const std::shared_ptr<LegPair>& pair, int side, LegRemote remote);
  // From now on `tap` sees the pair's RTP (null: nothing does). The worker holds a reference
  // until the tap is replaced or the pair released.
  void SetTap(const std::shared_ptr<LegPair>& pair, std::shared_ptr<PacketTap> tap);
  // Both legs as their worker sees them now (waits for the worker, up to a second).
  std::array<LegState, 2> Snapshot(const std::shared_ptr<LegPair>& pair);
  // Closes the pair's sockets and gives its ports back; its final state.
  std::array<LegState, 2> Release(const std::shared_ptr<LegPair>& pair);

  // Totals over every leg since Start (the sum of the legs' counters, kept per worker).
  struct Totals {
    int64_t packets_relayed = 0;
    int64_t bytes_relayed = 0;
    int64_t dropped_source = 0;
    int64_t dropped_malformed = 0;
    int64_t dropped_oversized = 0;
    int64_t dropped_no_destination = 0;
  };
  Totals totals() const;

  // RTP and RTCP ports bound now, and how many the range has.
  int ports_in_use() const;
  int ports_total() const { return port_capacity() * 2; }
  int port_capacity() const { return (options_.port_max - options_.port_min) / 2; }
  const RelayOptions& options() const { return options_; }

 private:
  struct Worker;
  struct Leg;
  friend class LegPair;

  // A free RTP port (and bound sockets for it and RTCP), or ResourceExhausted.
  absl::Status OpenLeg(Leg& leg);
  void CloseLeg(Leg& leg);
  Worker& Next();

  const RelayOptions options_;
  TimeoutHandler on_timeout_;
  DtmfHandler on_dtmf_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<size_t> next_worker_{0};
  mutable absl::Mutex ports_mu_;
  std::vector<bool> port_used_ ABSL_GUARDED_BY(ports_mu_);  // by (port - port_min) / 2
  size_t port_cursor_ ABSL_GUARDED_BY(ports_mu_) = 0;
  int ports_in_use_ ABSL_GUARDED_BY(ports_mu_) = 0;
};

class RtpRelay::LegPair {
 public:
  ~LegPair();
  const std::string& opaque() const { return opaque_; }
  // The RTP port side 0 / 1's party sends to.
  int local_port(int side) const;

 private:
  friend class RtpRelay;
  LegPair() = default;
  std::string opaque_;
  Worker* worker_ = nullptr;
  std::unique_ptr<Leg> legs_[2];
  std::shared_ptr<PacketTap> tap_;  // the worker's
  bool released_ = false;           // control side
};

}  // namespace sb::media
