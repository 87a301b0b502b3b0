#pragma once

// The contacts' SQL that more than one place runs: reading contact rows into protos, and the
// lookup by number behind LookupContacts (which tests/bench/contact_lookup_bench.cc measures, so
// that the figures are those of the service's query). Tables: migrations/0003_contacts.sql.
//
// Functions run in the caller's transaction and throw what libpqxx throws (Pool::Run maps it).

#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "switchboard/org/v1/org_resources.pb.h"

namespace sb::org {

// The SELECT list of a contact (table alias `c`) that ContactFromRow reads; the phones come from
// org.contact_phones in their order.
extern const char kContactColumns[];
::switchboard::org::v1::Contact ContactFromRow(const pqxx::row& row);

struct NumberLookup {
  std::string tenant_id;
  std::string number;  // E.164
  // When set: that project's contacts and plain ones, the project's first. Otherwise all.
  std::string project_id;
  int limit = 5;
  // Owners whose contacts may be returned (UUIDs); nullopt: every owner.
  std::optional<std::vector<std::string>> owner_user_ids;
};

// The contacts of the tenant with a phone number equal to `lookup.number`, best first: the
// project's before plain ones (when a project is given), then the most recently updated. Uses
// contact_phones_number_idx and the contacts' primary key; a prepared statement per connection.
std::vector<::switchboard::org::v1::Contact> LookupContactsByNumber(pqxx::transaction_base& tx,
                                                                    const NumberLookup& lookup);

}  // namespace sb::org
