#pragma once

#include "libs/pg/migration.h"

namespace sb::org {

// The files of services/org/migrations/, embedded at build time (sb_migrations in CMake).
const pg::MigrationSet& OrgMigrations();

}  // namespace sb::org
