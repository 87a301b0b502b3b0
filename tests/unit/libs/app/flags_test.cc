#include <catch2/catch.hpp>

#include <map>

#include "libs/app/flags.h"

namespace sb::app {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

struct Config {
  std::string dsn = "host=localhost";
  int64_t threads = 8;
  bool migrate = true;
  absl::Duration grace = absl::Seconds(10);
  std::string addr = "127.0.0.1:9090";
};

FlagSet Declare(Config& c) {
  FlagSet flags;
  flags.Add("pg_dsn", &c.dsn, "PostgreSQL connection string");
  flags.Add("threads", &c.threads, "thread cap", InRange(1, 64));
  flags.Add("migrate", &c.migrate, "apply migrations");
  flags.Add("grace", &c.grace, "drain time", PositiveDuration());
  flags.Add("grpc_addr", &c.addr, "listen address", HostPort());
  return flags;
}

TEST_CASE("flags: defaults hold when nothing is given", "[app]") {
  Config c;
  FlagSet flags = Declare(c);
  REQUIRE(flags.Parse({}, FakeEnv({})).ok());
  REQUIRE(c.dsn == "host=localhost");
  REQUIRE(c.threads == 8);
  REQUIRE(c.migrate);
}

TEST_CASE("flags: the environment twin sets a flag, the command line wins over it", "[app]") {
  Config c;
  FlagSet flags = Declare(c);
  REQUIRE(FlagSet::EnvName("pg_dsn") == "SB_PG_DSN");
  REQUIRE(flags
              .Parse({"--threads", "16", "--nomigrate", "--grace=1m30s"},
                     FakeEnv({{"SB_PG_DSN", "host=db"}, {"SB_THREADS", "4"}}))
              .ok());
  REQUIRE(c.dsn == "host=db");
  REQUIRE(c.threads == 16);
  REQUIRE_FALSE(c.migrate);
  REQUIRE(c.grace == absl::Seconds(90));
}

TEST_CASE("flags: a bad environment twin is no error when the command line sets the flag",
          "[app]") {
  Config c;
  FlagSet flags = Declare(c);
  REQUIRE(flags
              .Parse({"--threads=4", "--migrate"},
                     FakeEnv({{"SB_THREADS", "lots"}, {"SB_MIGRATE", "perhaps"}}))
              .ok());
  CHECK(c.threads == 4);
  CHECK(c.migrate);
}

TEST_CASE("flags: bad values are rejected with the flag named", "[app]") {
  auto error_for = [](std::vector<std::string> args, std::map<std::string, std::string> env) {
    Config c;
    FlagSet flags = Declare(c);
    absl::Status s = flags.Parse(args, FakeEnv(env));
    REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  CHECK(error_for({"--threads=many"}, {}) ==
        "invalid value for --threads='many': must be an integer");
  CHECK(error_for({"--threads=100"}, {}) ==
        "invalid value for --threads='100': must be between 1 and 64");
  CHECK(error_for({"--grace=-1s"}, {}).find("--grace") != std::string::npos);
  CHECK(error_for({"--grpc_addr=localhost"}, {}) ==
        "invalid value for --grpc_addr='localhost': must be host:port, e.g. 127.0.0.1:9090");
  CHECK(error_for({"--grpc_addr=:70000"}, {}).find("port must be between") != std::string::npos);
  CHECK(error_for({"--nope=1"}, {}) == "unknown flag --nope (see --help for the list)");
  CHECK(error_for({"--pg_dsn"}, {}) == "flag --pg_dsn needs a value");
  CHECK(error_for({"stray"}, {}) == "unexpected argument 'stray'");
  CHECK(error_for({}, {{"SB_MIGRATE", "perhaps"}}) ==
        "invalid value for --migrate (from SB_MIGRATE='perhaps'): must be true or false");
}

TEST_CASE("flags: help lists every flag with its twin and default", "[app]") {
  Config c;
  FlagSet flags = Declare(c);
  REQUIRE(flags.Parse({"--help"}, FakeEnv({})).ok());
  REQUIRE(flags.help_requested());
  const std::string help = flags.Help();
  for (const char* name : {"--pg_dsn (env SB_PG_DSN, default \"host=localhost\")", "--threads",
                           "--migrate", "--grace (env SB_GRACE, default \"10s\")", "--grpc_addr"}) {
    INFO(name);
    CHECK(help.find(name) != std::string::npos);
  }
}

TEST_CASE("flags: host:port accepts IPv4, names, IPv6 and port 0", "[app]") {
  auto validate = HostPort();
  CHECK(validate("0.0.0.0:9090").empty());
  CHECK(validate("switchboard-org:9090").empty());
  CHECK(validate("[::1]:0").empty());
  CHECK(validate(":5060").empty());
  CHECK_FALSE(validate("[::1]").empty());
  CHECK_FALSE(validate("host:port").empty());
}

}  // namespace
}  // namespace sb::app
