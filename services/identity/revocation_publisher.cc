#include "services/identity/revocation_publisher.h"

#include <vector>

#include "spdlog/spdlog.h"

namespace sb::identity {

RevocationPublisher::RevocationPublisher(pg::Pool& pg, redis::Client* redis, const Clock& clock,
                                         std::string key)
    : pg_(pg), redis_(redis), clock_(clock), key_(std::move(key)) {}

void RevocationPublisher::Record(pqxx::work& tx, auth::Revocation::Kind kind,
                                 const std::string& subject_id, std::optional<absl::Time> at) {
  if (at) {
    tx.exec_params(
        "INSERT INTO identity.revocations (kind, subject_id, revoked_at) VALUES ($1, $2, "
        "to_timestamp($3::float8 / 1000))",
        static_cast<int>(kind), subject_id, absl::ToUnixMillis(*at));
    return;
  }
  tx.exec_params("INSERT INTO identity.revocations (kind, subject_id) VALUES ($1, $2)",
                 static_cast<int>(kind), subject_id);
}

absl::Status RevocationPublisher::Publish() {
  if (redis_ == nullptr) return absl::OkStatus();
  std::lock_guard lock(publish_mu_);
  struct Row {
    int64_t id;
    auth::Revocation revocation;
  };
  absl::StatusOr<std::vector<Row>> rows =
      pg_.Run([&](pqxx::work& tx) -> absl::StatusOr<std::vector<Row>> {
        std::vector<Row> out;
        for (const auto& r : tx.exec(
                 "SELECT id, kind, subject_id, floor(extract(epoch FROM revoked_at) * 1000)::int8 "
                 "FROM identity.revocations WHERE NOT published ORDER BY id LIMIT 1000")) {
          out.push_back({r[0].as<int64_t>(),
                         {static_cast<auth::Revocation::Kind>(r[1].as<int>()),
                          r[2].as<std::string>(), absl::FromUnixMillis(r[3].as<int64_t>())}});
        }
        return out;
      });
  if (!rows.ok()) return rows.status();
  for (const Row& row : *rows) {
    if (absl::Status s = auth::RedisRevocationList::Publish(*redis_, row.revocation, {.key = key_});
        !s.ok()) {
      return s;
    }
    absl::Status marked = pg_.Run([&](pqxx::work& tx) {
      tx.exec_params("UPDATE identity.revocations SET published = true WHERE id = $1", row.id);
      return absl::OkStatus();
    });
    if (!marked.ok()) return marked;
  }
  // Published rows are kept a day for the record, then dropped.
  return pg_.Run([&](pqxx::work& tx) {
    tx.exec(
        "DELETE FROM identity.revocations WHERE published AND revoked_at < now() - "
        "interval '1 day'");
    return absl::OkStatus();
  });
}

}  // namespace sb::identity
