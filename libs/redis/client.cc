#include "libs/redis/client.h"

#include <spdlog/spdlog.h>

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/redis/connection.h"

namespace sb::redis {
namespace {

bool IsNoScript(const Reply& reply) {
  return reply.is_error() && std::string_view(reply.str()).substr(0, 8) == "NOSCRIPT";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  SB_ASSIGN_OR_RETURN(Endpoint endpoint, ParseRedisUrl(options.url));
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis pool_size must be at least 1, got ", options.pool_size));
  }
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis connect_timeout must be positive");
  }
  if (options.command_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis command_timeout must be positive");
  }
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(endpoint)));
}

Client::Client(ClientOptions options, Endpoint endpoint)
    : options_(std::move(options)), endpoint_(std::move(endpoint)) {}

Client::~Client() = default;

absl::StatusOr<Reply> Client::Command(const std::vector<std::string>& args) {
  if (args.empty()) return absl::InvalidArgumentError("redis command has no arguments");
  Reply reply;
  SB_RETURN_IF_ERROR(WithConnection([&](Connection& connection) -> absl::Status {
    SB_ASSIGN_OR_RETURN(reply, connection.Command(args));
    return absl::OkStatus();
  }));
  SB_RETURN_IF_ERROR(reply.ToStatus());
  return reply;
}

absl::StatusOr<Reply> Client::BlockingCommand(const std::vector<std::string>& args,
                                              absl::Duration block) {
  if (args.empty()) return absl::InvalidArgumentError("redis command has no arguments");
  if (block < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis block time must not be negative");
  }
  Reply reply;
  SB_RETURN_IF_ERROR(WithConnection([&](Connection& connection) -> absl::Status {
    SB_RETURN_IF_ERROR(connection.SetTimeout(options_.command_timeout + block));
    SB_ASSIGN_OR_RETURN(reply, connection.Command(args));
    // Restoring the pool's timeout can only fail on a broken socket, which then gets discarded.
    return connection.SetTimeout(options_.command_timeout);
  }));
  SB_RETURN_IF_ERROR(reply.ToStatus());
  return reply;
}

absl::StatusOr<std::vector<Reply>> Client::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (commands.empty()) return std::vector<Reply>();
  for (const auto& args : commands) {
    if (args.empty()) return absl::InvalidArgumentError("redis pipeline has an empty command");
  }
  std::vector<Reply> replies;
  SB_RETURN_IF_ERROR(WithConnection([&](Connection& connection) -> absl::Status {
    SB_ASSIGN_OR_RETURN(replies, connection.Pipeline(commands));
    return absl::OkStatus();
  }));
  return replies;
}

absl::StatusOr<Reply> Client::Eval(const Script& script, const std::vector<std::string>& keys,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> command = {"EVALSHA", script.sha1(), std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  Reply reply;
  SB_RETURN_IF_ERROR(WithConnection([&](Connection& connection) -> absl::Status {
    SB_ASSIGN_OR_RETURN(reply, connection.Command(command));
    if (IsNoScript(reply)) {
      spdlog::debug("redis {}: script {} not cached, sending it with EVAL", endpoint_.Address(),
                    script.sha1());
      command[0] = "EVAL";
      command[1] = script.source();
      SB_ASSIGN_OR_RETURN(reply, connection.Command(command));
    }
    return absl::OkStatus();
  }));
  SB_RETURN_IF_ERROR(reply.ToStatus());
  return reply;
}

absl::Status Client::Ping() {
  SB_ASSIGN_OR_RETURN(Reply reply, Command({"PING"}));
  if (!reply.is_status() || reply.str() != "PONG") {
    return absl::InternalError(
        absl::StrCat("redis ", endpoint_.Address(), ": PING answered ", reply.DebugString()));
  }
  return absl::OkStatus();
}

absl::Status Client::WithConnection(absl::FunctionRef<absl::Status(Connection&)> fn) {
  SB_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Acquire());
  absl::Status status = fn(*connection);
  Release(std::move(connection));
  return status;
}

bool Client::CanAcquire() const { return !idle_.empty() || open_ < options_.pool_size; }

absl::StatusOr<std::unique_ptr<Connection>> Client::Acquire() {
  while (true) {
    std::unique_ptr<Connection> idle;
    {
      absl::MutexLock lock(&mu_);
      if (!mu_.AwaitWithTimeout(absl::Condition(this, &Client::CanAcquire),
                                options_.command_timeout)) {
        return absl::ResourceExhaustedError(
            absl::StrCat("redis ", endpoint_.Address(), ": all ", options_.pool_size,
                         " pooled connections stayed busy for ",
                         absl::FormatDuration(options_.command_timeout)));
      }
      if (!idle_.empty()) {
        idle = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++open_;  // reserve the slot; the connect happens outside the lock
      }
    }
    if (idle == nullptr) {
      auto opened = Connection::Open(endpoint_, options_.connect_timeout, options_.command_timeout);
      if (!opened.ok()) {
        absl::MutexLock lock(&mu_);
        --open_;
      }
      return opened;
    }
    if (idle->IdleAndAlive()) return idle;
    // Closed by the server while idle (most often a Redis restart): drop it and try the next.
    spdlog::debug("redis {}: dropping a pooled connection the server closed", endpoint_.Address());
    idle.reset();
    absl::MutexLock lock(&mu_);
    --open_;
  }
}

void Client::Release(std::unique_ptr<Connection> connection) {
  if (connection->broken()) {
    connection.reset();
    absl::MutexLock lock(&mu_);
    --open_;
    return;
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(connection));
}

}  // namespace sb::redis
