#pragma once

// How libpqxx's exceptions become absl::Status. Pool::Run applies this to everything that its
// function or the transaction throws; code that drives libpqxx outside Run (for example a COPY
// stream) uses it in its own catch block so that exceptions never leave libs/pg adapters.
//
//   SQLSTATE / libpqxx exception                              code
//   23505 unique_violation, 23P01 exclusion_violation          AlreadyExists
//   23503 foreign key, 23514 check, 23502 not null, 23001      FailedPrecondition
//   40001 serialization failure, 40P01 deadlock, 40xxx         Aborted (retry the transaction)
//   class 08 / broken_connection, in_doubt_error, 53300,
//     57P01 admin shutdown, 57P02 crash shutdown, 57P03        Unavailable (retry later)
//   57014 statement timeout, 55P03 lock timeout                DeadlineExceeded
//   anything else (syntax errors, 22xxx data errors, ...)     Internal
//
// Constraint violations are FailedPrecondition rather than InvalidArgument: the row refers to
// state that is not there (or is not allowed by the current data), and the caller cannot fix it
// by retrying the same request; services are expected to validate input themselves and answer
// InvalidArgument naming the field before the database ever sees it.
//
// Messages never contain SQL: AlreadyExists/FailedPrecondition carry the server's one-line
// primary message (it names the constraint, e.g. `duplicate key value violates unique constraint
// "users_email_key"`), DETAIL lines (which hold row values) are dropped, and Internal says only
// "database error (SQLSTATE xxxxx)". The full server message is logged with spdlog instead.
// in_doubt_error (the connection broke during COMMIT) is Unavailable, but the transaction may
// have committed: Run never retries it, and callers should only retry idempotent work.
//
// Thread-safe (stateless).

#include <exception>
#include <string>

#include "absl/status/status.h"

namespace sb::pg {

// Maps an exception thrown by libpqxx (or by code running inside a transaction) to a status.
// Exceptions that do not come from libpqxx are Internal.
absl::Status StatusFromException(const std::exception& e);

// Maps a SQLSTATE and the server's message (as in pqxx::sql_error::what()) to a status; used by
// StatusFromException and exposed for tests and for code that reads SQLSTATEs itself.
absl::Status StatusFromSqlState(const std::string& sqlstate, const std::string& server_message);

}  // namespace sb::pg
