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

}  // namespace sb::media::test
