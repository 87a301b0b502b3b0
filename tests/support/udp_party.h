#pragma once

// A party of a media test: a UDP socket on 127.0.0.1 (a free port) that sends datagrams to the
// relay's ports and receives what the relay sends it, and the SDP that names it.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sb::media::test {

class UdpParty {
 public:
  UdpParty() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~UdpParty() { close(fd_); }
  UdpParty(const UdpParty&) = delete;
  UdpParty& operator=(const UdpParty&) = delete;

  int port() const { return port_; }

  void SendTo(int port, const std::string& bytes) const {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof(to)) == static_cast<ssize_t>(bytes.size()));
  }

  // The next datagram within `ms`, and the port it came from.
  std::optional<std::pair<std::string, int>> Receive(int ms = 1000) const {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return std::nullopt;
    char buf[4096];
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    const ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return std::nullopt;
    return std::make_pair(std::string(buf, static_cast<size_t>(n)), ntohs(from.sin_port));
  }

  // An SDP offer or answer naming this party: `formats` on the m= line (RFC 4733 events as 101).
  std::string Sdp(const std::string& formats = "0 8 101",
                  const std::string& direction = "sendrecv") const {
    return absl::StrCat("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
                        "m=audio ", port_, " RTP/AVP ", formats,
                        "\r\na=rtpmap:101 telephone-event/8000\r\na=", direction, "\r\n");
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// An RTP packet: version 2, PCMU, sequence number `seq`, then `payload`.
inline std::string Rtp(uint16_t seq, const std::string& payload = "audio") {
  std::string p(12, '\0');
  p[0] = static_cast<char>(0x80);
  p[2] = static_cast<char>(seq >> 8);
  p[3] = static_cast<char>(seq & 0xff);
  return p + payload;
}

// An RFC 4733 packet: payload type 101, SSRC 0x0a0a0a0a, the event's timestamp, then the event,
// the end bit (volume -10 dBm0) and the duration so far.
inline std::string TelephoneEvent(uint16_t seq, uint32_t timestamp, int event, bool end,
                                  int duration) {
  std::string p = Rtp(seq, "");
  p[1] = static_cast<char>(101);
  for (int b = 0; b < 4; ++b) {
    p[4 + b] = static_cast<char>((timestamp >> (24 - 8 * b)) & 0xff);
    p[8 + b] = static_cast<char>(0x0a);
  }
  p.push_back(static_cast<char>(event));
  p.push_back(static_cast<char>((end ? 0x80 : 0) | 10));
  p.push_back(static_cast<char>(duration >> 8));
  p.push_back(static_cast<char>(duration & 0xff));
  return p;
}

}  // namespace sb::media::test
