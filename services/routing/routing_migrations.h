#pragma once

#include "libs/pg/migration.h"

namespace sb::routing {

// The files of services/routing/migrations/, embedded at build time (sb_migrations in CMake).
const pg::MigrationSet& RoutingMigrations();

}  // namespace sb::routing
