#pragma once

// Infrastructure modules that targets depend on by name: "pg" (the PostgreSQL pool, --pg_dsn) and
// "redis" (the Redis client, --redis_url). Each registers a dependency check of the same name for
// health. They connect lazily: a process starts while its database is down and reports
// NOT_SERVING until it comes up.

#include "libs/app/module.h"

namespace sb::app {

ModuleSpec PgModule();
ModuleSpec RedisModule();

}  // namespace sb::app
