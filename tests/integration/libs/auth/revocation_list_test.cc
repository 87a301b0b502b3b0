// RedisRevocationList against a private redis-server: revocations published by one list reach
// another at its next poll; a list that cannot poll fails closed, and recovers when Redis does.

#include <catch2/catch.hpp>

#include "libs/auth/revocation_list.h"
#include "libs/common/fake_clock.h"
#include "libs/redis/client.h"
#include "libs/testing/redis_server.h"

namespace sb::auth {
namespace {

Principal Session(std::string user, std::string session, absl::Time issued) {
  Principal p;
  p.tenant_id = "t1";
  p.user_id = std::move(user);
  p.session_id = std::move(session);
  p.issued_at = issued;
  return p;
}

TEST_CASE("RedisRevocationList sees sessions, users and API keys revoked, and fails closed",
          "[auth][revocations]") {
  testing::TestRedis server;
  REQUIRE(server.Start().ok());
  auto client = redis::Client::Create({.url = server.url(),
                                       .connect_timeout = absl::Milliseconds(200),
                                       .command_timeout = absl::Milliseconds(300)});
  REQUIRE(client.ok());
  FakeClock clock(absl::Now());
  const RedisRevocationListOptions options{.key = "test:revocations"};
  RedisRevocationList list(**client, clock, options);

  const Principal alive = Session("u1", "s1", clock.Now() - absl::Minutes(1));
  CHECK(absl::IsUnavailable(list.Check(alive)));  // never polled: cannot vouch for anything
  REQUIRE(list.PollOnce().ok());
  CHECK(list.Check(alive).ok());

  REQUIRE(RedisRevocationList::Publish(**client, {Revocation::Kind::kSession, "s1", clock.Now()},
                                       options)
              .ok());
  CHECK(list.Check(alive).ok());  // not yet polled
  REQUIRE(list.PollOnce().ok());
  CHECK(absl::IsUnauthenticated(list.Check(alive)));
  CHECK(list.Check(Session("u1", "s2", clock.Now())).ok());

  // A user revocation ends tokens issued before its second, not the ones after it.
  clock.Advance(absl::Seconds(3));
  const absl::Time cut = clock.Now();
  REQUIRE(
      RedisRevocationList::Publish(**client, {Revocation::Kind::kUser, "u2", cut}, options).ok());
  REQUIRE(list.PollOnce().ok());
  CHECK(absl::IsUnauthenticated(list.Check(Session("u2", "s3", cut - absl::Seconds(2)))));
  CHECK(list.Check(Session("u2", "s4", cut + absl::Seconds(1))).ok());

  Principal key;
  key.kind = Principal::Kind::kApiKey;
  key.tenant_id = "t1";
  key.api_key_id = "k1";
  CHECK(list.Check(key).ok());
  REQUIRE(RedisRevocationList::Publish(**client, {Revocation::Kind::kApiKey, "k1", clock.Now()},
                                       options)
              .ok());
  REQUIRE(list.PollOnce().ok());
  CHECK(absl::IsUnauthenticated(list.Check(key)));

  // Redis goes away: within max_staleness the list still answers, after it nothing passes.
  REQUIRE(server.Stop().ok());
  CHECK_FALSE(list.PollOnce().ok());
  CHECK(list.Check(Session("u3", "s5", clock.Now())).ok());
  clock.Advance(options.max_staleness + absl::Seconds(1));
  CHECK(absl::IsUnavailable(list.Check(Session("u3", "s5", clock.Now()))));
  // Redis comes back (empty, as after a restart without persistence): polling works again.
  REQUIRE(server.Start().ok());
  REQUIRE(list.PollOnce().ok());
  CHECK(list.Check(Session("u3", "s5", clock.Now())).ok());
  // What the list learned before stays until its retention passes.
  CHECK(absl::IsUnauthenticated(list.Check(alive)));
  clock.Advance(options.retention + absl::Minutes(1));
  REQUIRE(list.PollOnce().ok());
  CHECK(list.Check(alive).ok());
}

}  // namespace
}  // namespace sb::auth
