#include "libs/sip/sdp.h"

#include <catch2/catch.hpp>

namespace sb::sip {
namespace {

constexpr char kOffer[] =
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\n"
    "t=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n";

TEST_CASE("StampOrigin puts our o= line in, its version growing per leg") {
  SdpOrigin leg;
  const std::string first = StampOrigin(kOffer, leg, "192.0.2.1");
  REQUIRE(leg.session_id != 0);
  const std::string id = std::to_string(leg.session_id);
  CHECK(first.find("o=- " + id + " " + std::to_string(leg.session_id + 1) +
                   " IN IP4 192.0.2.1\r\n") != std::string::npos);
  CHECK(first.find("o=alice") == std::string::npos);
  // Everything else is untouched.
  CHECK(first.find("c=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\n") !=
        std::string::npos);
  // The same description again (a 200 repeating a 183's): the same version.
  CHECK(StampOrigin(kOffer, leg, "192.0.2.1") == first);
  const std::string second = StampOrigin(std::string(kOffer) + "a=sendonly\r\n", leg, "192.0.2.1");
  CHECK(second.find("o=- " + id + " " + std::to_string(leg.session_id + 2) + " ") !=
        std::string::npos);
  SdpOrigin v6;
  CHECK(StampOrigin(kOffer, v6, "2001:db8::1").find(" IN IP6 2001:db8::1\r\n") !=
        std::string::npos);
  CHECK(v6.session_id != leg.session_id);
}

TEST_CASE("StampOrigin leaves a body without o= alone and keeps LF line ends") {
  SdpOrigin leg;
  CHECK(StampOrigin("not sdp", leg, "h") == "not sdp");
  CHECK(leg.session_id == 0);
  const std::string lf = StampOrigin("v=0\no=x 1 1 IN IP4 h\ns=-\n", leg, "h");
  CHECK(lf.find("\r") == std::string::npos);
  CHECK(lf.find("s=-\n") != std::string::npos);
}

TEST_CASE("AudioDirection reads the media level first, then the session level") {
  CHECK(AudioDirection(kOffer) == "sendrecv");
  CHECK(AudioDirection(std::string(kOffer) + "a=sendonly\r\n") == "sendonly");
  CHECK(IsHold(std::string(kOffer) + "a=sendonly\r\n"));
  CHECK(IsHold(std::string(kOffer) + "a=inactive\r\n"));
  CHECK(!IsHold(std::string(kOffer) + "a=recvonly\r\n"));
  const std::string session_level =
      "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=inactive\r\nc=IN IP4 h\r\nt=0 0\r\n"
      "m=audio 1 RTP/AVP 0\r\n";
  CHECK(AudioDirection(session_level) == "inactive");
  CHECK(AudioDirection(session_level + "a=sendrecv\r\n") == "sendrecv");
  // RFC 2543 hold.
  CHECK(
      IsHold("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
             "m=audio 1 RTP/AVP 0\r\n"));
  // A direction in a later video stream does not count.
  CHECK(AudioDirection(std::string(kOffer) + "m=video 5 RTP/AVP 96\r\na=inactive\r\n") ==
        "sendrecv");
}

TEST_CASE("WithDirection sets every stream's direction once") {
  const std::string held = WithDirection(std::string(kOffer) + "a=sendrecv\r\n", "inactive");
  CHECK(AudioDirection(held) == "inactive");
  CHECK(held.find("a=sendrecv") == std::string::npos);
  CHECK(held.find("a=inactive") == held.rfind("a=inactive"));
  const std::string two = WithDirection(
      "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=sendonly\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
      "m=video 2 RTP/AVP 96\r\na=recvonly\r\n",
      "sendrecv");
  CHECK(two ==
        "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n"
        "m=video 2 RTP/AVP 96\r\na=sendrecv\r\n");
  CHECK(AudioDirection(WithDirection(held, "sendrecv")) == "sendrecv");
}

TEST_CASE("SameMedia compares addresses, ports and formats only") {
  const std::string other_origin =
      "v=0\r\no=bob 1 7 IN IP4 10.0.0.9\r\ns=call\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
      "m=audio 49170 RTP/AVP 0 101\r\na=sendonly\r\n";
  CHECK(SameMedia(kOffer, other_origin));
  std::string moved = kOffer;
  moved.replace(moved.find("49170"), 5, "49172");
  CHECK(!SameMedia(kOffer, moved));
}

TEST_CASE("PlaceholderOffer offers inactive audio on the discard port") {
  const std::string offer = PlaceholderOffer("192.0.2.1");
  CHECK(AudioDirection(offer) == "inactive");
  CHECK(offer.find("c=IN IP4 192.0.2.1\r\n") != std::string::npos);
  CHECK(offer.find("m=audio 9 RTP/AVP 0 8 9 101\r\n") != std::string::npos);
  SdpOrigin origin;
  CHECK(StampOrigin(offer, origin, "192.0.2.1").find("o=- ") != std::string::npos);
  CHECK(PlaceholderOffer("2001:db8::1").find("c=IN IP6 2001:db8::1") != std::string::npos);
}

}  // namespace
}  // namespace sb::sip
