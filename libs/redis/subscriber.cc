#include "libs/redis/subscriber.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/check.h"
#include "libs/common/status_macros.h"
#include "libs/redis/connection.h"

namespace sb::redis {
namespace {

// poll(2) timeout for a wait until `deadline`, rounded up so we never spin on a 0 ms timeout
// before the deadline has really passed.
int PollTimeoutMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subscriber>> Subscriber::Start(SubscriberOptions options,
                                                              Callback callback) {
  SB_ASSIGN_OR_RETURN(Endpoint endpoint, ParseRedisUrl(options.url));
  if (options.channels.empty() && options.patterns.empty()) {
    return absl::InvalidArgumentError("redis subscriber needs at least one channel or pattern");
  }
  for (const absl::Duration d :
       {options.connect_timeout, options.command_timeout, options.ping_interval,
        options.min_reconnect_delay, options.max_reconnect_delay}) {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("redis subscriber timeouts and delays must be positive");
    }
  }
  if (!callback) return absl::InvalidArgumentError("redis subscriber needs a callback");
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return absl::InternalError(absl::StrCat("redis subscriber: eventfd: ", std::strerror(errno)));
  }
  auto subscriber = std::unique_ptr<Subscriber>(
      new Subscriber(std::move(options), std::move(endpoint), std::move(callback), wake_fd));
  absl::MutexLock lock(&subscriber->stop_mu_);
  subscriber->thread_ = std::thread([s = subscriber.get()] { s->Run(); });
  return subscriber;
}

Subscriber::Subscriber(SubscriberOptions options, Endpoint endpoint, Callback callback, int wake_fd)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      callback_(std::move(callback)),
      wake_fd_(wake_fd) {}

Subscriber::~Subscriber() {
  Stop();
  ::close(wake_fd_);
}

void Subscriber::Stop() {
  absl::MutexLock lock(&stop_mu_);
  if (!thread_.joinable()) return;
  SB_CHECK(std::this_thread::get_id() != thread_.get_id())
      << "Subscriber::Stop() called from the subscriber's own callback";
  const uint64_t one = 1;
  // An eventfd write of 1 cannot fail short of the counter overflowing, which takes 2^64 writes.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  subscribed_.store(false);
}

bool Subscriber::WaitForStop(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pollfd pfd{wake_fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, PollTimeoutMs(deadline));
    if (ready > 0) return true;
    if (ready == 0 && absl::Now() >= deadline) return false;
    // EINTR or an early wake-up: wait for the rest.
  }
}

void Subscriber::Run() {
  pthread_setname_np(pthread_self(), "sb-redis-sub");
  absl::Duration delay = options_.min_reconnect_delay;
  bool failing = false;
  while (true) {
    const absl::Status status = RunSession(delay);
    const bool was_subscribed = subscribed_.exchange(false);
    if (status.ok()) return;  // Stop() was called
    // Say it once per outage, not on every retry.
    if (was_subscribed || !failing) {
      spdlog::warn("redis subscriber {}: {}; reconnecting", endpoint_.Address(), status.ToString());
    } else {
      spdlog::debug("redis subscriber {}: {}", endpoint_.Address(), status.ToString());
    }
    failing = true;
    if (WaitForStop(delay)) return;
    delay = std::min(delay * 2, options_.max_reconnect_delay);
  }
}

absl::Status Subscriber::RunSession(absl::Duration& delay) {
  SB_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> connection,
      Connection::Open(endpoint_, options_.connect_timeout, options_.command_timeout));
  std::vector<std::vector<std::string>> subscribe;
  if (!options_.channels.empty()) {
    subscribe.push_back({"SUBSCRIBE"});
    subscribe.back().insert(subscribe.back().end(), options_.channels.begin(),
                            options_.channels.end());
  }
  if (!options_.patterns.empty()) {
    subscribe.push_back({"PSUBSCRIBE"});
    subscribe.back().insert(subscribe.back().end(), options_.patterns.begin(),
                            options_.patterns.end());
  }
  SB_RETURN_IF_ERROR(connection->Send(subscribe));
  size_t unconfirmed = options_.channels.size() + options_.patterns.size();

  absl::Time last_heard = absl::Now();
  std::optional<absl::Time> ping_sent;
  while (true) {
    const absl::Time deadline =
        ping_sent ? *ping_sent + options_.command_timeout : last_heard + options_.ping_interval;
    pollfd fds[2] = {{connection->fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, PollTimeoutMs(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("redis subscriber: poll: ", std::strerror(errno)));
    }
    if (fds[1].revents != 0) return absl::OkStatus();
    if (fds[0].revents != 0) {
      // Readable, or hung up / in error: the read tells which.
      SB_RETURN_IF_ERROR(connection->ReadAvailable());
      last_heard = absl::Now();
      ping_sent.reset();
      while (true) {
        SB_ASSIGN_OR_RETURN(std::optional<Reply> reply, connection->TakeReply());
        if (!reply) break;
        SB_RETURN_IF_ERROR(Dispatch(*reply, unconfirmed));
        if (unconfirmed == 0 && !subscribed_.load()) {
          subscribed_.store(true);
          delay = options_.min_reconnect_delay;
          spdlog::info("redis subscriber {}: subscribed to {} channel(s), {} pattern(s)",
                       endpoint_.Address(), options_.channels.size(), options_.patterns.size());
        }
      }
      continue;
    }
    if (absl::Now() < deadline) continue;
    if (ping_sent) {
      return absl::UnavailableError(absl::StrCat("redis ", endpoint_.Address(), ": no answer to ",
                                                 "PING within ",
                                                 absl::FormatDuration(options_.command_timeout)));
    }
    SB_RETURN_IF_ERROR(connection->Send({{"PING"}}));
    ping_sent = absl::Now();
  }
}

absl::Status Subscriber::Dispatch(const Reply& reply, size_t& unconfirmed) {
  if (reply.is_error()) return reply.ToStatus();
  // RESP2 push messages: [kind, ...]; anything else is not ours to handle.
  if (!reply.is_array() || reply.elements().empty() || !reply.elements()[0].is_string()) {
    return absl::OkStatus();
  }
  const auto& parts = reply.elements();
  const std::string& kind = parts[0].str();
  if (kind == "message" && parts.size() == 3 && parts[1].is_string() && parts[2].is_string()) {
    callback_(Message{.channel = parts[1].str(), .payload = parts[2].str(), .pattern = ""});
  } else if (kind == "pmessage" && parts.size() == 4 && parts[1].is_string() &&
             parts[2].is_string() && parts[3].is_string()) {
    callback_(
        Message{.channel = parts[2].str(), .payload = parts[3].str(), .pattern = parts[1].str()});
  } else if (kind == "subscribe" || kind == "psubscribe") {
    if (unconfirmed > 0) --unconfirmed;
  }
  // "pong" answers our health-check PING; hearing anything already reset the PING timer.
  return absl::OkStatus();
}

}  // namespace sb::redis
