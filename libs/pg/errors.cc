#include "libs/pg/errors.h"

#include <string>

#include <spdlog/spdlog.h>
#include <pqxx/except>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace sb::pg {
namespace {

// The server's primary message: the first line of what(), without libpq's "ERROR:  " prefix.
// Later lines (DETAIL, HINT, LINE n: <sql>) can hold row values and SQL, so they stay out.
std::string PrimaryMessage(const std::string& what) {
  absl::string_view text(what);
  text = text.substr(0, text.find('\n'));
  for (absl::string_view prefix : {"ERROR:", "FATAL:", "PANIC:"}) {
    if (absl::ConsumePrefix(&text, prefix)) break;
  }
  return std::string(absl::StripAsciiWhitespace(text));
}

// The log line carries the whole server message on one line.
std::string OneLine(const std::string& text) {
  std::string out(absl::StripAsciiWhitespace(text));
  for (char& c : out) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return out;
}

}  // namespace

absl::Status StatusFromSqlState(const std::string& sqlstate, const std::string& server_message) {
  const absl::string_view state(sqlstate);
  const absl::string_view cls = state.substr(0, 2);
  if (state == "23505" || state == "23P01") {
    spdlog::debug("pg: SQLSTATE {}: {}", sqlstate, OneLine(server_message));
    return absl::AlreadyExistsError(PrimaryMessage(server_message));
  }
  if (cls == "23") {
    spdlog::debug("pg: SQLSTATE {}: {}", sqlstate, OneLine(server_message));
    return absl::FailedPreconditionError(PrimaryMessage(server_message));
  }
  if (state == "40003") {
    spdlog::warn("pg: SQLSTATE {}: {}", sqlstate, OneLine(server_message));
    return absl::UnavailableError("database: statement completion unknown");
  }
  if (cls == "40") {
    spdlog::debug("pg: SQLSTATE {}: {}", sqlstate, OneLine(server_message));
    return absl::AbortedError(PrimaryMessage(server_message));
  }
  if (state == "57014" || state == "55P03") {
    spdlog::warn("pg: SQLSTATE {}: {}", sqlstate, OneLine(server_message));
    return absl::DeadlineExceededError(state == "57014" ? "database statement timed out"
                                                        : "database lock wait timed out");
  }
  // 08: connection exceptions; 53: out of connections, memory or disk; 57P01-57P03: the server
  // is shutting down, crashed, or not accepting connections yet.
  if (cls == "08" || cls == "53" || state == "57P01" || state == "57P02" || state == "57P03") {
    spdlog::warn("pg: SQLSTATE {}: {}", sqlstate, OneLine(server_message));
    return absl::UnavailableError(absl::StrCat("database unavailable (SQLSTATE ", sqlstate, ")"));
  }
  spdlog::error("pg: SQLSTATE {}: {}", sqlstate.empty() ? "none" : sqlstate,
                OneLine(server_message));
  if (sqlstate.empty()) return absl::InternalError("database error");
  return absl::InternalError(absl::StrCat("database error (SQLSTATE ", sqlstate, ")"));
}

absl::Status StatusFromException(const std::exception& e) {
  // Most specific classes first: too_many_connections derives from broken_connection, and
  // serialization_failure, deadlock_detected and statement_completion_unknown from
  // transaction_rollback. libpqxx 6 gives the 40xxx classes no SQLSTATE, so they map by type.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    spdlog::warn("pg: connection lost during COMMIT, outcome unknown: {}", OneLine(e.what()));
    return absl::UnavailableError(
        "database connection lost during COMMIT; the transaction may or may not have committed");
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    spdlog::warn("pg: connection failed: {}", OneLine(e.what()));
    return absl::UnavailableError("database connection failed");
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) {
    return StatusFromSqlState("40001", e.what());
  }
  if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
    return StatusFromSqlState("40P01", e.what());
  }
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
    return StatusFromSqlState("40003", e.what());
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return StatusFromSqlState("40000", e.what());
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr) {
    return StatusFromSqlState(sql->sqlstate(), sql->what());
  }
  // libpqxx usage and conversion errors, and whatever the function inside the transaction threw:
  // bugs in our code.
  spdlog::error("pg: exception in transaction: {}", OneLine(e.what()));
  return absl::InternalError("database client error");
}

}  // namespace sb::pg
