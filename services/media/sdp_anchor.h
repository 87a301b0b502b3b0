#pragma once

// What media reads from a session description (RFC 4566) and how it rewrites one so that a leg's
// RTP comes to this node (RFC 3264 offer/answer). Only the first audio stream is anchored; any
// other stream is declined in the rewritten description (port 0, RFC 3264 §6). Everything media
// does not own (origin, session name, attributes other than ICE and RTCP) passes unchanged; sip
// stamps its own o= line on top.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sb::media {

// One payload format of a stream: its number and, from a=rtpmap (or RFC 3551 for the static
// numbers), its encoding.
struct PayloadFormat {
  int payload_type = 0;
  std::string encoding;  // "PCMU", "telephone-event", ... ("" for an unknown dynamic type)
  int clock_rate = 0;
  int channels = 1;
  std::string fmtp;  // the a=fmtp value, if any

  // "PCMU/8000" (with "/2" for two channels): how MediaLeg.codec names it.
  std::string Name() const;
};

// The first audio stream of a description.
struct AudioStream {
  std::string address;  // from the stream's c= line, else the session's
  bool ip6 = false;
  int port = 0;                        // 0: declined
  std::string transport;               // "RTP/AVP", "RTP/AVPF"
  std::vector<PayloadFormat> formats;  // in the m= line's (preference) order
  std::string direction = "sendrecv";
  std::optional<int> rtcp_port;  // a=rtcp (RFC 3605)
  int ptime_ms = 0;              // a=ptime, 0 when absent
};

// The first audio stream of `sdp`. InvalidArgument naming what is wrong: no v= line, an m= or
// c= line that does not parse, no audio stream, an audio stream without a connection address.
// FailedPrecondition for an audio stream media cannot relay: a transport other than RTP/AVP or
// RTP/AVPF (SRTP and DTLS are not anchored yet), or an address that is not an IP literal.
absl::StatusOr<AudioStream> ParseAudio(std::string_view sdp);

// The formats to keep on a leg. `allowed` names encodings in preference order (case-insensitive);
// empty means PCMU, PCMA and telephone-event first, then whatever else the stream carries. With
// `answered` (the offer this stream answers), only formats the offer carried are kept (RFC 3264
// §6.1), matched by encoding and clock rate. FailedPrecondition when no audio codec is left (only
// telephone-event, or nothing).
absl::StatusOr<std::vector<PayloadFormat>> ChooseFormats(
    const AudioStream& stream, const std::vector<std::string>& allowed,
    const std::vector<PayloadFormat>* answered = nullptr);

// `sdp` pointing its audio at `address`:`rtp_port` (RTCP at rtp_port + 1, so a=rtcp is dropped),
// carrying only `formats` (m= line, a=rtpmap and a=fmtp of the others removed), every other
// stream declined; ICE attributes removed when `strip_ice`. Session- and media-level c= lines
// both carry the new address.
std::string RewriteAudio(std::string_view sdp, const std::string& address, int rtp_port,
                         const std::vector<PayloadFormat>& formats, bool strip_ice);

}  // namespace sb::media
