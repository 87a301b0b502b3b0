#pragma once

// Subscriber: Redis pub/sub on a dedicated connection, read by one thread of its own that hands
// each message to a callback.
//
//   SB_ASSIGN_OR_RETURN(auto subscriber, Subscriber::Start(
//       {.url = url, .channels = {"tokens:revoked"}, .patterns = {"agents:*"}},
//       [&](const Message& m) { cache.Invalidate(m.payload); }));
//   ...
//   subscriber->Stop();  // or let it go out of scope
//
// The thread connects in the background, so Start succeeds while Redis is down. Whenever the
// connection is lost (Redis restarted, network cut, no answer to a health-check PING sent after
// `ping_interval` of silence) it reconnects, with a delay doubling from `min_reconnect_delay` to
// `max_reconnect_delay`, and subscribes again to every channel and pattern. Pub/sub is
// at-most-once: messages published while the subscriber is not subscribed() are lost; use a
// stream (streams.h) for anything that must not be.
//
// The callback runs on the subscriber's thread, one message at a time, in the order Redis sent
// them. It must not block for long (messages queue up in Redis' output buffer meanwhile), must not
// throw, and must not call Stop() or destroy the Subscriber.
//
// Thread-safety: subscribed() and Stop() may be called from any thread.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/redis/endpoint.h"
#include "libs/redis/reply.h"

namespace sb::redis {

struct SubscriberOptions {
  // redis://[[user]:password@]host[:port][/db]; see endpoint.h.
  std::string url = "redis://127.0.0.1:6379";
  std::vector<std::string> channels;  // SUBSCRIBE: exact channel names
  std::vector<std::string> patterns;  // PSUBSCRIBE: glob patterns such as "agents:*"
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // Longest wait to send, and for the answer to a health-check PING.
  absl::Duration command_timeout = absl::Seconds(2);
  // A PING is sent after this long without any traffic, to notice a connection that died
  // silently.
  absl::Duration ping_interval = absl::Seconds(5);
  absl::Duration min_reconnect_delay = absl::Milliseconds(50);
  absl::Duration max_reconnect_delay = absl::Seconds(2);
};

struct Message {
  std::string channel;
  std::string payload;  // binary-safe
  std::string pattern;  // the PSUBSCRIBE pattern that matched; empty for a SUBSCRIBE channel
};

class Subscriber {
 public:
  using Callback = std::function<void(const Message&)>;

  // Starts the subscriber's thread. InvalidArgument for a bad URL, no channel and no pattern, or a
  // duration that is not positive; Internal when the thread's wake-up descriptor cannot be made.
  static absl::StatusOr<std::unique_ptr<Subscriber>> Start(SubscriberOptions options,
                                                           Callback callback);

  // Stops (see Stop()).
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Closes the connection and joins the thread; no callback runs after it returns. Returns
  // promptly whatever Redis is doing: it waits at most for a callback in progress, or for a
  // connection attempt in progress (bounded by connect_timeout and command_timeout). Idempotent.
  void Stop();

  // True while connected and every subscription is confirmed: a message published from now on is
  // delivered (unless the connection drops again).
  bool subscribed() const { return subscribed_.load(); }

 private:
  Subscriber(SubscriberOptions options, Endpoint endpoint, Callback callback, int wake_fd);

  void Run();
  // One connection's life: connect, subscribe, deliver messages until the connection fails
  // (returns why) or Stop() is called (returns OK). Resets `delay` once subscribed.
  absl::Status RunSession(absl::Duration& delay);
  // Handles one reply read from the connection; counts down `unconfirmed` subscriptions.
  absl::Status Dispatch(const Reply& reply, size_t& unconfirmed);
  // Waits up to `timeout` for Stop(); true when it was called.
  bool WaitForStop(absl::Duration timeout);

  const SubscriberOptions options_;
  const Endpoint endpoint_;
  const Callback callback_;
  const int wake_fd_;  // eventfd, readable once Stop() was called
  std::atomic<bool> subscribed_{false};

  absl::Mutex stop_mu_;
  std::thread thread_ ABSL_GUARDED_BY(stop_mu_);
};

}  // namespace sb::redis
