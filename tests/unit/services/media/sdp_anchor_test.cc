#include <catch2/catch.hpp>

#include "services/media/sdp_anchor.h"

namespace sb::media {
namespace {

// A softphone's offer: audio with three codecs and DTMF, ICE, RTCP on its own port, and video.
constexpr char kOffer[] =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "a=ice-ufrag:F7gI\r\n"
    "a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n"
    "m=audio 49170 RTP/AVP 9 0 8 101\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=rtcp:53020\r\n"
    "a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
    "m=video 51372 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n";

std::vector<std::string> Encodings(const std::vector<PayloadFormat>& formats) {
  std::vector<std::string> out;
  for (const PayloadFormat& f : formats) out.push_back(f.Name());
  return out;
}

TEST_CASE("ParseAudio reads the first audio stream", "[media][sdp]") {
  absl::StatusOr<AudioStream> audio = ParseAudio(kOffer);
  INFO(audio.status().ToString());
  REQUIRE(audio.ok());
  CHECK(audio->address == "192.0.2.10");
  CHECK_FALSE(audio->ip6);
  CHECK(audio->port == 49170);
  CHECK(audio->transport == "RTP/AVP");
  CHECK(Encodings(audio->formats) ==
        std::vector<std::string>{"G722/8000", "PCMU/8000", "PCMA/8000", "telephone-event/8000"});
  CHECK(audio->formats[3].fmtp == "0-16");
  CHECK(audio->rtcp_port == 53020);
  CHECK(audio->ptime_ms == 20);
  CHECK(audio->direction == "sendrecv");
}

TEST_CASE("ParseAudio: media-level address and direction win; static types need no rtpmap",
          "[media][sdp]") {
  absl::StatusOr<AudioStream> audio = ParseAudio(
      "v=0\nc=IN IP4 192.0.2.1\na=sendonly\nm=audio 4000 RTP/AVP 0 8\nc=IN IP6 2001:db8::5\n");
  REQUIRE(audio.ok());
  CHECK(audio->address == "2001:db8::5");
  CHECK(audio->ip6);
  CHECK(audio->direction == "sendonly");  // the session-level one, none at media level
  CHECK(Encodings(audio->formats) == std::vector<std::string>{"PCMU/8000", "PCMA/8000"});
  absl::StatusOr<AudioStream> held =
      ParseAudio("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n");
  REQUIRE(held.ok());
  CHECK(held->address == "0.0.0.0");
  CHECK(held->direction == "inactive");
}

TEST_CASE("ParseAudio refuses what cannot be anchored, naming it", "[media][sdp]") {
  auto code = [](std::string_view sdp) { return ParseAudio(sdp).status().code(); };
  auto message = [](std::string_view sdp) {
    return std::string(ParseAudio(sdp).status().message());
  };
  CHECK(code("") == absl::StatusCode::kInvalidArgument);
  CHECK(code("garbage") == absl::StatusCode::kInvalidArgument);
  CHECK(code("v=0\r\nc=IN IP4 192.0.2.1\r\nm=video 4000 RTP/AVP 96\r\n") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(message("v=0\r\nm=audio 4000 RTP/AVP 0\r\n").find("connection address") !=
        std::string::npos);
  CHECK(code("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 99999 RTP/AVP 0\r\n") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(code("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP x\r\n") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(code("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000\r\n") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(code("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/SAVP 0\r\n") ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(message("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/SAVP 0\r\n").find("RTP/SAVP") !=
        std::string::npos);
  CHECK(code("v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 4000 RTP/AVP 0\r\n") ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(code("v=0\r\nc=IN IP4 224.2.1.1/127\r\nm=audio 4000 RTP/AVP 0\r\n") ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(code("v=0\r\nc=IN XX 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n") ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ChooseFormats: G.711 and DTMF first by default, an allow-list, the offer's subset",
          "[media][sdp]") {
  const AudioStream offer = *ParseAudio(kOffer);
  CHECK(Encodings(*ChooseFormats(offer, {})) ==
        std::vector<std::string>{"PCMU/8000", "PCMA/8000", "telephone-event/8000", "G722/8000"});
  CHECK(Encodings(*ChooseFormats(offer, {"pcma", "telephone-event"})) ==
        std::vector<std::string>{"PCMA/8000", "telephone-event/8000"});
  absl::StatusOr<std::vector<PayloadFormat>> none = ChooseFormats(offer, {"opus"});
  CHECK(absl::IsFailedPrecondition(none.status()));
  CHECK(std::string(none.status().message()).find("G722/8000") != std::string::npos);
  // DTMF alone is no audio codec.
  CHECK(absl::IsFailedPrecondition(ChooseFormats(offer, {"telephone-event"}).status()));

  // The answer may only use what the offer carried, matched by name (its numbers may differ).
  const std::vector<PayloadFormat> offered = *ChooseFormats(offer, {"PCMA", "telephone-event"});
  const AudioStream answer = *ParseAudio(
      "v=0\r\nc=IN IP4 198.51.100.7\r\nm=audio 30000 RTP/AVP 0 8 96\r\n"
      "a=rtpmap:96 telephone-event/8000\r\n");
  CHECK(Encodings(*ChooseFormats(answer, {}, &offered)) ==
        std::vector<std::string>{"PCMA/8000", "telephone-event/8000"});
  const AudioStream pcmu_only =
      *ParseAudio("v=0\r\nc=IN IP4 198.51.100.7\r\nm=audio 30000 RTP/AVP 0\r\n");
  CHECK(absl::IsFailedPrecondition(ChooseFormats(pcmu_only, {}, &offered).status()));
}

TEST_CASE("RewriteAudio points audio at the node, keeps the chosen formats, declines the rest",
          "[media][sdp]") {
  const AudioStream offer = *ParseAudio(kOffer);
  const std::vector<PayloadFormat> formats = *ChooseFormats(offer, {"PCMU", "telephone-event"});
  const std::string out = RewriteAudio(kOffer, "203.0.113.5", 30000, formats, /*strip_ice=*/true);
  CHECK(out ==
        "v=0\r\n"
        "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
        "s=-\r\n"
        "c=IN IP4 203.0.113.5\r\n"
        "t=0 0\r\n"
        "m=audio 30000 RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
        "m=video 0 RTP/AVP 96\r\n"
        "a=rtpmap:96 H264/90000\r\n");
  // What comes out parses as pointing at the node.
  const AudioStream rewritten = *ParseAudio(out);
  CHECK(rewritten.address == "203.0.113.5");
  CHECK(rewritten.port == 30000);
  CHECK_FALSE(rewritten.rtcp_port.has_value());

  // ICE kept when not asked to strip; a media-level c= replaced too; IPv6 addresses.
  const std::string v6 =
      RewriteAudio("v=0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.1\na=ice-ufrag:x\n",
                   "2001:db8::9", 30002, {{0, "PCMU", 8000}}, false);
  CHECK(v6 == "v=0\nm=audio 30002 RTP/AVP 0\nc=IN IP6 2001:db8::9\na=ice-ufrag:x\n");
}

}  // namespace
}  // namespace sb::media
