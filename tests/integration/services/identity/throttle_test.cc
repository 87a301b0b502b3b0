// The failure throttle against PostgreSQL with explicit times: free failures, doubling delays up
// to the cap, the hard lock at 100 consecutive failures, and forgetting after a quiet day.

#include <catch2/catch.hpp>

#include "services/identity/throttle.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

TEST_CASE("Throttle: free failures, doubling delays, and a hard lock at 100", "[throttle]") {
  IdentityFixture f;
  const ThrottlePolicy policy = AccountThrottle();
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto fail = [&] {
    return *f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::optional<absl::Duration>> {
      return Throttle::RecordFailure(tx, "login:acme:anna", policy, now);
    });
  };
  auto locked = [&] {
    return *f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::optional<absl::Duration>> {
      return Throttle::LockedFor(tx, "login:acme:anna", now);
    });
  };
  for (int i = 1; i <= 5; ++i) {
    INFO("failure " << i);
    CHECK_FALSE(fail().has_value());
  }
  CHECK(fail() == absl::Seconds(1));  // 6th
  CHECK(locked() == absl::Seconds(1));
  now += absl::Seconds(1);
  CHECK_FALSE(locked().has_value());
  CHECK(fail() == absl::Seconds(2));  // 7th: doubling
  CHECK(fail() == absl::Seconds(4));
  int failures = 8;
  std::optional<absl::Duration> last;
  // Keep failing, each time right after the lock ends, up to 99 failures: capped at 15 minutes.
  while (failures < 99) {
    now += absl::Minutes(16);
    last = fail();
    ++failures;
    REQUIRE(last.has_value());
    CHECK(*last <= absl::Minutes(15));
  }
  CHECK(*last == absl::Minutes(15));
  now += absl::Minutes(16);
  const std::optional<absl::Duration> hard = fail();  // the 100th
  REQUIRE(hard.has_value());
  CHECK(*hard > absl::Hours(24 * 365));
  now += absl::Hours(24 * 30);
  CHECK(locked().has_value());  // still locked a month later: an admin must unlock it

  // A key that stays quiet for a day starts from zero again.
  absl::Time t = now;
  auto fail_other = [&](absl::Time at) {
    return *f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::optional<absl::Duration>> {
      return Throttle::RecordFailure(tx, "login:acme:bob", policy, at);
    });
  };
  for (int i = 0; i < 5; ++i) CHECK_FALSE(fail_other(t).has_value());
  CHECK_FALSE(fail_other(t + absl::Hours(25)).has_value());  // forgotten: this is failure 1
}

}  // namespace
}  // namespace sb::identity::test
