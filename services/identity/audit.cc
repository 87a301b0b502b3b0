#include "services/identity/audit.h"

#include "libs/common/ids.h"
#include "libs/pg/fields.h"

namespace sb::identity {

void WriteAudit(pqxx::work& tx, const AuditActor& actor, const ClientAddress& client,
                const AuditRecord& record) {
  tx.exec_params(
      "INSERT INTO identity.audit_log (tenant_id, id, actor_user_id, actor_api_key_id, "
      "actor_display_name, action, target_type, target_id, target_display_name, result, "
      "client_ip, user_agent, changes) VALUES ($1, $2, $3, $4, "
      "COALESCE(NULLIF($5, ''), (SELECT display_name FROM identity.users WHERE id = $3::uuid), "
      "''), $6, $7, $8, $9, $10, $11, $12, $13::jsonb)",
      record.tenant_id, NewUuid(), pg::NullIfEmpty(actor.user_id),
      pg::NullIfEmpty(actor.api_key_id), actor.display_name, record.action, record.target_type,
      record.target_id, record.target_display_name, record.result, client.ip, client.user_agent,
      record.changes.dump());
}

void AddChange(nlohmann::json& changes, const std::string& field, const nlohmann::json& old_value,
               const nlohmann::json& new_value) {
  if (old_value == new_value) return;
  changes[field] = {{"old", old_value}, {"new", new_value}};
}

}  // namespace sb::identity
