#include "services/media/sdp_anchor.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace sb::media {
namespace {

struct Lines {
  std::vector<absl::string_view> lines;
  absl::string_view eol = "\r\n";
};

Lines Split(absl::string_view sdp) {
  Lines out;
  if (sdp.find("\r\n") == absl::string_view::npos && sdp.find('\n') != absl::string_view::npos) {
    out.eol = "\n";
  }
  for (absl::string_view line : absl::StrSplit(sdp, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) out.lines.push_back(line);
  }
  return out;
}

bool IsDirection(absl::string_view value) {
  return value == "sendrecv" || value == "sendonly" || value == "recvonly" || value == "inactive";
}

bool IsIce(absl::string_view line) {
  static const char* const kIce[] = {"a=ice-ufrag:", "a=ice-pwd:",          "a=ice-options:",
                                     "a=candidate:", "a=remote-candidates", "a=end-of-candidates",
                                     "a=ice-lite",   "a=ice-mismatch"};
  for (const char* prefix : kIce) {
    if (absl::StartsWith(line, prefix)) return true;
  }
  return false;
}

// RFC 3551's static audio payload types media knows by number.
std::optional<PayloadFormat> StaticFormat(int pt) {
  switch (pt) {
    case 0:
      return PayloadFormat{0, "PCMU", 8000};
    case 3:
      return PayloadFormat{3, "GSM", 8000};
    case 4:
      return PayloadFormat{4, "G723", 8000};
    case 8:
      return PayloadFormat{8, "PCMA", 8000};
    case 9:
      return PayloadFormat{9, "G722", 8000};
    case 13:
      return PayloadFormat{13, "CN", 8000};
    case 18:
      return PayloadFormat{18, "G729", 8000};
    default:
      return std::nullopt;
  }
}

// "IN IP4 192.0.2.1" -> address, family. InvalidArgument / FailedPrecondition as ParseAudio says.
absl::Status ParseConnection(absl::string_view value, std::string& address, bool& ip6) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, ' ', absl::SkipEmpty());
  if (parts.size() != 3 || parts[0] != "IN" || (parts[1] != "IP4" && parts[1] != "IP6")) {
    return absl::InvalidArgumentError(
        absl::StrCat("sdp: c= line must be 'IN IP4|IP6 <address>', got 'c=", value, "'"));
  }
  ip6 = parts[1] == "IP6";
  std::string addr(parts[2]);
  if (addr.find('/') != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("sdp: multicast connection '", addr, "' cannot be anchored"));
  }
  unsigned char buf[16];
  if (inet_pton(ip6 ? AF_INET6 : AF_INET, addr.c_str(), buf) != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sdp: connection address '", addr, "' is not an ", ip6 ? "IPv6" : "IPv4", " literal"));
  }
  address = std::move(addr);
  return absl::OkStatus();
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

bool IsAudioCodec(const PayloadFormat& f) {
  const std::string e = Lower(f.encoding);
  return !e.empty() && e != "telephone-event" && e != "cn";
}

}  // namespace

std::string PayloadFormat::Name() const {
  std::string out = absl::StrCat(encoding, "/", clock_rate);
  if (channels > 1) absl::StrAppend(&out, "/", channels);
  return out;
}

absl::StatusOr<AudioStream> ParseAudio(std::string_view text) {
  const Lines parsed = Split(absl::string_view(text.data(), text.size()));
  if (parsed.lines.empty() || !absl::StartsWith(parsed.lines.front(), "v=")) {
    return absl::InvalidArgumentError("sdp: a session description starts with a v= line");
  }
  std::string session_address;
  bool session_ip6 = false;
  std::string session_direction = "sendrecv";
  enum class Section { kSession, kAudio, kOther, kDone } section = Section::kSession;
  AudioStream audio;
  bool media_address = false;
  bool media_direction = false;
  std::vector<absl::string_view> rtpmaps, fmtps;
  for (absl::string_view line : parsed.lines) {
    if (line.size() < 2 || line[1] != '=') {
      return absl::InvalidArgumentError(
          absl::StrCat("sdp: line '", line, "' is not <type>=<value>"));
    }
    const absl::string_view value = line.substr(2);
    if (line[0] == 'm') {
      if (section == Section::kAudio) section = Section::kDone;
      if (section == Section::kDone) continue;
      std::vector<absl::string_view> parts = absl::StrSplit(value, ' ', absl::SkipEmpty());
      if (parts.size() < 3) {
        return absl::InvalidArgumentError(absl::StrCat("sdp: m= line '", line, "' is incomplete"));
      }
      if (parts[0] != "audio") {
        section = Section::kOther;
        continue;
      }
      section = Section::kAudio;
      absl::string_view port = parts[1];
      if (size_t slash = port.find('/'); slash != absl::string_view::npos)
        port = port.substr(0, slash);
      if (!absl::SimpleAtoi(port, &audio.port) || audio.port < 0 || audio.port > 65535) {
        return absl::InvalidArgumentError(absl::StrCat("sdp: m= line '", line, "': bad port"));
      }
      audio.transport = std::string(parts[2]);
      if (audio.transport != "RTP/AVP" && audio.transport != "RTP/AVPF") {
        return absl::FailedPreconditionError(absl::StrCat(
            "sdp: audio transport '", audio.transport,
            "' cannot be anchored (RTP/AVP and RTP/AVPF can; SRTP is not supported yet)"));
      }
      for (size_t i = 3; i < parts.size(); ++i) {
        int pt = 0;
        if (!absl::SimpleAtoi(parts[i], &pt) || pt < 0 || pt > 127) {
          return absl::InvalidArgumentError(
              absl::StrCat("sdp: m= line '", line, "': payload type '", parts[i], "'"));
        }
        audio.formats.push_back(StaticFormat(pt).value_or(PayloadFormat{pt, "", 0}));
      }
      continue;
    }
    if (section == Section::kOther || section == Section::kDone) continue;
    if (line[0] == 'c') {
      if (section == Section::kSession) {
        if (absl::Status s = ParseConnection(value, session_address, session_ip6); !s.ok()) {
          return s;
        }
      } else {
        if (absl::Status s = ParseConnection(value, audio.address, audio.ip6); !s.ok()) return s;
        media_address = true;
      }
      continue;
    }
    if (line[0] != 'a') continue;
    if (IsDirection(value)) {
      if (section == Section::kSession) {
        session_direction = std::string(value);
      } else {
        audio.direction = std::string(value);
        media_direction = true;
      }
      continue;
    }
    if (section != Section::kAudio) continue;
    if (absl::StartsWith(value, "rtpmap:")) {
      rtpmaps.push_back(value.substr(7));
    } else if (absl::StartsWith(value, "fmtp:")) {
      fmtps.push_back(value.substr(5));
    } else if (absl::StartsWith(value, "rtcp:")) {
      int port = 0;
      absl::string_view v = value.substr(5);
      v = v.substr(0, v.find(' '));
      if (absl::SimpleAtoi(v, &port) && port > 0 && port <= 65535) audio.rtcp_port = port;
    } else if (absl::StartsWith(value, "ptime:")) {
      int ms = 0;
      if (absl::SimpleAtoi(value.substr(6), &ms) && ms > 0 && ms <= 1000) audio.ptime_ms = ms;
    }
  }
  if (audio.transport.empty()) {
    return absl::InvalidArgumentError("sdp: no audio stream (m=audio)");
  }
  // A media-level direction wins; without one the session-level one applies.
  if (!media_direction) audio.direction = session_direction;
  if (!media_address) {
    if (session_address.empty()) {
      return absl::InvalidArgumentError("sdp: the audio stream has no connection address (c=)");
    }
    audio.address = session_address;
    audio.ip6 = session_ip6;
  }
  for (absl::string_view map : rtpmaps) {
    // "<pt> <encoding>/<rate>[/<channels>]"
    std::pair<absl::string_view, absl::string_view> pt_rest =
        absl::StrSplit(map, absl::MaxSplits(' ', 1));
    int pt = 0;
    if (!absl::SimpleAtoi(pt_rest.first, &pt)) continue;
    std::vector<absl::string_view> enc =
        absl::StrSplit(absl::StripAsciiWhitespace(pt_rest.second), '/');
    for (PayloadFormat& f : audio.formats) {
      if (f.payload_type != pt) continue;
      f.encoding = std::string(enc[0]);
      if (enc.size() > 1) absl::SimpleAtoi(enc[1], &f.clock_rate);
      if (enc.size() > 2) absl::SimpleAtoi(enc[2], &f.channels);
    }
  }
  for (absl::string_view fmtp : fmtps) {
    std::pair<absl::string_view, absl::string_view> pt_rest =
        absl::StrSplit(fmtp, absl::MaxSplits(' ', 1));
    int pt = 0;
    if (!absl::SimpleAtoi(pt_rest.first, &pt)) continue;
    for (PayloadFormat& f : audio.formats) {
      if (f.payload_type == pt) f.fmtp = std::string(pt_rest.second);
    }
  }
  return audio;
}

absl::StatusOr<std::vector<PayloadFormat>> ChooseFormats(
    const AudioStream& stream, const std::vector<std::string>& allowed,
    const std::vector<PayloadFormat>* answered) {
  auto in_offer = [answered](const PayloadFormat& f) {
    if (answered == nullptr) return true;
    return std::any_of(answered->begin(), answered->end(), [&f](const PayloadFormat& o) {
      return Lower(o.encoding) == Lower(f.encoding) && o.clock_rate == f.clock_rate;
    });
  };
  std::vector<PayloadFormat> out;
  absl::flat_hash_set<int> taken;
  auto take = [&](absl::string_view encoding) {
    for (const PayloadFormat& f : stream.formats) {
      if (f.encoding.empty() || taken.contains(f.payload_type)) continue;
      if (!encoding.empty() && Lower(f.encoding) != Lower(encoding)) continue;
      if (!in_offer(f)) continue;
      out.push_back(f);
      taken.insert(f.payload_type);
    }
  };
  if (allowed.empty()) {
    take("PCMU");
    take("PCMA");
    take("telephone-event");
    take("");  // the rest, in the stream's order
  } else {
    for (const std::string& encoding : allowed) take(encoding);
  }
  if (std::none_of(out.begin(), out.end(), IsAudioCodec)) {
    std::vector<std::string> offered;
    for (const PayloadFormat& f : stream.formats) {
      offered.push_back(f.encoding.empty() ? absl::StrCat(f.payload_type) : f.Name());
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "sdp: no audio codec in common (offered: ", absl::StrJoin(offered, ", "),
        allowed.empty() ? "" : absl::StrCat("; allowed: ", absl::StrJoin(allowed, ", ")), ")"));
  }
  return out;
}

std::string RewriteAudio(std::string_view text, const std::string& address, int rtp_port,
                         const std::vector<PayloadFormat>& formats, bool strip_ice) {
  const absl::string_view sdp(text.data(), text.size());
  const Lines parsed = Split(sdp);
  const std::string connection =
      absl::StrCat("c=IN ", address.find(':') != std::string::npos ? "IP6 " : "IP4 ", address);
  absl::flat_hash_set<int> kept;
  for (const PayloadFormat& f : formats) kept.insert(f.payload_type);
  auto kept_attribute = [&kept](absl::string_view value) {
    // "rtpmap:<pt> ..." or "fmtp:<pt> ..."
    value = value.substr(value.find(':') + 1);
    int pt = -1;
    return absl::SimpleAtoi(value.substr(0, value.find(' ')), &pt) && kept.contains(pt);
  };
  enum class Section { kSession, kAudio, kOther } section = Section::kSession;
  bool audio_done = false;
  std::string out;
  out.reserve(sdp.size() + 64);
  for (absl::string_view line : parsed.lines) {
    absl::string_view value = line.size() >= 2 ? line.substr(2) : absl::string_view();
    if (absl::StartsWith(line, "m=")) {
      std::vector<absl::string_view> parts = absl::StrSplit(value, ' ', absl::SkipEmpty());
      if (!audio_done && !parts.empty() && parts[0] == "audio" && parts.size() >= 3) {
        section = Section::kAudio;
        audio_done = true;
        absl::StrAppend(&out, "m=audio ", rtp_port, " ", parts[2]);
        for (const PayloadFormat& f : formats) absl::StrAppend(&out, " ", f.payload_type);
        absl::StrAppend(&out, parsed.eol);
      } else {
        section = Section::kOther;
        // Declined: port 0, the rest as it was.
        if (parts.size() >= 2) parts[1] = "0";
        absl::StrAppend(&out, "m=", absl::StrJoin(parts, " "), parsed.eol);
      }
      continue;
    }
    if (strip_ice && IsIce(line)) continue;
    if (section != Section::kOther) {
      if (absl::StartsWith(line, "c=")) {
        absl::StrAppend(&out, connection, parsed.eol);
        continue;
      }
      if (absl::StartsWith(line, "a=rtcp:") || line == "a=rtcp-mux") continue;
    }
    if (section == Section::kAudio &&
        (absl::StartsWith(line, "a=rtpmap:") || absl::StartsWith(line, "a=fmtp:")) &&
        !kept_attribute(value)) {
      continue;
    }
    absl::StrAppend(&out, line, parsed.eol);
  }
  return out;
}

}  // namespace sb::media
