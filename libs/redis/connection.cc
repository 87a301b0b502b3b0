#include "libs/redis/connection.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace sb::redis {
namespace {

// Blocks SIGPIPE on this thread for the duration of a write and swallows a SIGPIPE the write
// raised, leaving any that was already pending alone (libpq's pq_block_sigpipe/pq_reset_sigpipe).
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_mask_);
    already_blocked_ = sigismember(&old_mask_, SIGPIPE) == 1;
    if (!already_blocked_) {
      sigset_t pending;
      sigpending(&pending);
      was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
  }
  ~ScopedSigpipeBlock() {
    if (already_blocked_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        sigtimedwait(&sigpipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t sigpipe_;
  sigset_t old_mask_;
  bool already_blocked_ = false;
  bool was_pending_ = false;
};

timeval ToTimevalAtLeastOneMs(absl::Duration d) {
  // A zero timeval means "no timeout" to setsockopt(SO_RCVTIMEO): never let a tiny value become it.
  return absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
}

Reply ConvertReply(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
      return Reply::String(std::string(r->str, r->len));
    case REDIS_REPLY_STATUS:
      return Reply::Status(std::string(r->str, r->len));
    case REDIS_REPLY_ERROR:
      return Reply::Error(std::string(r->str, r->len));
    case REDIS_REPLY_INTEGER:
      return Reply::Integer(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<Reply> elements;
      elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) elements.push_back(ConvertReply(r->element[i]));
      return Reply::Array(std::move(elements));
    }
    case REDIS_REPLY_NIL:
    default:
      return Reply::Nil();
  }
}

// Takes ownership of a reply hiredis allocated.
Reply TakeOwnership(void* raw) {
  auto* r = static_cast<redisReply*>(raw);
  Reply reply = ConvertReply(r);
  freeReplyObject(r);
  return reply;
}

struct Argv {
  std::vector<const char*> data;
  std::vector<size_t> lengths;
  explicit Argv(const std::vector<std::string>& args) {
    data.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
      data.push_back(arg.data());
      lengths.push_back(arg.size());
    }
  }
  int argc() const { return static_cast<int>(data.size()); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const Endpoint& endpoint,
                                                             absl::Duration connect_timeout,
                                                             absl::Duration command_timeout) {
  redisContext* context = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                                  ToTimevalAtLeastOneMs(connect_timeout));
  if (context == nullptr) {
    return absl::ResourceExhaustedError("redis: out of memory creating a connection");
  }
  auto connection = std::unique_ptr<Connection>(new Connection(context, endpoint.Address()));
  if (context->err != 0) return connection->Fail("connect");
  SB_RETURN_IF_ERROR(connection->SetTimeout(command_timeout));
  // Keepalive probes notice a peer that vanished without a FIN (a dead host, a cut network).
  if (redisEnableKeepAlive(context) != REDIS_OK) return connection->Fail("keepalive");

  if (!endpoint.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!endpoint.username.empty()) auth.push_back(endpoint.username);
    auth.push_back(endpoint.password);
    SB_ASSIGN_OR_RETURN(Reply reply, connection->Command(auth));
    if (reply.is_error()) {
      return absl::Status(reply.ToStatus().code(),
                          absl::StrCat("redis ", endpoint.Address(), ": AUTH: ", reply.str()));
    }
  }
  if (endpoint.db != 0) {
    SB_ASSIGN_OR_RETURN(Reply reply, connection->Command({"SELECT", std::to_string(endpoint.db)}));
    if (reply.is_error()) {
      return absl::Status(reply.ToStatus().code(),
                          absl::StrCat("redis ", endpoint.Address(), ": SELECT: ", reply.str()));
    }
  }
  return connection;
}

Connection::Connection(redisContext* context, std::string address)
    : context_(context), address_(std::move(address)) {}

Connection::~Connection() { redisFree(context_); }

absl::Status Connection::Fail(std::string_view during) {
  broken_ = true;
  std::string detail = context_->errstr;
  if (context_->err == REDIS_ERR_IO && detail == std::strerror(EAGAIN)) {
    detail = absl::StrCat("no reply within ", absl::FormatDuration(timeout_));
  }
  std::string message = absl::StrCat("redis ", address_, ": ", std::string(during), ": ", detail);
  switch (context_->err) {
    case REDIS_ERR_OOM:
      return absl::ResourceExhaustedError(std::move(message));
    case REDIS_ERR_PROTOCOL:
      return absl::InternalError(std::move(message));
    default:
      return absl::UnavailableError(std::move(message));
  }
}

absl::StatusOr<Reply> Connection::Command(const std::vector<std::string>& args) {
  if (broken_) return absl::UnavailableError(absl::StrCat("redis ", address_, ": connection lost"));
  Argv argv(args);
  void* raw;
  {
    ScopedSigpipeBlock no_sigpipe;
    raw = redisCommandArgv(context_, argv.argc(), argv.data.data(), argv.lengths.data());
  }
  if (raw == nullptr) return Fail(args.empty() ? "command" : args.front());
  return TakeOwnership(raw);
}

absl::StatusOr<std::vector<Reply>> Connection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  SB_RETURN_IF_ERROR(Send(commands));
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  ScopedSigpipeBlock no_sigpipe;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return Fail("pipeline");
    replies.push_back(TakeOwnership(raw));
  }
  return replies;
}

absl::Status Connection::SetTimeout(absl::Duration timeout) {
  if (redisSetTimeout(context_, ToTimevalAtLeastOneMs(timeout)) != REDIS_OK) {
    return Fail("set timeout");
  }
  timeout_ = timeout;
  return absl::OkStatus();
}

absl::Status Connection::Send(const std::vector<std::vector<std::string>>& commands) {
  if (broken_) return absl::UnavailableError(absl::StrCat("redis ", address_, ": connection lost"));
  for (const auto& args : commands) {
    Argv argv(args);
    if (redisAppendCommandArgv(context_, argv.argc(), argv.data.data(), argv.lengths.data()) !=
        REDIS_OK) {
      return Fail("append");
    }
  }
  ScopedSigpipeBlock no_sigpipe;
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) return Fail("write");
  }
  return absl::OkStatus();
}

absl::Status Connection::ReadAvailable() {
  if (redisBufferRead(context_) != REDIS_OK) return Fail("read");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Reply>> Connection::TakeReply() {
  void* raw = nullptr;
  if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) return Fail("read");
  if (raw == nullptr) return std::nullopt;
  return TakeOwnership(raw);
}

int Connection::fd() const { return context_->fd; }

bool Connection::IdleAndAlive() const {
  if (broken_ || context_->err != 0) return false;
  // An idle connection has nothing to read. Readable means EOF (the server closed it, e.g. on a
  // restart), a reset, or bytes we did not ask for: in every case it is not usable.
  pollfd pfd{context_->fd, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, 0);
  return ready == 0;
}

}  // namespace sb::redis
