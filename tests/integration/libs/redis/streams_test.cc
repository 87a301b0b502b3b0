// Redis Streams consumer groups against a real redis-server: the at-least-once delivery that
// reporting relies on for call events.

#include "libs/redis/streams.h"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/testing/child_process.h"
#include "libs/testing/redis_server.h"
#include "tests/integration/libs/redis/redis_test_util.h"

namespace sb::redis {
namespace {

using ::sb::redis::testing::Eventually;
using ::sb::redis::testing::MakeClient;
using ::sb::redis::testing::SharedUrl;
using ::sb::testing::UniqueKeyPrefix;

int64_t PendingFor(const PendingSummary& summary, const std::string& consumer) {
  for (const auto& [name, count] : summary.consumers) {
    if (name == consumer) return count;
  }
  return 0;
}

TEST_CASE("A stream entry read but never acked is redelivered until it is acked", "[redis]") {
  auto client = MakeClient(SharedUrl());
  const std::string stream = UniqueKeyPrefix("streams-crash") + "events";
  const std::string group = "reporting";

  SB_REQUIRE_OK(XGroupCreate(*client, stream, group, "$"));
  SB_REQUIRE_OK(XGroupCreate(*client, stream, group, "$"));  // BUSYGROUP is fine

  const StreamFields event = {
      {"call_id", "c-1"}, {"type", "ended"}, {"raw", std::string("\0x", 2)}};
  SB_REQUIRE_OK_AND_ASSIGN(std::string id, XAdd(*client, stream, event));

  // Consumer A reads the event and "dies" before XACK.
  SB_REQUIRE_OK_AND_ASSIGN(auto read_by_a, XReadGroup(*client, stream, group, "A", {.count = 10}));
  REQUIRE(read_by_a.size() == 1);
  CHECK(read_by_a[0].id == id);
  CHECK(read_by_a[0].fields == event);
  REQUIRE(read_by_a[0].Find("call_id") != nullptr);
  CHECK(*read_by_a[0].Find("call_id") == "c-1");

  // New reads (">") do not hand it out again: it is pending for A.
  SB_REQUIRE_OK_AND_ASSIGN(auto fresh_for_b, XReadGroup(*client, stream, group, "B"));
  CHECK(fresh_for_b.empty());
  SB_REQUIRE_OK_AND_ASSIGN(PendingSummary pending, XPending(*client, stream, group));
  CHECK(pending.count == 1);
  CHECK(pending.min_id == id);
  CHECK(pending.max_id == id);
  CHECK(PendingFor(pending, "A") == 1);

  // Redelivery 1: A comes back and reads its own pending entries (id 0).
  SB_REQUIRE_OK_AND_ASSIGN(auto a_pending, XReadGroup(*client, stream, group, "A", {.id = "0"}));
  REQUIRE(a_pending.size() == 1);
  CHECK(a_pending[0].id == id);
  CHECK(a_pending[0].fields == event);

  // Redelivery 2: A stays dead and B claims what has been idle for 50 ms. Poll rather than sleep.
  AutoClaimResult claimed;
  REQUIRE(Eventually([&] {
    auto result = XAutoClaim(*client, stream, group, "B", absl::Milliseconds(50));
    INFO(result.status().ToString());
    REQUIRE(result.ok());
    claimed = *std::move(result);
    return !claimed.entries.empty();
  }));
  REQUIRE(claimed.entries.size() == 1);
  CHECK(claimed.entries[0].id == id);
  CHECK(claimed.entries[0].fields == event);
  CHECK(claimed.next_id == "0-0");  // the whole pending list was scanned
  CHECK(claimed.deleted_ids.empty());
  SB_REQUIRE_OK_AND_ASSIGN(pending, XPending(*client, stream, group));
  CHECK(pending.count == 1);
  CHECK(PendingFor(pending, "A") == 0);
  CHECK(PendingFor(pending, "B") == 1);

  // B handles it and acks: it is delivered to nobody again, by any route.
  SB_REQUIRE_OK_AND_ASSIGN(int64_t acked, XAck(*client, stream, group, {id}));
  CHECK(acked == 1);
  SB_REQUIRE_OK_AND_ASSIGN(acked, XAck(*client, stream, group, {id}));
  CHECK(acked == 0);
  SB_REQUIRE_OK_AND_ASSIGN(pending, XPending(*client, stream, group));
  CHECK(pending.count == 0);
  CHECK(pending.min_id.empty());
  CHECK(pending.consumers.empty());
  for (const std::string consumer : {"A", "B"}) {
    SB_REQUIRE_OK_AND_ASSIGN(auto own, XReadGroup(*client, stream, group, consumer, {.id = "0"}));
    CHECK(own.empty());
    SB_REQUIRE_OK_AND_ASSIGN(auto fresh, XReadGroup(*client, stream, group, consumer));
    CHECK(fresh.empty());
  }
  SB_REQUIRE_OK_AND_ASSIGN(claimed, XAutoClaim(*client, stream, group, "C", absl::ZeroDuration()));
  CHECK(claimed.entries.empty());
}

TEST_CASE("An entry read by a consumer process that is killed before XACK goes to another",
          "[redis]") {
  const std::string url = SharedUrl();
  auto client = MakeClient(url);
  const std::string stream = UniqueKeyPrefix("streams-kill") + "events";
  const std::string group = "reporting";
  SB_REQUIRE_OK(XGroupCreate(*client, stream, group, "$"));
  SB_REQUIRE_OK_AND_ASSIGN(std::string id, XAdd(*client, stream, {{"call_id", "c-9"}}));

  // A separate process is consumer A: it reads the entry, then is killed with SIGKILL before it
  // can acknowledge anything.
  auto consumer = ::sb::testing::ChildProcess::Start(
      {.argv = {"sh", "-c",
                "redis-cli -u \"$0\" XREADGROUP GROUP \"$1\" A COUNT 1 STREAMS \"$2\" '>' "
                ">/dev/null && kill -KILL $$",
                url, group, stream}});
  REQUIRE(consumer.ok());
  auto exit_code = consumer->Wait(absl::Seconds(10));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 128 + 9);
  SB_REQUIRE_OK_AND_ASSIGN(PendingSummary pending, XPending(*client, stream, group));
  CHECK(PendingFor(pending, "A") == 1);

  // Consumer B, in this process, claims it once it has been idle for 50 ms, and acks it.
  AutoClaimResult claimed;
  REQUIRE(Eventually([&] {
    auto result = XAutoClaim(*client, stream, group, "B", absl::Milliseconds(50));
    REQUIRE(result.ok());
    claimed = *std::move(result);
    return !claimed.entries.empty();
  }));
  REQUIRE(claimed.entries.size() == 1);
  CHECK(claimed.entries[0].id == id);
  SB_REQUIRE_OK_AND_ASSIGN(int64_t acked, XAck(*client, stream, group, {id}));
  CHECK(acked == 1);
  SB_REQUIRE_OK_AND_ASSIGN(pending, XPending(*client, stream, group));
  CHECK(pending.count == 0);
}

TEST_CASE("XAUTOCLAIM reports pending entries that were deleted from the stream", "[redis]") {
  auto client = MakeClient(SharedUrl());
  const std::string stream = UniqueKeyPrefix("streams-deleted") + "events";
  SB_REQUIRE_OK(XGroupCreate(*client, stream, "g", "0"));
  SB_REQUIRE_OK_AND_ASSIGN(std::string kept, XAdd(*client, stream, {{"n", "1"}}));
  SB_REQUIRE_OK_AND_ASSIGN(std::string gone, XAdd(*client, stream, {{"n", "2"}}));
  SB_REQUIRE_OK_AND_ASSIGN(auto read, XReadGroup(*client, stream, "g", "A"));
  REQUIRE(read.size() == 2);
  SB_REQUIRE_OK(client->Command({"XDEL", stream, gone}));

  // Reading history shows the deleted entry with no fields.
  SB_REQUIRE_OK_AND_ASSIGN(auto history, XReadGroup(*client, stream, "g", "A", {.id = "0"}));
  REQUIRE(history.size() == 2);
  CHECK(history[1].id == gone);
  CHECK(history[1].fields.empty());

  SB_REQUIRE_OK_AND_ASSIGN(AutoClaimResult claimed,
                           XAutoClaim(*client, stream, "g", "B", absl::ZeroDuration()));
  REQUIRE(claimed.entries.size() == 1);
  CHECK(claimed.entries[0].id == kept);
  CHECK(claimed.deleted_ids == std::vector<std::string>{gone});
}

TEST_CASE("XADD with MAXLEN ~ keeps the stream bounded", "[redis]") {
  auto client = MakeClient(SharedUrl());
  const std::string stream = UniqueKeyPrefix("streams-maxlen") + "events";
  for (int i = 0; i < 1000; ++i) {
    SB_REQUIRE_OK(XAdd(*client, stream, {{"i", std::to_string(i)}}, {.max_len_approx = 100}));
  }
  SB_REQUIRE_OK_AND_ASSIGN(Reply length, client->Command({"XLEN", stream}));
  INFO("XLEN " << length.DebugString());
  CHECK(length.integer() >= 100);
  CHECK(length.integer() < 300);

  CHECK(absl::IsInvalidArgument(XAdd(*client, stream, {}).status()));
  SB_REQUIRE_OK(client->Command({"SET", stream + ":string", "x"}));
  CHECK(absl::IsFailedPrecondition(XAdd(*client, stream + ":string", {{"a", "b"}}).status()));
  CHECK(absl::IsNotFound(XReadGroup(*client, stream, "no-such-group", "A").status()));
}

TEST_CASE("XREADGROUP BLOCK may outlast the command timeout and wakes up on XADD", "[redis]") {
  auto client = Client::Create(
      {.url = SharedUrl(), .pool_size = 2, .command_timeout = absl::Milliseconds(300)});
  SB_REQUIRE_OK(client);
  const std::string stream = UniqueKeyPrefix("streams-block") + "events";
  SB_REQUIRE_OK(XGroupCreate(**client, stream, "g"));

  // Nothing arrives: the read blocks for its full second (over three command timeouts) and
  // comes back empty, not Unavailable.
  const absl::Time start = absl::Now();
  SB_REQUIRE_OK_AND_ASSIGN(auto nothing,
                           XReadGroup(**client, stream, "g", "A", {.block = absl::Seconds(1)}));
  CHECK(nothing.empty());
  CHECK(absl::Now() - start >= absl::Milliseconds(900));

  // A reader blocked for up to 10 s returns as soon as an entry is added.
  absl::StatusOr<std::vector<StreamEntry>> woken;
  std::thread reader([&] {
    woken = XReadGroup(**client, stream, "g", "A", {.count = 1, .block = absl::Seconds(10)});
  });
  SB_REQUIRE_OK_AND_ASSIGN(std::string id, XAdd(**client, stream, {{"k", "v"}}));
  reader.join();
  SB_REQUIRE_OK(woken);
  REQUIRE(woken->size() == 1);
  CHECK((*woken)[0].id == id);

  CHECK(absl::IsInvalidArgument(
      XReadGroup(**client, stream, "g", "A", {.block = absl::Seconds(-1)}).status()));
}

}  // namespace
}  // namespace sb::redis
