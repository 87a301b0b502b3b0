#include "libs/redis/endpoint.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace sb::redis {
namespace {

constexpr std::string_view kScheme = "redis://";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(std::string_view text, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    const int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
    if (lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL: bad percent-encoding in the ", std::string(what)));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// Parses a decimal in [min, max] into `out`; false when `text` is not one.
bool ParseInt(std::string_view text, int min, int max, int& out) {
  if (text.empty()) return false;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  if (value < min || value > max) return false;
  out = value;
  return true;
}

}  // namespace

std::string Endpoint::Address() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<Endpoint> ParseRedisUrl(std::string_view url) {
  if (url.substr(0, kScheme.size()) != kScheme) {
    // Never echo the URL: it may hold a password.
    return absl::InvalidArgumentError("redis URL must start with redis://");
  }
  std::string_view rest = url.substr(kScheme.size());
  Endpoint endpoint;

  // The database: everything after the first '/' following the authority.
  std::string_view authority = rest;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !ParseInt(db, 0, 1 << 20, endpoint.db)) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL: database must be a number, got '", std::string(db), "'"));
    }
  }

  // Credentials: before the last '@' (an unencoded '@' in a password would otherwise split wrong).
  std::string_view host_port = authority;
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    host_port = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(
          "redis URL: credentials must be ':password@' or 'user:password@'");
    }
    auto username = PercentDecode(userinfo.substr(0, colon), "username");
    if (!username.ok()) return username.status();
    auto password = PercentDecode(userinfo.substr(colon + 1), "password");
    if (!password.ok()) return password.status();
    endpoint.username = *std::move(username);
    endpoint.password = *std::move(password);
    if (endpoint.password.empty()) {
      return absl::InvalidArgumentError("redis URL: the password after ':' is empty");
    }
  }

  std::string_view port;
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("redis URL: IPv6 host is missing its ']'");
    }
    endpoint.host = std::string(host_port.substr(1, close - 1));
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return absl::InvalidArgumentError("redis URL: expected ':port' after the IPv6 host");
      }
      port = after.substr(1);
      if (port.empty()) return absl::InvalidArgumentError("redis URL: empty port");
    }
  } else {
    const size_t colon = host_port.find(':');
    endpoint.host = std::string(host_port.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = host_port.substr(colon + 1);
      if (port.empty()) return absl::InvalidArgumentError("redis URL: empty port");
    }
  }
  if (endpoint.host.empty()) return absl::InvalidArgumentError("redis URL: host is missing");
  if (!port.empty() && !ParseInt(port, 1, 65535, endpoint.port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis URL: port must be 1-65535, got '", std::string(port), "'"));
  }
  return endpoint;
}

}  // namespace sb::redis
