#include "libs/pg/migrate.h"

#include <set>
#include <string>

#include <spdlog/spdlog.h>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace sb::pg {
namespace {

absl::Status CheckSet(const MigrationSet& set) {
  if (set.schema.empty()) return absl::FailedPreconditionError("migration set has no schema");
  for (size_t i = 1; i < set.migrations.size(); ++i) {
    const Migration& prev = set.migrations[i - 1];
    const Migration& m = set.migrations[i];
    if (m.version <= prev.version) {
      return absl::FailedPreconditionError(
          absl::StrCat("schema ", std::string(set.schema), ": migration ", std::string(m.name),
                       " (version ", m.version, ") does not come after ", std::string(prev.name),
                       " (version ", prev.version, "): versions must be strictly increasing"));
    }
  }
  return absl::OkStatus();
}

// Starts a migration transaction: no statement timeout, and the schema's migration lock, held
// until the transaction ends.
void BeginMigrationTx(pqxx::work& tx, const std::string& schema) {
  tx.exec("SET LOCAL statement_timeout = 0");
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('sb_schema_migrations'), hashtext($1))",
                 schema);
}

}  // namespace

absl::Status Migrate(Pool& pool, const MigrationSet& set) {
  SB_RETURN_IF_ERROR(CheckSet(set));
  const std::string schema(set.schema);

  std::string table;  // quoted <schema>.schema_migrations
  SB_ASSIGN_OR_RETURN(
      std::set<int> applied, pool.Run([&](pqxx::work& tx) -> absl::StatusOr<std::set<int>> {
        BeginMigrationTx(tx, schema);
        table = tx.quote_name(schema) + ".schema_migrations";
        // Checked first so that a role without CREATE on the database can still run against a
        // schema an administrator made for it.
        if (tx.exec_params("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema).empty()) {
          tx.exec("CREATE SCHEMA " + tx.quote_name(schema));
        }
        tx.exec("CREATE TABLE IF NOT EXISTS " + table +
                " (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())");
        std::set<int> versions;
        for (const auto& row : tx.exec("SELECT version FROM " + table)) {
          versions.insert(row[0].as<int>());
        }
        return versions;
      }));

  std::set<int> known;
  for (const Migration& m : set.migrations) known.insert(m.version);
  for (int version : applied) {
    if (known.count(version) == 0) {
      spdlog::warn("pg: schema {} has migration {} applied, which this binary does not know",
                   schema, version);
    }
  }

  for (const Migration& m : set.migrations) {
    if (applied.count(m.version) != 0) continue;
    bool ran = false;
    absl::Status status = pool.Run([&](pqxx::work& tx) -> absl::Status {
      BeginMigrationTx(tx, schema);
      ran = false;
      // Another process may have applied it while we waited for the lock.
      if (!tx.exec_params("SELECT 1 FROM " + table + " WHERE version = $1", m.version).empty()) {
        return absl::OkStatus();
      }
      tx.exec("SET LOCAL search_path TO " + tx.quote_name(schema));
      tx.exec(std::string(m.sql));
      tx.exec_params("INSERT INTO " + table + " (version, name) VALUES ($1, $2)", m.version,
                     std::string(m.name));
      ran = true;
      return absl::OkStatus();
    });
    if (!status.ok()) {
      spdlog::error("pg: schema {}: migration {} failed: {}", schema, std::string(m.name),
                    status.ToString());
      return absl::Status(status.code(),
                          absl::StrCat("schema ", schema, ": migration ", std::string(m.name),
                                       " failed: ", status.message()));
    }
    if (ran) spdlog::info("pg: schema {}: applied migration {}", schema, std::string(m.name));
  }
  return absl::OkStatus();
}

}  // namespace sb::pg
