#pragma once

// Client: Redis commands, pipelines and Lua scripts over a pool of hiredis connections.
//
//   SB_ASSIGN_OR_RETURN(auto client, Client::Create({.url = "redis://redis:6379/0"}));
//   SB_ASSIGN_OR_RETURN(Reply n, client->Command({"INCR", key}));
//   SB_ASSIGN_OR_RETURN(auto replies, client->Pipeline({{"SET", a, "1"}, {"GET", b}}));
//
// Connections are opened lazily, on first use: a process starts even when Redis is down. A call
// takes an idle pooled connection, or opens a new one while fewer than `pool_size` are open. A
// connection that failed (I/O error, EOF, timeout) is discarded; an idle one that the server
// closed meanwhile (a Redis restart) is noticed before use and discarded too. So no call hangs
// past its timeouts while Redis is down, and calls work again by themselves when it returns.
//
// Status codes of every call:
//   Unavailable        Redis could not be reached, the connection broke, or no reply came within
//                      `command_timeout`; retry later. A command that failed this way may or may
//                      not have run. Also the mapped LOADING/BUSY/READONLY/... error replies.
//   ResourceExhausted  all `pool_size` connections stayed busy for `command_timeout`; or OOM.
//   InvalidArgument    an empty command (no arguments) or a negative block time.
//   Unauthenticated    the URL's credentials were refused (NOAUTH/WRONGPASS).
//   others             an error reply from Redis, mapped as described in reply.h (WRONGTYPE ->
//                      FailedPrecondition, NOSCRIPT/NOGROUP -> NotFound, BUSYGROUP ->
//                      AlreadyExists, ERR and unknown codes -> Internal).
//
// Thread-safety: all methods may be called from any number of threads at once.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/redis/endpoint.h"
#include "libs/redis/reply.h"
#include "libs/redis/script.h"

namespace sb::redis {

class Connection;

struct ClientOptions {
  // redis://[[user]:password@]host[:port][/db]; see endpoint.h.
  std::string url = "redis://127.0.0.1:6379";
  // Most connections open at once, counting those in use (blocking reads hold one while blocked).
  int pool_size = 8;
  // Longest wait for a TCP connection to Redis.
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // Longest wait to send a command and for its reply (for BlockingCommand: on top of the block
  // time). Also the longest a call waits for a pooled connection when all are busy.
  absl::Duration command_timeout = absl::Seconds(2);
};

class Client {
 public:
  // Validates the options (InvalidArgument for a bad URL, a pool_size below 1, or a timeout that
  // is not positive). Does not connect.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one command, e.g. {"HSET", key, field, value}. Arguments are binary-safe. An error reply
  // becomes a Status (never a Reply of type kError).
  absl::StatusOr<Reply> Command(const std::vector<std::string>& args);

  // Runs a command that waits server-side for up to `block` (XREADGROUP ... BLOCK, BLPOP): the
  // reply timeout for this call is `block` + `command_timeout`. The caller puts the block time in
  // `args` in the command's own syntax.
  absl::StatusOr<Reply> BlockingCommand(const std::vector<std::string>& args, absl::Duration block);

  // Sends all commands in one write and reads all their replies: one round trip, on one
  // connection. Replies are in command order; an error reply stays in its place as a Reply of
  // type kError (check with Reply::ToStatus()). Not a transaction: wrap in MULTI/EXEC for that.
  // An empty list returns no replies without touching Redis.
  absl::StatusOr<std::vector<Reply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // Runs a Lua script: EVALSHA, and EVAL when Redis does not have the script cached (NOSCRIPT,
  // after a restart or SCRIPT FLUSH), which also caches it again. A script's error reply becomes
  // a Status as for Command.
  absl::StatusOr<Reply> Eval(const Script& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args);

  // PING: OK when Redis answers PONG. For health checks.
  absl::Status Ping();

  const Endpoint& endpoint() const { return endpoint_; }
  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options, Endpoint endpoint);

  // Runs `fn` on a pooled connection and returns the connection to the pool (or discards it when
  // it broke).
  absl::Status WithConnection(absl::FunctionRef<absl::Status(Connection&)> fn);
  absl::StatusOr<std::unique_ptr<Connection>> Acquire();
  void Release(std::unique_ptr<Connection> connection);
  bool CanAcquire() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClientOptions options_;
  const Endpoint endpoint_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + in use + being opened
};

}  // namespace sb::redis
