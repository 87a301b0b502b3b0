#include "services/identity/key_ring.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "spdlog/spdlog.h"

namespace sb::identity {
namespace {

absl::Time FromEpoch(const pqxx::field& f) {
  if (f.is_null()) return absl::InfiniteFuture();
  return absl::FromUnixMicros(static_cast<int64_t>(f.as<double>() * 1e6));
}

struct KeyRow {
  std::string key_id, private_pem;
  PublicSigningKey pub;
};

}  // namespace

KeyRing::KeyRing(pg::Pool& pg, const Clock& clock, auth::JwtVerifier& verifier,
                 absl::Duration token_lifetime, const Sealer& sealer, absl::Duration rotate_after)
    : pg_(pg),
      clock_(clock),
      verifier_(verifier),
      token_lifetime_(token_lifetime),
      rotate_after_(rotate_after),
      sealer_(sealer) {}

absl::Status KeyRing::Load() { return LoadOnce(/*retried=*/false); }

absl::Status KeyRing::LoadOnce(bool retried) {
  const absl::Time now = clock_.Now();
  absl::StatusOr<std::vector<KeyRow>> rows = pg_.Run([&](pqxx::work& tx)
                                                         -> absl::StatusOr<std::vector<KeyRow>> {
    // One replica at a time decides about creating or rotating keys.
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('identity.signing_keys'))");
    const double now_s = absl::ToUnixMicros(now) / 1e6;
    const double rotate_s = absl::ToDoubleSeconds(rotate_after_);
    const double announce_s = std::min(absl::ToDoubleSeconds(absl::Hours(24)), rotate_s / 2);
    auto generate = [&](int state) -> absl::Status {
      absl::StatusOr<auth::Ed25519Key> key = auth::Ed25519Key::Generate();
      if (!key.ok()) return key.status();
      absl::StatusOr<std::string> private_pem = key->PrivatePem();
      if (!private_pem.ok()) return private_pem.status();
      tx.exec_params(
          "INSERT INTO identity.signing_keys (key_id, algorithm, private_pem, public_pem, state, "
          "created_at, activated_at) VALUES ($1, 'EdDSA', $2, $3, $4::smallint, to_timestamp($5), "
          "CASE WHEN $4::smallint = 2 THEN to_timestamp($5) END)",
          NewUuid().substr(0, 8) + absl::StrCat(absl::ToUnixSeconds(now)),
          sealer_.Seal(*private_pem), key->PublicPem(), state, now_s);
      return absl::OkStatus();
    };
    auto retire_active = [&] {
      // The retired key verifies until the last token it signed has expired.
      tx.exec_params(
          "UPDATE identity.signing_keys SET state = 3, not_after = to_timestamp($1) "
          "WHERE state = 2",
          now_s + absl::ToDoubleSeconds(token_lifetime_ + absl::Minutes(5)));
    };
    pqxx::result active = tx.exec_params(
        "SELECT extract(epoch FROM activated_at)::float8 FROM identity.signing_keys "
        "WHERE state = 2 ORDER BY activated_at DESC LIMIT 1");
    pqxx::result next = tx.exec("SELECT key_id FROM identity.signing_keys WHERE state = 1 LIMIT 1");
    if (active.empty()) {
      absl::Status s = generate(2);
      if (!s.ok()) return s;
    } else {
      const double age = now_s - active[0][0].as<double>();
      if (age >= rotate_s) {
        // Rotate: the announced next key (every verifier has had it for a day) starts signing.
        retire_active();
        if (next.empty()) {
          absl::Status s = generate(2);
          if (!s.ok()) return s;
        } else {
          tx.exec_params(
              "UPDATE identity.signing_keys SET state = 2, activated_at = to_timestamp($2) "
              "WHERE key_id = $1",
              next[0][0].as<std::string>(), now_s);
        }
      } else if (age >= rotate_s - announce_s && next.empty()) {
        absl::Status s = generate(1);
        if (!s.ok()) return s;
      }
    }
    tx.exec_params(
        "DELETE FROM identity.signing_keys WHERE state = 3 AND not_after < to_timestamp($1)",
        now_s);
    std::vector<KeyRow> out;
    for (const auto& row : tx.exec(
             "SELECT key_id, private_pem, public_pem, state, "
             "extract(epoch FROM created_at)::float8, extract(epoch FROM not_after)::float8 "
             "FROM identity.signing_keys ORDER BY state = 2 DESC, activated_at DESC NULLS LAST")) {
      KeyRow k;
      k.key_id = row[0].as<std::string>();
      k.private_pem = row[1].as<std::string>();
      k.pub = {k.key_id,         "EdDSA",           row[2].as<std::string>(),
               row[3].as<int>(), FromEpoch(row[4]), FromEpoch(row[5])};
      out.push_back(std::move(k));
    }
    return out;
  });
  if (!rows.ok()) return rows.status();

  std::vector<auth::VerificationKey> verification;
  std::optional<auth::JwtSigner> signer;
  std::vector<PublicSigningKey> pub;
  std::vector<std::string> unreadable;
  for (const KeyRow& row : *rows) {
    absl::StatusOr<std::string> pem = sealer_.Open(row.private_pem);
    absl::StatusOr<auth::Ed25519Key> parsed =
        pem.ok() ? auth::Ed25519Key::FromPrivatePem(*pem) : pem.status();
    if (!parsed.ok()) {
      // Sealed with a key this process does not have (a lost or changed --secrets_key).
      spdlog::error("identity: signing key {} cannot be read: {}", row.key_id,
                    parsed.status().ToString());
      unreadable.push_back(row.key_id);
      continue;
    }
    const auth::Ed25519Key& key = *parsed;
    verification.push_back({row.key_id, key.PublicOnly(), row.pub.not_after});
    if (row.pub.state == 2 && !signer) signer.emplace(row.key_id, key);
    pub.push_back(row.pub);
  }
  if (!signer) {
    if (unreadable.empty() || retried)
      return absl::InternalError("no active signing key after Load");
    // Retire what cannot be read (tokens it signed stop verifying: their users log in again) and
    // let the next Load make a fresh key.
    SB_RETURN_IF_ERROR(pg_.Run([&](pqxx::work& tx) {
      tx.exec_params(
          "UPDATE identity.signing_keys SET state = 3, not_after = to_timestamp($2) "
          "WHERE key_id = ANY($1::text[])",
          pg::PgArray(unreadable), pg::ToEpoch(now));
      return absl::OkStatus();
    }));
    return LoadOnce(/*retried=*/true);
  }
  verifier_.SetKeys(std::move(verification));
  std::lock_guard lock(mu_);
  signer_ = std::move(signer);
  public_ = std::move(pub);
  return absl::OkStatus();
}

absl::StatusOr<std::string> KeyRing::Sign(const auth::AccessClaims& claims) const {
  std::lock_guard lock(mu_);
  if (!signer_) return absl::FailedPreconditionError("signing keys not loaded");
  return signer_->Sign(claims);
}

std::vector<PublicSigningKey> KeyRing::PublicKeys() const {
  std::lock_guard lock(mu_);
  return public_;
}

}  // namespace sb::identity
