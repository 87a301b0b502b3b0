#include "services/media/rtp_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/common/check.h"
#include "spdlog/spdlog.h"

namespace sb::media {

// ---------------------------------------------------------------------------------------------
// UdpAddress

absl::StatusOr<UdpAddress> UdpAddress::Parse(const std::string& ip, int port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is outside 0..65535"));
  }
  UdpAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.len_ = sizeof(sockaddr_in);
    return out;
  }
  out.storage_ = {};
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.len_ = sizeof(sockaddr_in6);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", ip, "' is not an IP address"));
}

UdpAddress UdpAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  UdpAddress out;
  if (sa == nullptr || len > sizeof(out.storage_)) return out;
  if ((sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) ||
      (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6))) {
    std::memcpy(&out.storage_, sa, len);
    out.len_ = sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  return out;
}

bool UdpAddress::unspecified() const {
  if (!valid()) return true;
  if (ip6()) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
  }
  return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == INADDR_ANY;
}

int UdpAddress::port() const {
  if (!valid()) return 0;
  return ip6() ? ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port)
               : ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
}

UdpAddress UdpAddress::WithPort(int port) const {
  UdpAddress out = *this;
  if (!valid()) return out;
  if (ip6()) {
    reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_port = htons(static_cast<uint16_t>(port));
  }
  return out;
}

bool UdpAddress::SameIp(const UdpAddress& other) const {
  if (!valid() || !other.valid() || storage_.ss_family != other.storage_.ss_family) return false;
  if (ip6()) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&other.storage_)->sin6_addr,
                       sizeof(in6_addr)) == 0;
  }
  return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr ==
         reinterpret_cast<const sockaddr_in*>(&other.storage_)->sin_addr.s_addr;
}

std::string UdpAddress::Ip() const {
  if (!valid()) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (ip6()) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
              sizeof(buf));
  }
  return buf;
}

std::string UdpAddress::ToString() const {
  if (!valid()) return "";
  return ip6() ? absl::StrCat("[", Ip(), "]:", port()) : absl::StrCat(Ip(), ":", port());
}

// ---------------------------------------------------------------------------------------------
// RtpReception

void RtpReception::Restart(uint32_t ssrc, uint16_t seq) {
  if (started_) lost_before_ += LostSinceStart();
  started_ = true;
  ssrc_ = ssrc;
  base_seq_ = seq;
  max_seq_ = seq;
  cycles_ = 0;
  bad_seq_ = 0x10000;
  received_ = 0;
  have_transit_ = false;
  jitter_ = 0;
}

void RtpReception::Observe(uint32_t ssrc, uint16_t seq, uint32_t timestamp, int64_t arrival_ns,
                           int clock_rate) {
  if (!started_ || ssrc != ssrc_) Restart(ssrc, seq);
  // RFC 3550 A.1, without the probation: a jump of more than kMaxDropout is taken as a restart
  // of the sender when the next packet continues from it.
  constexpr uint16_t kMaxDropout = 3000;
  constexpr uint16_t kMaxMisorder = 100;
  const uint16_t delta = static_cast<uint16_t>(seq - max_seq_);
  if (received_ == 0) {
    // The first packet of this source.
  } else if (delta == 0) {
    return;  // a copy of the latest packet (RFC 3550 counts it; it would hide a loss)
  } else if (delta < kMaxDropout) {
    if (seq < max_seq_) cycles_ += 0x10000;  // wrapped
    max_seq_ = seq;
  } else if (delta <= 0x10000 - kMaxMisorder) {
    if (seq == bad_seq_) {
      Restart(ssrc, seq);
    } else {
      bad_seq_ = static_cast<uint32_t>(seq + 1) & 0xffff;
      return;
    }
  }
  // Otherwise a late (reordered) packet, or a copy of an older one: counted as received.
  ++received_;
  // A.8: the interarrival jitter, in timestamp units.
  const int64_t arrival = arrival_ns / 1000 * clock_rate / 1'000'000;
  const int64_t transit = arrival - static_cast<int64_t>(timestamp);
  if (have_transit_) {
    int64_t d = transit - transit_;
    if (d < 0) d = -d;
    jitter_ += (static_cast<double>(d) - jitter_) / 16.0;
  }
  transit_ = transit;
  have_transit_ = true;
}

int64_t RtpReception::LostSinceStart() const {
  if (!started_ || received_ == 0) return 0;
  const int64_t expected = static_cast<int64_t>(cycles_) + max_seq_ - base_seq_ + 1;
  return std::max<int64_t>(0, expected - received_);
}

int64_t RtpReception::lost() const { return lost_before_ + LostSinceStart(); }

double RtpReception::jitter_ms(int clock_rate) const {
  return clock_rate > 0 ? jitter_ * 1000.0 / clock_rate : 0;
}

// ---------------------------------------------------------------------------------------------
// Legs and workers

namespace {

constexpr int kBatch = 32;
// Larger than any RTP packet media relays (an Ethernet MTU); a datagram that does not fit is
// truncated by the kernel (MSG_TRUNC) and dropped as oversized.
constexpr size_t kBufferSize = 2048;
constexpr int kRtp = 0;
constexpr int kRtcp = 1;

// RTP (RFC 3550 §5.1) needs its 12-byte header, RTCP (§6.4) its 8; both version 2.
bool WellFormed(const uint8_t* data, size_t size, int kind) {
  if (size < (kind == kRtp ? 12u : 8u)) return false;
  return (data[0] >> 6) == 2;
}

}  // namespace

int64_t MonotonicNanos() {
  timespec mono{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return int64_t{mono.tv_sec} * 1'000'000'000 + mono.tv_nsec;
}

struct RtpRelay::Leg {
  LegPair* pair = nullptr;
  int side = 0;
  Leg* peer = nullptr;
  int rtp_port = 0;
  int fds[2] = {-1, -1};
  // The worker's alone while the pair is registered.
  LegRemote remote;
  UdpAddress latched[2];
  LegCounters counters;
  absl::Time created = absl::InfinitePast();
  absl::Time last_packet = absl::InfinitePast();
  bool timed_out = false;
  RtpReception reception;
  // The last telephone-event reported (RFC 4733 §2.5: one event per SSRC and timestamp).
  bool dtmf_reported = false;
  uint32_t dtmf_ssrc = 0;
  uint32_t dtmf_timestamp = 0;

  // An RFC 4733 digit in `packet` (the leg's telephone-event payload) not reported yet.
  std::optional<DtmfDigit> NewDigit(const uint8_t* packet, size_t size) {
    if (remote.dtmf_payload_type < 0 || (packet[1] & 0x7f) != remote.dtmf_payload_type) {
      return std::nullopt;
    }
    const size_t offset = 12 + 4 * static_cast<size_t>(packet[0] & 0x0f);
    if ((packet[0] & 0x10) != 0 || offset + 4 > size) return std::nullopt;
    const uint8_t* event = packet + offset;
    if ((event[1] & 0x80) == 0 || event[0] > 15) return std::nullopt;  // not the end, or no digit
    const uint32_t ssrc = (uint32_t{packet[8]} << 24) | (uint32_t{packet[9]} << 16) |
                          (uint32_t{packet[10]} << 8) | packet[11];
    const uint32_t timestamp = (uint32_t{packet[4]} << 24) | (uint32_t{packet[5]} << 16) |
                               (uint32_t{packet[6]} << 8) | packet[7];
    if (dtmf_reported && ssrc == dtmf_ssrc && timestamp == dtmf_timestamp) return std::nullopt;
    dtmf_reported = true;
    dtmf_ssrc = ssrc;
    dtmf_timestamp = timestamp;
    static constexpr char kDigits[] = "0123456789*#ABCD";
    return DtmfDigit{
        .digit = kDigits[event[0]], .duration = (event[2] << 8) | event[3], .timestamp = timestamp};
  }

  LegState State() const {
    LegCounters c = counters;
    c.packets_lost = reception.lost();
    c.jitter_ms = reception.jitter_ms(remote.clock_rate);
    return {.local_rtp_port = rtp_port,
            .latched = latched[kRtp].valid(),
            .latched_rtp = latched[kRtp],
            .remote = remote,
            .counters = c,
            .last_packet_at = last_packet};
  }

  // Whether a packet from `src` on socket `kind` is the party's (latching to it if it may).
  bool Accept(int kind, const UdpAddress& src) {
    UdpAddress& latch = latched[kind];
    if (latch.valid()) return src == latch;
    const UdpAddress& expected = kind == kRtp ? remote.rtp : remote.rtcp;
    if (expected.valid() && src == expected) {
      if (remote.latching) latch = src;
      return true;
    }
    if (!remote.latching) return false;
    const bool ours = (remote.signalling && src.SameIp(*remote.signalling)) ||
                      (expected.valid() && !expected.unspecified() && src.SameIp(expected)) ||
                      (kind == kRtcp && latched[kRtp].valid() && src.SameIp(latched[kRtp]));
    if (ours) latch = src;
    return ours;
  }

  // Where the party's packets of `kind` go: its latched source, else what its SDP said.
  const UdpAddress* Destination(int kind) const {
    if (latched[kind].valid()) return &latched[kind];
    const UdpAddress& sdp = kind == kRtp ? remote.rtp : remote.rtcp;
    if (!sdp.valid() || sdp.unspecified() || sdp.port() == 0) return nullptr;
    return &sdp;
  }
};

struct RtpRelay::Worker {
  RtpRelay* relay = nullptr;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};
  absl::Mutex mu;
  std::vector<absl::AnyInvocable<void()>> commands ABSL_GUARDED_BY(mu);
  // Written by the worker once per batch, read by totals().
  std::atomic<int64_t> relayed{0}, bytes{0}, dropped_source{0}, dropped_malformed{0},
      dropped_oversized{0}, dropped_no_destination{0};
  // Worker-only: the legs registered here.
  std::vector<Leg*> legs;
  // Receive buffers and message headers, allocated once.
  std::vector<std::array<uint8_t, kBufferSize>> buffers =
      std::vector<std::array<uint8_t, kBufferSize>>(kBatch);
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> in{};
  std::array<sockaddr_storage, kBatch> sources{};
  std::array<iovec, kBatch> out_iov{};
  std::array<mmsghdr, kBatch> out{};

  // Runs `command` on the worker (inline when called from it or when it is not running).
  void Post(absl::AnyInvocable<void()> command) {
    if (!running.load() || std::this_thread::get_id() == thread.get_id()) {
      command();
      return;
    }
    {
      absl::MutexLock lock(&mu);
      commands.push_back(std::move(command));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd, &one, sizeof(one));
  }

  void RunCommands() {
    uint64_t value;
    while (read(wake_fd, &value, sizeof(value)) > 0) {
    }
    std::vector<absl::AnyInvocable<void()>> batch;
    {
      absl::MutexLock lock(&mu);
      batch.swap(commands);
    }
    for (auto& command : batch) command();
  }

  void Register(Leg* leg) {
    for (int kind : {kRtp, kRtcp}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = reinterpret_cast<uintptr_t>(leg) | static_cast<uintptr_t>(kind);
      SB_CHECK(epoll_ctl(epoll_fd, EPOLL_CTL_ADD, leg->fds[kind], &ev) == 0)
          << "media: epoll_ctl ADD: " << std::strerror(errno);
    }
    legs.push_back(leg);
  }

  void Unregister(Leg* leg) {
    for (int kind : {kRtp, kRtcp}) {
      if (leg->fds[kind] >= 0) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, leg->fds[kind], nullptr);
    }
    std::erase(legs, leg);
  }

  // Reads one batch from `leg`'s socket `kind` and relays what is the party's to the peer.
  void Relay(Leg& leg, int kind) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {buffers[i].data(), kBufferSize};
      in[i].msg_hdr = {};
      in[i].msg_hdr.msg_name = &sources[i];
      in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      in[i].msg_hdr.msg_iov = &iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(leg.fds[kind], in.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    const absl::Time now = absl::Now();
    const int64_t arrival_ns = MonotonicNanos();
    Leg& peer = *leg.peer;
    PacketTap* tap = leg.pair->tap_.get();
    const UdpAddress* to = peer.Destination(kind);
    int queued = 0;
    int64_t batch_bytes = 0, source = 0, malformed = 0, oversized = 0, nowhere = 0;
    for (int i = 0; i < n; ++i) {
      const size_t size = in[i].msg_len;
      if ((in[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        ++oversized;
        continue;
      }
      if (!WellFormed(buffers[i].data(), size, kind)) {
        ++malformed;
        continue;
      }
      const UdpAddress src = UdpAddress::FromSockaddr(
          reinterpret_cast<const sockaddr*>(&sources[i]), in[i].msg_hdr.msg_namelen);
      if (!leg.Accept(kind, src)) {
        ++source;
        continue;
      }
      leg.last_packet = now;
      leg.timed_out = false;
      if (kind == kRtp) {
        const uint8_t* h = buffers[i].data();
        leg.reception.Observe(
            (uint32_t{h[8]} << 24) | (uint32_t{h[9]} << 16) | (uint32_t{h[10]} << 8) | h[11],
            static_cast<uint16_t>((h[2] << 8) | h[3]),
            (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7],
            arrival_ns, leg.remote.clock_rate);
        if (tap != nullptr) tap->OnRtp(leg.side, h, size, arrival_ns);
        if (relay->on_dtmf_) {
          if (std::optional<DtmfDigit> digit = leg.NewDigit(h, size)) {
            relay->on_dtmf_(*leg.pair, leg.side, *digit);
          }
        }
      }
      ++leg.counters.packets_received;
      leg.counters.bytes_received += static_cast<int64_t>(size);
      if (to == nullptr) {
        ++nowhere;
        continue;
      }
      batch_bytes += static_cast<int64_t>(size);
      out_iov[queued] = {buffers[i].data(), size};
      out[queued].msg_hdr = {};
      out[queued].msg_hdr.msg_name = const_cast<sockaddr*>(to->sockaddr_ptr());
      out[queued].msg_hdr.msg_namelen = to->length();
      out[queued].msg_hdr.msg_iov = &out_iov[queued];
      out[queued].msg_hdr.msg_iovlen = 1;
      ++queued;
    }
    leg.counters.dropped_source += source;
    leg.counters.dropped_malformed += malformed;
    leg.counters.dropped_oversized += oversized;
    leg.counters.dropped_no_destination += nowhere;
    if (source != 0) dropped_source.fetch_add(source, std::memory_order_relaxed);
    if (malformed != 0) dropped_malformed.fetch_add(malformed, std::memory_order_relaxed);
    if (oversized != 0) dropped_oversized.fetch_add(oversized, std::memory_order_relaxed);
    if (nowhere != 0) dropped_no_destination.fetch_add(nowhere, std::memory_order_relaxed);
    int sent = 0;
    while (sent < queued) {
      const int r = sendmmsg(peer.fds[kind], out.data() + sent, queued - sent, MSG_DONTWAIT);
      if (r <= 0) {
        // A full socket buffer or an unreachable party: the rest of the batch is lost, as UDP is.
        peer.counters.send_errors += queued - sent;
        break;
      }
      sent += r;
    }
    peer.counters.packets_sent += sent;
    if (sent > 0) {
      relayed.fetch_add(sent, std::memory_order_relaxed);
      bytes.fetch_add(batch_bytes, std::memory_order_relaxed);
    }
  }

  void CheckTimeouts(absl::Time now) {
    const absl::Duration timeout = relay->options_.rtp_timeout;
    if (timeout <= absl::ZeroDuration() || !relay->on_timeout_) return;
    for (Leg* leg : legs) {
      if (leg->timed_out || !leg->remote.sends || !leg->remote.rtp.valid()) continue;
      const absl::Time since = std::max(leg->created, leg->last_packet);
      if (now - since < timeout) continue;
      leg->timed_out = true;
      relay->on_timeout_(*leg->pair, leg->side, now - since);
    }
  }

  void Run() {
    epoll_event events[64];
    absl::Time next_check = absl::Now() + absl::Seconds(1);
    while (!stopping.load()) {
      const int n = epoll_wait(epoll_fd, events, 64, 250);
      // Commands first: a remote set before its party's first packet was sent must apply to it.
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == 0) RunCommands();
      }
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == 0) continue;
        const uintptr_t tagged = events[i].data.u64;
        // A leg unregistered by a command earlier in this batch is not in `legs` any more.
        Leg* leg = reinterpret_cast<Leg*>(tagged & ~uintptr_t{1});
        if (std::find(legs.begin(), legs.end(), leg) == legs.end()) continue;
        Relay(*leg, static_cast<int>(tagged & 1));
      }
      const absl::Time now = absl::Now();
      if (now >= next_check) {
        CheckTimeouts(now);
        next_check = now + absl::Seconds(1);
      }
    }
    RunCommands();
  }
};

RtpRelay::LegPair::~LegPair() = default;

int RtpRelay::LegPair::local_port(int side) const { return legs_[side]->rtp_port; }

RtpRelay::RtpRelay(RelayOptions options) : options_(std::move(options)) {
  SB_CHECK(options_.port_min > 0 && options_.port_max <= 65536 &&
           options_.port_max - options_.port_min >= 4)
      << "media: port range [" << options_.port_min << ", " << options_.port_max
      << ") is too small";
  absl::MutexLock lock(&ports_mu_);
  port_used_.assign(static_cast<size_t>(port_capacity()), false);
}

RtpRelay::~RtpRelay() {
  Stop();
  for (auto& w : workers_) {
    close(w->epoll_fd);
    close(w->wake_fd);
  }
}

absl::Status RtpRelay::Start() {
  const int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->relay = this;
    worker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    worker->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (worker->epoll_fd < 0 || worker->wake_fd < 0) {
      return absl::InternalError(absl::StrCat("media: epoll/eventfd: ", std::strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, worker->wake_fd, &ev);
    Worker* w = worker.get();
    w->running.store(true);
    w->thread = std::thread([w] {
      pthread_setname_np(pthread_self(), "media-relay");
      w->Run();
    });
    workers_.push_back(std::move(worker));
  }
  return absl::OkStatus();
}

void RtpRelay::Stop() {
  for (auto& w : workers_) {
    w->stopping.store(true);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(w->wake_fd, &one, sizeof(one));
  }
  for (auto& w : workers_) {
    if (!w->thread.joinable()) continue;
    w->thread.join();
    // From here on commands run inline on the caller's thread (Worker::Post).
    w->running.store(false);
    for (Leg* leg : w->legs) CloseLeg(*leg);
    w->legs.clear();
  }
}

RtpRelay::Worker& RtpRelay::Next() {
  SB_CHECK(!workers_.empty()) << "media: relay used before Start";
  return *workers_[next_worker_.fetch_add(1) % workers_.size()];
}

absl::Status RtpRelay::OpenLeg(Leg& leg) {
  absl::StatusOr<UdpAddress> bind = UdpAddress::Parse(options_.bind_address, 0);
  if (!bind.ok()) return bind.status();
  absl::MutexLock lock(&ports_mu_);
  const size_t pairs = port_used_.size();
  for (size_t tried = 0; tried < pairs; ++tried) {
    const size_t slot = port_cursor_;
    port_cursor_ = (port_cursor_ + 1) % pairs;
    if (port_used_[slot]) continue;
    const int port = options_.port_min + static_cast<int>(slot) * 2;
    int fds[2] = {-1, -1};
    bool ok = true;
    for (int kind : {kRtp, kRtcp}) {
      fds[kind] =
          socket(bind->ip6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const UdpAddress at = bind->WithPort(port + kind);
      if (fds[kind] < 0 || ::bind(fds[kind], at.sockaddr_ptr(), at.length()) != 0) {
        ok = false;
        break;
      }
    }
    if (!ok) {
      // Taken by another process (or out of descriptors): the next pair is tried.
      for (int fd : fds) {
        if (fd >= 0) close(fd);
      }
      continue;
    }
    port_used_[slot] = true;
    ++ports_in_use_;
    leg.rtp_port = port;
    leg.fds[kRtp] = fds[kRtp];
    leg.fds[kRtcp] = fds[kRtcp];
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "media: no free RTP port pair in [", options_.port_min, ", ", options_.port_max, ")"));
}

void RtpRelay::CloseLeg(Leg& leg) {
  for (int& fd : leg.fds) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  if (leg.rtp_port == 0) return;
  absl::MutexLock lock(&ports_mu_);
  port_used_[static_cast<size_t>((leg.rtp_port - options_.port_min) / 2)] = false;
  --ports_in_use_;
  leg.rtp_port = 0;
}

RtpRelay::Totals RtpRelay::totals() const {
  Totals t;
  for (const auto& w : workers_) {
    t.packets_relayed += w->relayed.load(std::memory_order_relaxed);
    t.bytes_relayed += w->bytes.load(std::memory_order_relaxed);
    t.dropped_source += w->dropped_source.load(std::memory_order_relaxed);
    t.dropped_malformed += w->dropped_malformed.load(std::memory_order_relaxed);
    t.dropped_oversized += w->dropped_oversized.load(std::memory_order_relaxed);
    t.dropped_no_destination += w->dropped_no_destination.load(std::memory_order_relaxed);
  }
  return t;
}

int RtpRelay::ports_in_use() const {
  absl::MutexLock lock(&ports_mu_);
  return ports_in_use_ * 2;
}

absl::StatusOr<std::shared_ptr<RtpRelay::LegPair>> RtpRelay::Create(std::string opaque) {
  auto pair = std::shared_ptr<LegPair>(new LegPair());
  pair->opaque_ = std::move(opaque);
  const absl::Time now = absl::Now();
  for (int side : {0, 1}) {
    pair->legs_[side] = std::make_unique<Leg>();
    Leg& leg = *pair->legs_[side];
    leg.pair = pair.get();
    leg.side = side;
    leg.created = now;
    if (absl::Status s = OpenLeg(leg); !s.ok()) {
      if (side == 1) CloseLeg(*pair->legs_[0]);
      return s;
    }
  }
  pair->legs_[0]->peer = pair->legs_[1].get();
  pair->legs_[1]->peer = pair->legs_[0].get();
  Worker& worker = Next();
  pair->worker_ = &worker;
  Leg* a = pair->legs_[0].get();
  Leg* b = pair->legs_[1].get();
  worker.Post([pair, &worker, a, b] {
    worker.Register(a);
    worker.Register(b);
  });
  return pair;
}

void RtpRelay::SetRemote(const std::shared_ptr<LegPair>& pair, int side, LegRemote remote) {
  Leg* leg = pair->legs_[side].get();
  pair->worker_->Post([pair, leg, remote = std::move(remote)]() mutable {
    if (!(remote.rtp == leg->remote.rtp)) leg->latched[kRtp] = UdpAddress();
    if (!(remote.rtcp == leg->remote.rtcp)) leg->latched[kRtcp] = UdpAddress();
    if (!remote.latching) {
      leg->latched[kRtp] = UdpAddress();
      leg->latched[kRtcp] = UdpAddress();
    }
    leg->remote = std::move(remote);
    leg->timed_out = false;
  });
}

void RtpRelay::SetTap(const std::shared_ptr<LegPair>& pair, std::shared_ptr<PacketTap> tap) {
  if (pair->released_) return;
  pair->worker_->Post([pair, tap = std::move(tap)]() mutable { pair->tap_ = std::move(tap); });
}

std::array<LegState, 2> RtpRelay::Snapshot(const std::shared_ptr<LegPair>& pair) {
  auto states = std::make_shared<std::array<LegState, 2>>();
  auto done = std::make_shared<absl::Notification>();
  Leg* a = pair->legs_[0].get();
  Leg* b = pair->legs_[1].get();
  pair->worker_->Post([pair, states, done, a, b] {
    (*states)[0] = a->State();
    (*states)[1] = b->State();
    done->Notify();
  });
  done->WaitForNotificationWithTimeout(absl::Seconds(1));
  return *states;
}

std::array<LegState, 2> RtpRelay::Release(const std::shared_ptr<LegPair>& pair) {
  if (pair->released_) return {pair->legs_[0]->State(), pair->legs_[1]->State()};
  pair->released_ = true;
  auto states = std::make_shared<std::array<LegState, 2>>();
  auto done = std::make_shared<absl::Notification>();
  Worker* worker = pair->worker_;
  Leg* a = pair->legs_[0].get();
  Leg* b = pair->legs_[1].get();
  worker->Post([pair, worker, states, done, a, b] {
    worker->Unregister(a);
    worker->Unregister(b);
    pair->tap_.reset();
    (*states)[0] = a->State();
    (*states)[1] = b->State();
    done->Notify();
  });
  // The worker stops touching the legs before their sockets close.
  if (!done->WaitForNotificationWithTimeout(absl::Seconds(5))) {
    spdlog::error("media: relay worker did not release a pair within 5 s; its ports stay taken");
    return *states;
  }
  CloseLeg(*a);
  CloseLeg(*b);
  return *states;
}

}  // namespace sb::media
