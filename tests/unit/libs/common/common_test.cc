#include <catch2/catch.hpp>

#include "absl/container/flat_hash_set.h"
#include "libs/common/expiring_cache.h"
#include "libs/common/fake_clock.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/common/token_bucket.h"

namespace sb {
namespace {

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("n must be even");
  return n / 2;
}

absl::StatusOr<int> Quarter(int n) {
  SB_ASSIGN_OR_RETURN(int half, Half(n));
  SB_ASSIGN_OR_RETURN(auto quarter, Half(half));
  return quarter;
}

absl::Status Check(int n) {
  SB_RETURN_IF_ERROR(Half(n));
  SB_RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST_CASE("SB_ASSIGN_OR_RETURN passes values and returns the first error", "[common]") {
  REQUIRE(Quarter(8).value() == 2);
  const auto odd_half = Quarter(6);
  REQUIRE(odd_half.status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(odd_half.status().message() == "n must be even");
  REQUIRE(Quarter(3).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("SB_RETURN_IF_ERROR accepts Status and StatusOr", "[common]") {
  REQUIRE(Check(4).ok());
  REQUIRE(Check(5).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("grpc and absl status codes map both ways with their messages", "[common]") {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status s(static_cast<absl::StatusCode>(code), code == 0 ? "" : "boom");
    const grpc::Status g = ToGrpcStatus(s);
    REQUIRE(static_cast<int>(g.error_code()) == code);
    REQUIRE(FromGrpcStatus(g) == s);
  }
  REQUIRE(ToGrpcStatus(absl::UnavailableError("db down")).error_message() == "db down");
  REQUIRE(ToGrpcStatus(absl::NotFoundError("x")).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("strong ids parse UUIDs and name the field on bad input", "[common]") {
  const std::string fresh = NewUuid();
  REQUIRE(IsUuid(fresh));
  REQUIRE(fresh[14] == '4');
  REQUIRE(std::string("89ab").find(fresh[19]) != std::string::npos);
  REQUIRE(UserId::Parse(fresh, "user_id").value().value() == fresh);

  const auto empty = UserId::Parse("", "user_id");
  REQUIRE(empty.status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(empty.status().message() == "user_id is required");
  const auto bad = TeamId::Parse("not-a-uuid", "team_id");
  REQUIRE(bad.status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(std::string(bad.status().message()).find("team_id must be a UUID") == 0);
  REQUIRE_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400"));   // one short
  REQUIRE_FALSE(IsUuid("123e4567xe89b-12d3-a456-426614174000"));  // dash missing
  REQUIRE(IsUuid("123E4567-E89B-12D3-A456-426614174000"));
  REQUIRE(UserId::Parse("123E4567-E89B-12D3-A456-426614174000", "user_id").value() ==
          UserId::Parse("123e4567-e89b-12d3-a456-426614174000", "user_id").value());

  absl::flat_hash_set<UserId> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(UserId::New());
  REQUIRE(ids.size() == 1000);
  static_assert(!std::is_convertible_v<UserId, TeamId>);
}

TEST_CASE("FakeClock moves only when told", "[common]") {
  FakeClock clock(absl::FromUnixSeconds(100));
  const Clock& c = clock;
  REQUIRE(c.Now() == absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  REQUIRE(c.Now() == absl::FromUnixSeconds(105));
  clock.Set(absl::FromUnixSeconds(7));
  REQUIRE(c.Now() == absl::FromUnixSeconds(7));
}

TEST_CASE("JSON escaping keeps log lines valid", "[common]") {
  std::string out;
  AppendJsonEscaped("a\"b\\c\nd\x01", out);
  REQUIRE(out == "a\\\"b\\\\c\\nd\\u0001");
  REQUIRE(InitLogging("info").ok());
  REQUIRE(InitLogging("verbose").code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sb

namespace sb {
namespace {

TEST_CASE("ExpiringCache: a value until its expiry; past capacity it starts afresh", "[common]") {
  const absl::Time t0 = absl::FromUnixSeconds(1'000'000);
  ExpiringCache<std::string> cache(/*capacity=*/2);
  CHECK_FALSE(cache.Get("a", t0).has_value());
  cache.Put("a", "alpha", t0 + absl::Seconds(1));
  CHECK(cache.Get("a", t0) == std::optional<std::string>("alpha"));
  CHECK(cache.Get("a", t0 + absl::Milliseconds(999)) == std::optional<std::string>("alpha"));
  CHECK_FALSE(cache.Get("a", t0 + absl::Seconds(1)).has_value());
  // Put replaces, with the new expiry.
  cache.Put("a", "again", t0 + absl::Seconds(5));
  CHECK(cache.Get("a", t0 + absl::Seconds(2)) == std::optional<std::string>("again"));
  cache.Put("b", "beta", t0 + absl::Seconds(5));
  CHECK(cache.size() == 2);
  // Replacing a key at capacity keeps the others; a third key starts afresh.
  cache.Put("b", "beta2", t0 + absl::Seconds(5));
  CHECK(cache.Get("a", t0) == std::optional<std::string>("again"));
  cache.Put("c", "gamma", t0 + absl::Seconds(5));
  CHECK(cache.size() == 1);
  CHECK_FALSE(cache.Get("a", t0).has_value());
  CHECK(cache.Get("c", t0) == std::optional<std::string>("gamma"));
}

TEST_CASE("TokenBucket: a burst, then the rate; a zero rate admits all", "[common]") {
  const absl::Time t0 = absl::FromUnixSeconds(1'000'000);
  TokenBucket bucket(/*rate=*/10, /*burst=*/3);
  CHECK(bucket.Take(t0));
  CHECK(bucket.Take(t0));
  CHECK(bucket.Take(t0));
  CHECK_FALSE(bucket.Take(t0));                           // the burst is spent
  CHECK_FALSE(bucket.Take(t0 + absl::Milliseconds(50)));  // half a token back
  CHECK(bucket.Take(t0 + absl::Milliseconds(100)));       // one token back
  CHECK_FALSE(bucket.Take(t0 + absl::Milliseconds(100)));
  CHECK_FALSE(bucket.Take(t0 - absl::Seconds(10)));  // an earlier time adds nothing
  // A long quiet spell refills only up to the burst.
  const absl::Time later = t0 + absl::Hours(1);
  int taken = 0;
  while (bucket.Take(later)) ++taken;
  CHECK(taken == 3);

  TokenBucket off(/*rate=*/0, /*burst=*/0);
  for (int i = 0; i < 1000; ++i) REQUIRE(off.Take(t0));
}

}  // namespace
}  // namespace sb
