// libs/redis Client against a real redis-server: replies, pipelines, error mapping, Lua scripts,
// and what callers see while Redis is down, restarted, or frozen.

#include "libs/redis/client.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/redis/endpoint.h"
#include "libs/redis/reply.h"
#include "libs/redis/script.h"
#include "libs/testing/redis_server.h"
#include "tests/integration/libs/redis/redis_test_util.h"

namespace sb::redis {
namespace {

using ::sb::redis::testing::Eventually;
using ::sb::redis::testing::InfoNumber;
using ::sb::redis::testing::MakeClient;
using ::sb::redis::testing::SharedUrl;
using ::sb::testing::TestRedis;
using ::sb::testing::UniqueKeyPrefix;

TEST_CASE("Client returns nil, integer, string, status, array and error replies", "[redis]") {
  auto client = MakeClient(SharedUrl());
  const std::string p = UniqueKeyPrefix("reply-types");

  SB_REQUIRE_OK_AND_ASSIGN(Reply set, client->Command({"SET", p + "s", "value"}));
  CHECK(set.type() == Reply::Type::kStatus);
  CHECK(set.str() == "OK");

  SB_REQUIRE_OK_AND_ASSIGN(Reply missing, client->Command({"GET", p + "nothing-here"}));
  CHECK(missing.is_nil());

  SB_REQUIRE_OK_AND_ASSIGN(Reply incr, client->Command({"INCRBY", p + "n", "41"}));
  CHECK(incr.is_integer());
  CHECK(incr.integer() == 41);
  CHECK(incr.AsInteger().value() == 41);
  CHECK(absl::IsInternal(incr.AsString().status()));

  // Binary-safe both ways: NUL, CR, LF and bytes >= 0x80 in keys and values.
  const std::string binary_key = p + std::string("bin\0\r\nkey", 9);
  const std::string binary_value = std::string("a\0b\r\n\xff\x80z", 8);
  SB_REQUIRE_OK(client->Command({"SET", binary_key, binary_value}));
  SB_REQUIRE_OK_AND_ASSIGN(Reply got, client->Command({"GET", binary_key}));
  CHECK(got.is_string());
  CHECK(got.str() == binary_value);
  CHECK(got.str().size() == 8);

  SB_REQUIRE_OK(client->Command({"RPUSH", p + "list", "a", "", "c"}));
  SB_REQUIRE_OK_AND_ASSIGN(Reply list, client->Command({"LRANGE", p + "list", "0", "-1"}));
  REQUIRE(list.is_array());
  CHECK(list == Reply::Array({Reply::String("a"), Reply::String(""), Reply::String("c")}));

  // Nested arrays, and a Lua false which Redis turns into nil inside an array.
  SB_REQUIRE_OK_AND_ASSIGN(Reply nested,
                           client->Command({"EVAL", "return {1, 'two', {3, {'four'}}}", "0"}));
  CHECK(nested ==
        Reply::Array({Reply::Integer(1), Reply::String("two"),
                      Reply::Array({Reply::Integer(3), Reply::Array({Reply::String("four")})})}));

  SB_REQUIRE_OK_AND_ASSIGN(Reply empty, client->Command({"LRANGE", p + "nolist", "0", "-1"}));
  CHECK(empty.is_array());
  CHECK(empty.elements().empty());

  // Command() turns an error reply into a Status; inside a pipeline it stays a Reply.
  SB_REQUIRE_OK_AND_ASSIGN(auto replies,
                           client->Pipeline({{"LPUSH", p + "s", "x"}, {"GET", p + "s"}}));
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].is_error());
  CHECK(replies[0].str().rfind("WRONGTYPE", 0) == 0);
  CHECK(absl::IsFailedPrecondition(replies[0].ToStatus()));
  CHECK(replies[1] == Reply::String("value"));

  SB_REQUIRE_OK(client->Ping());
}

TEST_CASE("Client pipelines many commands in one round trip, replies in order", "[redis]") {
  // A private server, so that its read counter counts only this test's traffic.
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = MakeClient(redis.url());
  const std::string p = UniqueKeyPrefix("pipeline");

  constexpr int kKeys = 100;
  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < kKeys; ++i) {
    commands.push_back({"SET", p + std::to_string(i), "v" + std::to_string(i)});
    commands.push_back({"GET", p + std::to_string(i)});
    commands.push_back({"INCR", p + "counter"});
  }
  const int64_t reads_before = InfoNumber(*client, "stats", "total_reads_processed:");
  SB_REQUIRE_OK_AND_ASSIGN(std::vector<Reply> replies, client->Pipeline(commands));
  const int64_t reads_after = InfoNumber(*client, "stats", "total_reads_processed:");

  REQUIRE(replies.size() == commands.size());
  for (int i = 0; i < kKeys; ++i) {
    INFO("key " << i);
    CHECK(replies[3 * i] == Reply::Status("OK"));
    CHECK(replies[3 * i + 1] == Reply::String("v" + std::to_string(i)));
    CHECK(replies[3 * i + 2] == Reply::Integer(i + 1));
  }
  // 300 commands one by one would be 300 reads by the server. Pipelined, they arrive in one write
  // (~10 KB) that the server reads in a read or two; the second INFO costs one more read.
  INFO("server reads during the pipeline: " << reads_after - reads_before);
  CHECK(reads_after - reads_before <= 5);

  // An empty pipeline is a no-op, and an empty command is refused before anything is sent.
  SB_REQUIRE_OK_AND_ASSIGN(auto none, client->Pipeline({}));
  CHECK(none.empty());
  CHECK(absl::IsInvalidArgument(client->Pipeline({{"PING"}, {}}).status()));
}

TEST_CASE("Client maps Redis error replies to status codes", "[redis]") {
  auto client = MakeClient(SharedUrl());
  const std::string p = UniqueKeyPrefix("errors");
  SB_REQUIRE_OK(client->Command({"SET", p + "string", "not a number"}));

  auto wrongtype = client->Command({"LPUSH", p + "string", "x"});
  CHECK(absl::IsFailedPrecondition(wrongtype.status()));
  CHECK(wrongtype.status().message().find("WRONGTYPE") != absl::string_view::npos);

  CHECK(absl::IsInternal(client->Command({"NOSUCHCOMMAND", "x"}).status()));
  CHECK(absl::IsInternal(client->Command({"GET"}).status()));  // wrong number of arguments
  auto not_integer = client->Command({"INCR", p + "string"});
  CHECK(absl::IsInternal(not_integer.status()));
  CHECK(not_integer.status().message().find("not an integer") != absl::string_view::npos);

  // A script's own error code reaches the caller in the message.
  auto script_error =
      client->Command({"EVAL", "return redis.error_reply('NOAGENT no agent is free')", "0"});
  CHECK(absl::IsInternal(script_error.status()));
  CHECK(script_error.status().message().find("NOAGENT no agent is free") !=
        absl::string_view::npos);

  CHECK(absl::IsNotFound(
      client->Command({"EVALSHA", "0123456789012345678901234567890123456789", "0"}).status()));

  SB_REQUIRE_OK(client->Command({"XGROUP", "CREATE", p + "stream", "g", "$", "MKSTREAM"}));
  CHECK(absl::IsAlreadyExists(
      client->Command({"XGROUP", "CREATE", p + "stream", "g", "$", "MKSTREAM"}).status()));
  CHECK(absl::IsNotFound(
      client->Command({"XREADGROUP", "GROUP", "nogroup", "c", "STREAMS", p + "stream", ">"})
          .status()));

  CHECK(absl::IsInvalidArgument(client->Command({}).status()));

  // Not a Redis reply but the table's other entries, checked without provoking each server state.
  CHECK(absl::IsUnavailable(ErrorReplyToStatus("LOADING Redis is loading the dataset")));
  CHECK(absl::IsUnavailable(ErrorReplyToStatus("READONLY You can't write against a replica.")));
  CHECK(absl::IsResourceExhausted(ErrorReplyToStatus("OOM command not allowed")));
  CHECK(absl::IsUnauthenticated(ErrorReplyToStatus("NOAUTH Authentication required.")));
  CHECK(absl::IsPermissionDenied(ErrorReplyToStatus("NOPERM this user has no permissions")));
}

TEST_CASE("Eval uses EVALSHA and falls back to EVAL after SCRIPT FLUSH", "[redis]") {
  // A private server: SCRIPT FLUSH would disturb other tests on a shared one.
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = MakeClient(redis.url());
  const std::string key = UniqueKeyPrefix("eval") + "n";
  const Script incr_by("return redis.call('INCRBY', KEYS[1], ARGV[1])");

  // Our locally computed SHA1 is the one Redis computes.
  SB_REQUIRE_OK_AND_ASSIGN(Reply loaded, client->Command({"SCRIPT", "LOAD", incr_by.source()}));
  CHECK(loaded.str() == incr_by.sha1());
  auto eval_calls = [&] { return InfoNumber(*client, "commandstats", "cmdstat_eval:calls=", 0); };

  SB_REQUIRE_OK_AND_ASSIGN(Reply first, client->Eval(incr_by, {key}, {"5"}));
  CHECK(first == Reply::Integer(5));
  CHECK(eval_calls() == 0);  // cached: EVALSHA was enough

  SB_REQUIRE_OK(client->Command({"SCRIPT", "FLUSH"}));
  SB_REQUIRE_OK_AND_ASSIGN(Reply exists, client->Command({"SCRIPT", "EXISTS", incr_by.sha1()}));
  REQUIRE(exists == Reply::Array({Reply::Integer(0)}));

  SB_REQUIRE_OK_AND_ASSIGN(Reply after_flush, client->Eval(incr_by, {key}, {"5"}));
  CHECK(after_flush == Reply::Integer(10));
  CHECK(eval_calls() == 1);  // NOSCRIPT, then EVAL, which cached the script again
  SB_REQUIRE_OK_AND_ASSIGN(exists, client->Command({"SCRIPT", "EXISTS", incr_by.sha1()}));
  CHECK(exists == Reply::Array({Reply::Integer(1)}));

  SB_REQUIRE_OK_AND_ASSIGN(Reply cached_again, client->Eval(incr_by, {key}, {"5"}));
  CHECK(cached_again == Reply::Integer(15));
  CHECK(eval_calls() == 1);

  // A restart empties the script cache too.
  SB_REQUIRE_OK(redis.Stop());
  SB_REQUIRE_OK(redis.Start());
  SB_REQUIRE_OK_AND_ASSIGN(Reply after_restart, client->Eval(incr_by, {key}, {"2"}));
  CHECK(after_restart == Reply::Integer(2));

  // A runtime error in the script is an error status, not a crash or a hang.
  const Script broken("return redis.call('INCR', KEYS[1], 'extra', 'args')");
  CHECK(absl::IsInternal(client->Eval(broken, {key}, {}).status()));
}

TEST_CASE("Client fails fast while Redis is down and recovers by itself after a restart",
          "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = MakeClient(redis.url(), /*pool_size=*/4);
  const std::string key = UniqueKeyPrefix("restart") + "k";

  // Several threads at once, so that the pool holds several connections.
  auto hammer = [&] {
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          if (!client->Command({"INCR", key}).ok()) ++failures;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    return failures.load();
  };
  REQUIRE(hammer() == 0);

  // A restart between two calls: every pooled connection is stale, yet no call fails, because
  // a connection the server closed is noticed before it is used.
  SB_REQUIRE_OK(redis.Stop());
  SB_REQUIRE_OK(redis.Start());
  CHECK(hammer() == 0);
  SB_REQUIRE_OK_AND_ASSIGN(Reply count, client->Command({"GET", key}));
  CHECK(count == Reply::String("200"));  // counted from zero on the fresh server

  for (const bool crash : {false, true}) {
    INFO((crash ? "killed" : "stopped"));
    if (crash) {
      redis.Kill();
    } else {
      SB_REQUIRE_OK(redis.Stop());
    }
    for (int i = 0; i < 5; ++i) {
      const absl::Time start = absl::Now();
      auto reply = client->Command({"GET", key});
      INFO(reply.status().ToString());
      CHECK(absl::IsUnavailable(reply.status()));
      CHECK(absl::IsUnavailable(client->Ping()));
      CHECK(absl::Now() - start < absl::Seconds(2));  // refused at once; the bound is generous
    }

    SB_REQUIRE_OK(redis.Start());
    // The same client, no retry loop: stale pooled connections are noticed and replaced.
    SB_REQUIRE_OK_AND_ASSIGN(Reply after, client->Command({"GET", key}));
    CHECK(after.is_nil());  // a fresh, empty server
    SB_REQUIRE_OK(client->Command({"SET", key, "back"}));
    SB_REQUIRE_OK(client->Ping());
  }
}

TEST_CASE("Client created while Redis is down works once Redis starts", "[redis]") {
  TestRedis redis;  // port chosen, nothing listening yet
  auto client = MakeClient(redis.url());

  const absl::Time start = absl::Now();
  const absl::Status down = client->Ping();
  INFO(down.ToString());
  CHECK(absl::IsUnavailable(down));
  CHECK(down.message().find(std::to_string(redis.port())) != absl::string_view::npos);
  CHECK(absl::Now() - start < absl::Seconds(2));

  SB_REQUIRE_OK(redis.Start());
  SB_REQUIRE_OK(client->Ping());
}

TEST_CASE("Client times out instead of hanging on a Redis that does not answer", "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = Client::Create({.url = redis.url(),
                                .pool_size = 2,
                                .connect_timeout = absl::Milliseconds(300),
                                .command_timeout = absl::Milliseconds(300)});
  SB_REQUIRE_OK(client);
  SB_REQUIRE_OK((*client)->Ping());

  redis.Pause();  // connections are still accepted by the kernel, but nothing answers
  for (int i = 0; i < 2; ++i) {
    const absl::Time start = absl::Now();
    const absl::Status status = (*client)->Ping();
    INFO(status.ToString());
    CHECK(absl::IsUnavailable(status));
    CHECK(absl::Now() - start < absl::Seconds(3));
  }
  redis.Resume();
  // The timed-out connections were discarded: the next call gets a fresh one and a real answer.
  SB_REQUIRE_OK((*client)->Ping());
}

TEST_CASE("Client survives a server that closes the connection in the middle of a write",
          "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = MakeClient(redis.url());
  // Redis drops a client that announces a bulk string over proto-max-bulk-len right after reading
  // its header, while we are still writing the other 32 MB: the write fails (ECONNRESET, or EPIPE
  // with a SIGPIPE, depending on timing; no SIGPIPE handler is installed here). The call must
  // return an error, the process must live on, and the next call must work.
  SB_REQUIRE_OK(client->Command({"CONFIG", "SET", "proto-max-bulk-len", "1mb"}));
  const std::string huge(32 << 20, 'x');
  for (int i = 0; i < 3; ++i) {
    const absl::Status status = client->Command({"SET", "huge", huge}).status();
    INFO(status.ToString());
    CHECK_FALSE(status.ok());
  }
  SB_REQUIRE_OK(client->Ping());
}

TEST_CASE("Client reports an exhausted pool instead of waiting without bound", "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  auto client = Client::Create(
      {.url = redis.url(), .pool_size = 1, .command_timeout = absl::Milliseconds(300)});
  SB_REQUIRE_OK(client);
  auto other = MakeClient(redis.url());
  const std::string list = UniqueKeyPrefix("pool") + "list";

  // The only pooled connection waits in BLPOP...
  absl::StatusOr<Reply> popped;
  std::thread blocked([&] {
    popped = (*client)->BlockingCommand({"BLPOP", list, "10"}, absl::Seconds(10));
  });
  REQUIRE(Eventually([&] { return InfoNumber(*other, "clients", "blocked_clients:") == 1; }));

  // ...so another call gives up after the command timeout.
  const absl::Time start = absl::Now();
  const absl::Status busy = (*client)->Ping();
  INFO(busy.ToString());
  CHECK(absl::IsResourceExhausted(busy));
  CHECK(absl::Now() - start < absl::Seconds(3));

  SB_REQUIRE_OK(other->Command({"RPUSH", list, "item"}));
  blocked.join();
  SB_REQUIRE_OK(popped);
  CHECK(*popped == Reply::Array({Reply::String(list), Reply::String("item")}));
  SB_REQUIRE_OK((*client)->Ping());
}

TEST_CASE("Client logs in and selects the database given in the URL", "[redis]") {
  TestRedis redis;
  SB_REQUIRE_OK(redis.Start());
  const std::string key = UniqueKeyPrefix("auth") + "k";
  {
    auto admin = MakeClient(redis.url());
    SB_REQUIRE_OK(admin->Command({"CONFIG", "SET", "requirepass", "p@ss:word"}));
  }
  const std::string base = "127.0.0.1:" + std::to_string(redis.port());

  // Percent-encoded password, database 3.
  auto in_db3 = MakeClient("redis://:p%40ss%3Aword@" + base + "/3");
  SB_REQUIRE_OK(in_db3->Command({"SET", key, "three"}));
  auto in_db0 = MakeClient("redis://default:p%40ss%3Aword@" + base);
  SB_REQUIRE_OK_AND_ASSIGN(Reply db0_value, in_db0->Command({"GET", key}));
  CHECK(db0_value.is_nil());
  auto also_db3 = MakeClient("redis://default:p%40ss%3Aword@" + base + "/3");
  SB_REQUIRE_OK_AND_ASSIGN(Reply db3_value, also_db3->Command({"GET", key}));
  CHECK(db3_value == Reply::String("three"));

  const absl::Status wrong_password = MakeClient("redis://:nope@" + base)->Ping();
  INFO(wrong_password.ToString());
  CHECK(absl::IsUnauthenticated(wrong_password));
  CHECK(wrong_password.message().find("nope") == absl::string_view::npos);
  CHECK(absl::IsUnauthenticated(MakeClient(redis.url())->Ping()));  // NOAUTH

  // Bad configuration fails when the client is created, naming the problem.
  CHECK(absl::IsInvalidArgument(Client::Create({.url = "http://localhost"}).status()));
  CHECK(absl::IsInvalidArgument(Client::Create({.url = "redis://:@host"}).status()));
  CHECK(absl::IsInvalidArgument(Client::Create({.url = "redis://host:99999"}).status()));
  CHECK(absl::IsInvalidArgument(Client::Create({.url = "redis://host/db"}).status()));
  CHECK(absl::IsInvalidArgument(Client::Create({.url = "redis://"}).status()));
  CHECK(absl::IsInvalidArgument(Client::Create({.url = "redis://host", .pool_size = 0}).status()));
  SB_REQUIRE_OK_AND_ASSIGN(Endpoint v6, ParseRedisUrl("redis://u:p@[::1]:7000/2"));
  CHECK(v6.host == "::1");
  CHECK(v6.port == 7000);
  CHECK(v6.username == "u");
  CHECK(v6.password == "p");
  CHECK(v6.db == 2);
  CHECK(v6.Address() == "[::1]:7000");
}

TEST_CASE("Client serves many threads at once from a small pool", "[redis]") {
  auto client = MakeClient(SharedUrl(), /*pool_size=*/3);
  const std::string key = UniqueKeyPrefix("threads") + "n";
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        const bool ok = (i % 10 == 0) ? client->Pipeline({{"INCR", key}, {"PING"}}).ok()
                                      : client->Command({"INCR", key}).ok();
        if (!ok) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  SB_REQUIRE_OK_AND_ASSIGN(Reply total, client->Command({"GET", key}));
  CHECK(total == Reply::String(std::to_string(kThreads * kPerThread)));
}

}  // namespace
}  // namespace sb::redis
