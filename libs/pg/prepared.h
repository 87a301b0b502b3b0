#pragma once

// Prepared statements: SQL that a hot path runs many times, parsed and planned by PostgreSQL once
// per connection instead of on every call.
//
//   const std::string& sql = ...;  // the same text every time (a static)
//   pqxx::result r = pg::ExecPrepared(tx, "org_resolve_number", sql, number);
//
// libpqxx (6.4) registers the definition on the connection and prepares it on the server the
// first time the connection executes it (one extra round trip, once); defining the same name
// with the same text again is a no-op, and a connection the pool drops takes its statements with
// it. Names are global per connection: prefix them with the service ("org_...") and never give
// one name two texts (libpqxx throws, which Pool::Run reports as Internal).
//
// PostgreSQL plans a prepared statement for its parameters' values the first five times and may
// then switch to one generic plan: keep prepared statements free of "$n = '' OR ..." filters
// whose best plan depends on the values (write separate statements instead).
//
// Works in any transaction type, including Pool::Read's nontransaction; throws what libpqxx
// throws (Pool::Run and Pool::Read map it).

#include <string>
#include <utility>

#include <pqxx/pqxx>

namespace sb::pg {

template <typename... Args>
pqxx::result ExecPrepared(pqxx::transaction_base& tx, const std::string& name,
                          const std::string& sql, Args&&... args) {
  tx.conn().prepare(name, sql);
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

}  // namespace sb::pg
