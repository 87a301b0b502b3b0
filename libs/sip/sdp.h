#pragma once

// What the B2BUA changes in the session descriptions it passes between call legs (RFC 4566,
// RFC 3264). It terminates each leg's offer/answer exchange, so each leg sees one originator
// (us) whose o= version grows with every changed description, whoever on the other side
// produced it; and it can put a stream on hold by its direction attribute. Everything else (the
// media addresses, ports and codecs) passes untouched: media flows between the endpoints.

#include <cstdint>
#include <string>
#include <string_view>

namespace sb::sip {

// One leg's o= line as we send it: our session id and the version of the last description sent.
struct SdpOrigin {
  uint64_t session_id = 0;  // 0: not started (StampOrigin picks one)
  uint64_t version = 0;
  std::string last;  // the description last stamped, as received
};

// `sdp` with its o= line replaced by ours for the leg: "o=- <session_id> <version> IN IP4 <host>"
// (IP6 for a host with ':'), the version one higher than the last one sent on that leg unless
// `sdp` is the same description as last time (RFC 3264 §8: unchanged, same version). A body
// without an o= line is returned as it is.
std::string StampOrigin(std::string_view sdp, SdpOrigin& origin, std::string_view host);

// "sendrecv", "sendonly", "recvonly" or "inactive": the direction of the first audio stream (a
// media-level attribute, else the session-level one, else sendrecv). Also "inactive" for a stream
// on hold the RFC 2543 way (c= 0.0.0.0).
std::string_view AudioDirection(std::string_view sdp);

// Whether the party that sent `sdp` holds the call: its audio is sendonly or inactive.
bool IsHold(std::string_view sdp);

// `sdp` with every stream's direction set to `direction` (direction attributes at session level
// removed, one added or replaced in each m= section).
std::string WithDirection(std::string_view sdp, std::string_view direction);

// Whether two descriptions send media to the same places the same way: equal c= and m= lines
// (addresses, ports, transports, formats), whatever else differs (origin, attributes).
bool SameMedia(std::string_view a, std::string_view b);

// A description that offers audio without receiving any (a=inactive, the discard port 9 on
// `host`), for a leg whose real peer is not known yet: click-to-call rings the agent with it and
// offers the answer's media to the destination. PCMU, PCMA, G.722 and RFC 4733 events.
std::string PlaceholderOffer(std::string_view host);

}  // namespace sb::sip
