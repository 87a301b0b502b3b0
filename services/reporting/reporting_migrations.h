#pragma once

#include "libs/pg/migration.h"

namespace sb::reporting {

// The files of services/reporting/migrations/, embedded at build time (sb_migrations in CMake).
const pg::MigrationSet& ReportingMigrations();

}  // namespace sb::reporting
