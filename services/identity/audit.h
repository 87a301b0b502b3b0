#pragma once

// The audit log: who did what to which user, role, PIN, key or tenant, when and from where.
// Entries are written inside the transaction of the change they record, so a change and its
// entry commit together. Secrets never go into `changes`.

#include <string>

#include <pqxx/pqxx>

#include "libs/auth/principal.h"
#include "nlohmann/json.hpp"

namespace sb::identity {

// Where a request came from (the gateway forwards the HTTP client's address and user agent);
// IdentityService::ClientOf bounds both in length.
struct ClientAddress {
  std::string ip;
  std::string user_agent;
};

struct AuditRecord {
  std::string tenant_id;  // the tenant the entry belongs to (the target's)
  std::string action;     // "user.create", "login.failed", ...
  std::string target_type;
  std::string target_id;
  std::string target_display_name;
  int result = 1;  // AuditResult: 1 success, 2 denied, 3 failed
  nlohmann::json changes = nlohmann::json::object();
};

// The acting principal (or none: the platform itself, or an unauthenticated login attempt).
struct AuditActor {
  std::string user_id;
  std::string api_key_id;
  std::string display_name;
  static AuditActor Of(const auth::Principal& p) { return {p.user_id, p.api_key_id, ""}; }
};

// Inserts one entry. Throws what libpqxx throws (inside Pool::Run that becomes a status).
void WriteAudit(pqxx::work& tx, const AuditActor& actor, const ClientAddress& client,
                const AuditRecord& record);

// {"field": {"old": a, "new": b}} when a != b.
void AddChange(nlohmann::json& changes, const std::string& field, const nlohmann::json& old_value,
               const nlohmann::json& new_value);

}  // namespace sb::identity
