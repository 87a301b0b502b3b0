// libs/redis Subscriber against a real redis-server: delivery, resubscribing after Redis
// restarts or freezes, and stopping cleanly.

#include "libs/redis/subscriber.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"
#include "libs/testing/redis_server.h"
#include "tests/integration/libs/redis/redis_test_util.h"

namespace sb::redis {
namespace {

using ::sb::redis::testing::Eventually;
using ::sb::redis::testing::MakeClient;
using ::sb::testing::SharedTestRedisUrl;
using ::sb::testing::TestRedis;
using ::sb::testing::UniqueKeyPrefix;

// Collects what the subscriber's thread delivers.
class Inbox {
 public:
  Subscriber::Callback Callback() {
    return [this](const Message& message) {
      absl::MutexLock lock(&mu_);
      messages_.push_back(message);
    };
  }

  // Waits (up to 10 s) for a message with `payload`.
  std::optional<Message> WaitFor(const std::string& payload) {
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const Message& m : messages_) {
        if (m.payload == payload) return true;
      }
      return false;
    };
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!arrived()) {
      if (absl::Now() >= deadline) return std::nullopt;
      mu_.AwaitWithDeadline(absl::Condition(&arrived), deadline);
    }
    for (const Message& m : messages_) {
      if (m.payload == payload) return m;
    }
    return std::nullopt;
  }

  size_t size() {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
};

SubscriberOptions FastOptions(const std::string& url) {
  return {.url = url,
          .connect_timeout = absl::Milliseconds(300),
          .command_timeout = absl::Milliseconds(300),
          .ping_interval = absl::Milliseconds(200),
          .min_reconnect_delay = absl::Milliseconds(20),
          .max_reconnect_delay = absl::Milliseconds(200)};
}

int64_t Publish(Client& client, const std::string& channel, const std::string& payload) {
  auto receivers = client.Command({"PUBLISH", channel, payload});
  INFO(receivers.status().ToString());
  REQUIRE(receivers.ok());
  return receivers->integer();
}

TEST_CASE("Subscriber delivers channel and pattern messages to its callback", "[redis]") {
  auto url = SharedTestRedisUrl();
  SB_REQUIRE_OK(url);
  auto client = MakeClient(*url);
  const std::string p = UniqueKeyPrefix("pubsub");
  Inbox inbox;
  SubscriberOptions options = FastOptions(*url);
  options.channels = {p + "news", p + "other"};
  options.patterns = {p + "agents:*"};
  SB_REQUIRE_OK_AND_ASSIGN(auto subscriber, Subscriber::Start(options, inbox.Callback()));
  REQUIRE(Eventually([&] { return subscriber->subscribed(); }));

  const std::string binary = std::string("hello\0\r\nworld", 13);
  CHECK(Publish(*client, p + "news", binary) == 1);
  const auto news = inbox.WaitFor(binary);
  REQUIRE(news.has_value());
  CHECK(news->channel == p + "news");
  CHECK(news->pattern.empty());

  CHECK(Publish(*client, p + "agents:42", "ringing") == 1);
  const auto agent = inbox.WaitFor("ringing");
  REQUIRE(agent.has_value());
  CHECK(agent->channel == p + "agents:42");
  CHECK(agent->pattern == p + "agents:*");

  CHECK(Publish(*client, p + "unrelated", "x") == 0);

  subscriber->Stop();
  CHECK_FALSE(subscriber->subscribed());
  // The subscription is gone once Redis has processed the closed connection, which it does
  // asynchronously: right after Stop() a PUBLISH may still count it (seen under load in CI).
  CHECK(Eventually([&] { return Publish(*client, p + "news", "after stop") == 0; }));
  subscriber->Stop();  // idempotent
}

TEST_CASE("Subscriber resubscribes by itself after Redis restarts", "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = MakeClient(redis.url());
  const std::string channel = UniqueKeyPrefix("pubsub-restart") + "events";
  Inbox inbox;
  SubscriberOptions options = FastOptions(redis.url());
  options.channels = {channel};
  SB_REQUIRE_OK_AND_ASSIGN(auto subscriber, Subscriber::Start(options, inbox.Callback()));
  REQUIRE(Eventually([&] { return subscriber->subscribed(); }));
  CHECK(Publish(*client, channel, "before") == 1);
  REQUIRE(inbox.WaitFor("before").has_value());

  for (const bool crash : {false, true}) {
    INFO((crash ? "killed" : "stopped"));
    if (crash) {
      redis.Kill();
    } else {
      SB_REQUIRE_OK(redis.Stop());
    }
    REQUIRE(Eventually([&] { return !subscriber->subscribed(); }));
    SB_REQUIRE_OK(redis.Start());
    REQUIRE(Eventually([&] { return subscriber->subscribed(); }));
    const std::string payload = crash ? "after crash" : "after restart";
    CHECK(Publish(*client, channel, payload) == 1);
    CHECK(inbox.WaitFor(payload).has_value());
  }
}

TEST_CASE("Subscriber notices a frozen Redis through its health-check PING", "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = MakeClient(redis.url());
  const std::string channel = UniqueKeyPrefix("pubsub-frozen") + "events";
  Inbox inbox;
  SubscriberOptions options = FastOptions(redis.url());
  options.channels = {channel};
  SB_REQUIRE_OK_AND_ASSIGN(auto subscriber, Subscriber::Start(options, inbox.Callback()));
  REQUIRE(Eventually([&] { return subscriber->subscribed(); }));

  // No FIN, no RST: only the unanswered PING (200 ms of silence + 300 ms to answer) tells.
  redis.Pause();
  REQUIRE(Eventually([&] { return !subscriber->subscribed(); }));
  redis.Resume();
  REQUIRE(Eventually([&] { return subscriber->subscribed(); }));
  CHECK(Publish(*client, channel, "thawed") == 1);
  CHECK(inbox.WaitFor("thawed").has_value());
}

TEST_CASE("Subscriber starts while Redis is down and stops promptly", "[redis]") {
  TestRedis redis;  // nothing listening yet
  const std::string channel = UniqueKeyPrefix("pubsub-down") + "events";
  Inbox inbox;
  SubscriberOptions options = FastOptions(redis.url());
  options.channels = {channel};
  SB_REQUIRE_OK_AND_ASSIGN(auto subscriber, Subscriber::Start(options, inbox.Callback()));
  CHECK_FALSE(subscriber->subscribed());

  SB_REQUIRE_OK(redis.Start());
  REQUIRE(Eventually([&] { return subscriber->subscribed(); }));
  auto client = MakeClient(redis.url());
  CHECK(Publish(*client, channel, "late") == 1);
  CHECK(inbox.WaitFor("late").has_value());

  // Stop while it is waiting to reconnect to a Redis that is gone.
  redis.Kill();
  REQUIRE(Eventually([&] { return !subscriber->subscribed(); }));
  const absl::Time start = absl::Now();
  subscriber->Stop();
  CHECK(absl::Now() - start < absl::Seconds(2));
  const size_t delivered = inbox.size();
  subscriber.reset();
  CHECK(inbox.size() == delivered);

  CHECK(
      absl::IsInvalidArgument(Subscriber::Start({.url = redis.url()}, inbox.Callback()).status()));
  CHECK(absl::IsInvalidArgument(
      Subscriber::Start({.url = "nope", .channels = {"c"}}, inbox.Callback()).status()));
}

}  // namespace
}  // namespace sb::redis
