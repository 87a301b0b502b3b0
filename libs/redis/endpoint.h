#pragma once

// Endpoint: where a Redis server is and how to log in, parsed from a URL
//
//   redis://[[username]:password@]host[:port][/db]
//
// e.g. "redis://127.0.0.1:6379", "redis://:s3cret@redis:6379/2", "redis://app:s3cret@redis".
// The port defaults to 6379 and the database to 0. Username and password may be percent-encoded
// (a password holding '@' or ':' must be). An IPv6 host is written in brackets: redis://[::1]:6379.
// Only TCP; TLS (rediss://) and unix sockets are not supported.
//
// ParseRedisUrl returns InvalidArgument, naming the problem, for anything else. Thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sb::redis {

struct Endpoint {
  std::string host;
  int port = 6379;
  std::string username;  // empty: AUTH with the password alone (the "default" user)
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT after connecting when not 0

  // "host:port" for messages; never contains the credentials.
  std::string Address() const;
};

absl::StatusOr<Endpoint> ParseRedisUrl(std::string_view url);

}  // namespace sb::redis
