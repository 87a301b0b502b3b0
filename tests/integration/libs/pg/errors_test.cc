// The SQLSTATE table for the codes that the live tests cannot provoke reliably (a fast shutdown
// may surface as a broken connection rather than 57P01, for example). No database needed.

#include "libs/pg/errors.h"

#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <pqxx/except>

#include "absl/status/status.h"
#include "absl/strings/match.h"

namespace sb::pg {
namespace {

absl::StatusCode CodeOf(const std::string& sqlstate) {
  return StatusFromSqlState(sqlstate, "ERROR:  something\nDETAIL:  Key (email)=(a@b.c)").code();
}

TEST_CASE("StatusFromSqlState maps SQLSTATEs to what the caller should do", "[pg]") {
  CHECK(CodeOf("23505") == absl::StatusCode::kAlreadyExists);
  CHECK(CodeOf("23P01") == absl::StatusCode::kAlreadyExists);
  CHECK(CodeOf("23503") == absl::StatusCode::kFailedPrecondition);
  CHECK(CodeOf("23514") == absl::StatusCode::kFailedPrecondition);
  CHECK(CodeOf("23502") == absl::StatusCode::kFailedPrecondition);
  CHECK(CodeOf("40001") == absl::StatusCode::kAborted);
  CHECK(CodeOf("40P01") == absl::StatusCode::kAborted);
  CHECK(CodeOf("40003") == absl::StatusCode::kUnavailable);
  CHECK(CodeOf("57P01") == absl::StatusCode::kUnavailable);
  CHECK(CodeOf("57P03") == absl::StatusCode::kUnavailable);
  CHECK(CodeOf("08006") == absl::StatusCode::kUnavailable);
  CHECK(CodeOf("53300") == absl::StatusCode::kUnavailable);
  CHECK(CodeOf("57014") == absl::StatusCode::kDeadlineExceeded);
  CHECK(CodeOf("55P03") == absl::StatusCode::kDeadlineExceeded);
  CHECK(CodeOf("42601") == absl::StatusCode::kInternal);
  CHECK(CodeOf("22P02") == absl::StatusCode::kInternal);
  CHECK(CodeOf("") == absl::StatusCode::kInternal);
}

TEST_CASE("StatusFromSqlState keeps row values out of the message", "[pg]") {
  const absl::Status status = StatusFromSqlState(
      "23505",
      "ERROR:  duplicate key value violates unique constraint \"users_email_key\"\n"
      "DETAIL:  Key (email)=(a@b.c) already exists.\n");
  CHECK(status == absl::AlreadyExistsError(
                      "duplicate key value violates unique constraint \"users_email_key\""));
}

TEST_CASE("StatusFromException maps libpqxx's exception classes", "[pg]") {
  CHECK(StatusFromException(pqxx::broken_connection("gone")).code() ==
        absl::StatusCode::kUnavailable);
  CHECK(StatusFromException(pqxx::in_doubt_error("commit?")).code() ==
        absl::StatusCode::kUnavailable);
  CHECK(StatusFromException(pqxx::serialization_failure("retry")).code() ==
        absl::StatusCode::kAborted);
  CHECK(StatusFromException(pqxx::deadlock_detected("retry")).code() == absl::StatusCode::kAborted);
  CHECK(StatusFromException(pqxx::unique_violation("dup", "INSERT ...", "23505")).code() ==
        absl::StatusCode::kAlreadyExists);
  const absl::Status other = StatusFromException(std::runtime_error("SELECT secret"));
  CHECK(other.code() == absl::StatusCode::kInternal);
  CHECK_FALSE(absl::StrContains(other.message(), "secret"));
}

}  // namespace
}  // namespace sb::pg
