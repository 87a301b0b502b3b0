#pragma once

#include "libs/pg/migration.h"

namespace sb::identity {

// The files of services/identity/migrations/, embedded at build time (sb_migrations in CMake).
const pg::MigrationSet& IdentityMigrations();

}  // namespace sb::identity
