#pragma once

// Connection: one blocking hiredis connection to Redis. Client keeps a pool of them and Subscriber
// owns one; other code uses those two rather than this class.
//
// Every socket operation is bounded: connecting by `connect_timeout`, each send and each receive
// by the current I/O timeout (`command_timeout`, changeable with SetTimeout). A failed connection
// (refused, reset, EOF, timed out) returns Unavailable and is broken() from then on: hiredis
// cannot resume a connection after an I/O error, so the owner discards it and opens a new one.
// A command that failed with Unavailable may or may not have run on the server.
//
// SIGPIPE: hiredis writes with write(2), which raises SIGPIPE on a socket the server has reset.
// Writes run with SIGPIPE blocked on the calling thread and a SIGPIPE they raised is consumed
// (what libpq does), so a dead server never kills the process even when nobody ignores SIGPIPE.
//
// Not thread-safe: one thread uses a Connection at a time.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/endpoint.h"
#include "libs/redis/reply.h"

struct redisContext;

namespace sb::redis {

class Connection {
 public:
  // Connects, sets the I/O timeout, then sends AUTH (when the endpoint has a password) and SELECT
  // (when db is not 0). Returns Unavailable when the server cannot be reached in time, and the
  // mapped error reply of AUTH or SELECT (e.g. Unauthenticated for a wrong password).
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const Endpoint& endpoint,
                                                          absl::Duration connect_timeout,
                                                          absl::Duration command_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends one command (binary-safe arguments) and reads its reply. An error reply from Redis is
  // returned as a Reply of type kError; Unavailable means the connection failed.
  absl::StatusOr<Reply> Command(const std::vector<std::string>& args);

  // Sends all `commands` in one write and then reads their replies, in order: one round trip.
  // Error replies are Reply values of type kError; Unavailable means the connection failed.
  absl::StatusOr<std::vector<Reply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // Sets the send/receive timeout for what follows (at least 1 ms).
  absl::Status SetTimeout(absl::Duration timeout);

  // For a reader that waits on fd() itself (Subscriber): Send() writes commands without reading;
  // ReadAvailable() does one read(2), to be called when fd() is readable; TakeReply() returns the
  // next complete reply among the bytes read so far, or nullopt when more bytes are needed.
  absl::Status Send(const std::vector<std::vector<std::string>>& commands);
  absl::Status ReadAvailable();
  absl::StatusOr<std::optional<Reply>> TakeReply();
  int fd() const;

  // True after an I/O or protocol failure: the connection must be discarded.
  bool broken() const { return broken_; }

  // For a connection that sat idle (all replies read): false when the server has closed or reset
  // it meanwhile, or sent something unexpected. Does not block.
  bool IdleAndAlive() const;

 private:
  Connection(redisContext* context, std::string address);
  // Marks the connection broken and turns hiredis' error into a Status.
  absl::Status Fail(std::string_view during);

  redisContext* context_;
  std::string address_;
  absl::Duration timeout_;
  bool broken_ = false;
};

}  // namespace sb::redis
