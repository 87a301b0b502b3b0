#include "libs/sip/sdp.h"

#include <random>
#include <vector>

namespace sb::sip {
namespace {

// The lines of a description without their line ends (CRLF or LF), and the end used.
struct Lines {
  std::vector<std::string_view> lines;
  std::string_view eol = "\r\n";
};

Lines Split(std::string_view sdp) {
  Lines out;
  if (sdp.find("\r\n") == std::string_view::npos && sdp.find('\n') != std::string_view::npos) {
    out.eol = "\n";
  }
  while (!sdp.empty()) {
    size_t end = sdp.find('\n');
    std::string_view line = sdp.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) out.lines.push_back(line);
    if (end == std::string_view::npos) break;
    sdp.remove_prefix(end + 1);
  }
  return out;
}

bool IsDirection(std::string_view line) {
  return line == "a=sendrecv" || line == "a=sendonly" || line == "a=recvonly" ||
         line == "a=inactive";
}

uint64_t RandomSessionId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  // Kept below 2^62 so that it and its versions print as plain decimal numbers everywhere.
  return (rng() >> 2) | 1;
}

}  // namespace

std::string StampOrigin(std::string_view sdp, SdpOrigin& origin, std::string_view host) {
  Lines parsed = Split(sdp);
  bool found = false;
  std::string out;
  out.reserve(sdp.size() + 32);
  for (std::string_view line : parsed.lines) {
    if (!found && line.substr(0, 2) == "o=") {
      found = true;
      if (origin.session_id == 0) {
        origin.session_id = RandomSessionId();
        origin.version = origin.session_id;
      }
      if (sdp != origin.last) {
        ++origin.version;
        origin.last = std::string(sdp);
      }
      out.append("o=- ")
          .append(std::to_string(origin.session_id))
          .append(" ")
          .append(std::to_string(origin.version))
          .append(host.find(':') != std::string_view::npos ? " IN IP6 " : " IN IP4 ")
          .append(host);
    } else {
      out.append(line);
    }
    out.append(parsed.eol);
  }
  if (!found) return std::string(sdp);
  return out;
}

std::string_view AudioDirection(std::string_view sdp) {
  std::string_view session = "sendrecv";
  std::string_view media;
  bool in_audio = false;
  bool seen_audio = false;
  bool held_address = false;
  for (std::string_view line : Split(sdp).lines) {
    if (line.substr(0, 2) == "m=") {
      if (seen_audio) break;  // only the first audio stream
      in_audio = line.substr(0, 8) == "m=audio ";
      seen_audio = in_audio;
      continue;
    }
    if (IsDirection(line)) {
      if (in_audio) {
        media = line.substr(2);
      } else if (!seen_audio) {
        session = line.substr(2);
      }
    }
    if ((in_audio || !seen_audio) && line == "c=IN IP4 0.0.0.0") held_address = true;
  }
  if (held_address) return "inactive";
  return media.empty() ? session : media;
}

bool IsHold(std::string_view sdp) {
  const std::string_view d = AudioDirection(sdp);
  return d == "sendonly" || d == "inactive";
}

std::string WithDirection(std::string_view sdp, std::string_view direction) {
  Lines parsed = Split(sdp);
  std::string out;
  out.reserve(sdp.size() + 32);
  bool in_media = false;
  bool placed = false;
  auto close_media = [&] {
    if (in_media && !placed) out.append("a=").append(direction).append(parsed.eol);
  };
  for (std::string_view line : parsed.lines) {
    if (line.substr(0, 2) == "m=") {
      close_media();
      in_media = true;
      placed = false;
    } else if (IsDirection(line)) {
      if (!in_media || placed) continue;  // session level, or a duplicate: dropped
      out.append("a=").append(direction).append(parsed.eol);
      placed = true;
      continue;
    }
    out.append(line).append(parsed.eol);
  }
  close_media();
  return out;
}

bool SameMedia(std::string_view a, std::string_view b) {
  auto media = [](std::string_view sdp) {
    std::string out;
    for (std::string_view line : Split(sdp).lines) {
      if (line.substr(0, 2) == "c=" || line.substr(0, 2) == "m=") out.append(line).append("\n");
    }
    return out;
  };
  return media(a) == media(b);
}

std::string PlaceholderOffer(std::string_view host) {
  const std::string_view family = host.find(':') != std::string_view::npos ? "IP6" : "IP4";
  std::string out = "v=0\r\no=- 0 0 IN ";
  out.append(family).append(" ").append(host).append("\r\ns=Switchboard\r\nc=IN ");
  out.append(family).append(" ").append(host).append(
      "\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\n"
      "a=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
      "a=fmtp:101 0-16\r\na=inactive\r\n");
  return out;
}

}  // namespace sb::sip
