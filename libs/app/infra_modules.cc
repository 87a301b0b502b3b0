#include "libs/app/infra_modules.h"

#include "libs/app/owning_module.h"
#include "libs/app/platform.h"
#include "libs/common/status_macros.h"
#include "libs/pg/pool.h"
#include "libs/redis/client.h"

namespace sb::app {
namespace {

struct PgConfig {
  std::string dsn = "host=127.0.0.1 port=5432 user=postgres dbname=switchboard";
  int64_t pool_size = 16;
  absl::Duration statement_timeout = absl::Seconds(30);
};

struct RedisConfig {
  std::string url = "redis://127.0.0.1:6379";
  int64_t pool_size = 16;
  absl::Duration command_timeout = absl::Seconds(2);
};

}  // namespace

ModuleSpec PgModule() {
  auto config = std::make_shared<PgConfig>();
  return {
      .name = "pg",
      .is_target = false,
      .declare_flags =
          [config](FlagSet& flags) {
            flags.Add("pg_dsn", &config->dsn,
                      "PostgreSQL connection string (libpq keyword/value or postgresql:// URI).",
                      NonEmpty());
            flags.Add("pg_pool_size", &config->pool_size,
                      "Most PostgreSQL connections this process opens.", InRange(1, 1000));
            flags.Add("pg_statement_timeout", &config->statement_timeout,
                      "Server-side time limit of each SQL statement.", PositiveDuration());
          },
      .create = [config](Platform& platform) -> absl::StatusOr<std::unique_ptr<Module>> {
        auto module = std::make_unique<OwningModule>();
        SB_ASSIGN_OR_RETURN(std::unique_ptr<pg::Pool> pool,
                            pg::Pool::Create({.dsn = config->dsn,
                                              .size = static_cast<int>(config->pool_size),
                                              .statement_timeout = config->statement_timeout}));
        pg::Pool& pool_ref = module->Own(std::move(pool));
        platform.set_pg(&pool_ref);
        platform.services().AddCheck("pg", [&pool_ref] { return pool_ref.Ping(); });
        return module;
      },
  };
}

ModuleSpec RedisModule() {
  auto config = std::make_shared<RedisConfig>();
  return {
      .name = "redis",
      .is_target = false,
      .declare_flags =
          [config](FlagSet& flags) {
            flags.Add("redis_url", &config->url,
                      "Redis address: redis://[:password@]host:port[/db].", NonEmpty());
            flags.Add("redis_pool_size", &config->pool_size,
                      "Most Redis connections this process opens.", InRange(1, 1000));
            flags.Add("redis_command_timeout", &config->command_timeout,
                      "Time limit of one Redis command (blocking reads add their own).",
                      PositiveDuration());
          },
      .create = [config](Platform& platform) -> absl::StatusOr<std::unique_ptr<Module>> {
        auto module = std::make_unique<OwningModule>();
        SB_ASSIGN_OR_RETURN(std::unique_ptr<redis::Client> client,
                            redis::Client::Create({.url = config->url,
                                                   .pool_size = static_cast<int>(config->pool_size),
                                                   .command_timeout = config->command_timeout}));
        redis::Client& client_ref = module->Own(std::move(client));
        platform.set_redis(&client_ref);
        platform.services().AddCheck("redis", [&client_ref] { return client_ref.Ping(); });
        return module;
      },
  };
}

}  // namespace sb::app
