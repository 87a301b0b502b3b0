#pragma once

#include "libs/pg/migration.h"

namespace sb::media {

// The files of services/media/migrations/, embedded at build time (sb_migrations in CMake).
const pg::MigrationSet& MediaMigrations();

}  // namespace sb::media
