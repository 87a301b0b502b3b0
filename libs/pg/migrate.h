#pragma once

// Migrate: brings a service's PostgreSQL schema up to date at start-up.
//
// Creates the schema when it is missing, and in it the table that records what was applied:
//   <schema>.schema_migrations(version integer PRIMARY KEY, name text, applied_at timestamptz)
// The history lives in the schema it describes (not in one shared table) so that a service owns
// everything under its schema and dropping the schema forgets its history with it.
//
// Then applies each migration whose version is not recorded yet, in version order, each in its
// own transaction with search_path set to the schema (unqualified names land in it), recording
// the version and file name in the same transaction. Every transaction first takes
// pg_advisory_xact_lock(hashtext('sb_schema_migrations'), hashtext(<schema>)) and re-reads the
// history, so processes that start at the same time apply each migration exactly once: the
// others wait for the lock and then find it recorded. Migration transactions run without
// statement_timeout (an index build, or the wait for another process's lock, may be slow).
// Running it again applies nothing.
//
// Status codes:
//   OK                  everything in `set` is applied (now or before).
//   FailedPrecondition  `set` has no schema, or its versions are not strictly increasing;
//                       checked before the database is touched.
//   otherwise           a Pool::Run status (Unavailable when the database is down, Internal for
//                       a SQL error in a migration, ...) whose message starts with
//                       "schema <schema>: migration <file name> failed: " when a migration
//                       failed. Migrations before it stay applied; it and later ones do not.
//
// Versions recorded in the database but missing from `set` (a binary older than the schema) are
// logged, not refused. Migrations must not COMMIT, change the session (SET without LOCAL), or use
// statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY).
//
// Thread-safe, and safe across processes, as long as everyone uses Migrate.

#include "absl/status/status.h"
#include "libs/pg/migration.h"
#include "libs/pg/pool.h"

namespace sb::pg {

absl::Status Migrate(Pool& pool, const MigrationSet& set);

}  // namespace sb::pg
