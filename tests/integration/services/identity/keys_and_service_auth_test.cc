// Signing-key rotation (KeyRing) and libs/auth's identity clients (ServiceAuth) as another
// service uses them: keys fetched over gRPC, API keys introspected, revocations followed.

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "libs/auth/identity_clients.h"
#include "libs/common/fake_clock.h"
#include "libs/common/ids.h"
#include "libs/testing/eventually.h"
#include "services/identity/crypto/sealer.h"
#include "services/identity/crypto/totp.h"
#include "services/identity/key_ring.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

std::string KidOf(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  REQUIRE(parts.size() == 3);
  std::string header;
  REQUIRE(absl::WebSafeBase64Unescape(parts[0], &header));
  const size_t at = header.find("\"kid\":\"");
  REQUIRE(at != std::string::npos);
  return header.substr(at + 7, header.find('"', at + 7) - at - 7);
}

auth::AccessClaims Claims(absl::Time now) {
  auth::AccessClaims c;
  c.iss = "switchboard-identity";
  c.aud = "switchboard";
  c.sub = NewUuid();
  c.tid = NewUuid();
  c.jti = NewUuid();
  c.iat = now;
  c.nbf = now;
  c.exp = now + absl::Hours(24 * 60);  // outlives the rotation below
  return c;
}

TEST_CASE("KeyRing announces the next key a day ahead, rotates, and retires the old one",
          "[keys]") {
  IdentityFixture f;
  FakeClock clock(absl::Now());
  auth::JwtVerifier verifier({.issuer = "switchboard-identity", .audience = "switchboard"}, clock);
  const Sealer sealer = *Sealer::FromBase64Key(f.options().secrets_key);
  KeyRing ring(f.pg(), clock, verifier, absl::Minutes(15), sealer, absl::Hours(24 * 30));
  REQUIRE(ring.Load().ok());
  std::vector<PublicSigningKey> keys = ring.PublicKeys();
  REQUIRE(keys.size() == 1);
  const std::string first = keys[0].key_id;
  absl::StatusOr<std::string> old_token = ring.Sign(Claims(clock.Now()));
  REQUIRE(old_token.ok());
  CHECK(KidOf(*old_token) == first);

  clock.Advance(absl::Hours(24 * 29 + 12));
  REQUIRE(ring.Load().ok());
  keys = ring.PublicKeys();
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].key_id == first);
  CHECK(keys[0].state == 2);
  CHECK(keys[1].state == 1);  // announced, not signing
  const std::string next = keys[1].key_id;
  CHECK(KidOf(*ring.Sign(Claims(clock.Now()))) == first);

  clock.Advance(absl::Hours(13));
  REQUIRE(ring.Load().ok());
  keys = ring.PublicKeys();
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].key_id == next);
  CHECK(keys[0].state == 2);
  CHECK(keys[1].key_id == first);
  CHECK(keys[1].state == 3);
  CHECK(KidOf(*ring.Sign(Claims(clock.Now()))) == next);
  CHECK(verifier.Verify(*old_token).ok());  // the retired key still verifies what it signed

  clock.Advance(absl::Minutes(21));
  REQUIRE(ring.Load().ok());
  CHECK(ring.PublicKeys().size() == 1);
  absl::StatusOr<auth::AccessClaims> gone = verifier.Verify(*old_token);
  CHECK(absl::IsUnauthenticated(gone.status()));
}

TEST_CASE("ServiceAuth authenticates identity's tokens and API keys from another service",
          "[keys][service_auth]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
  v1::LoginResponse login = f.Login("acme", "anna");
  REQUIRE(login.status() == v1::LoginResponse::STATUS_OK);
  const std::string token = login.tokens().access_token();

  SystemClock clock;
  auto identity = [&f] { return f.channel(); };
  // No org in this test: scoped decisions would be Unavailable; these checks need none.
  auto org = [] { return grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()); };
  auth::ServiceAuth service_auth({.identity = identity,
                                  .org = org,
                                  .redis = f.redis(),
                                  .clock = clock,
                                  .internal_token = f.internal_token(),
                                  .revocations = {.key = f.revocation_key()}});
  REQUIRE(service_auth.Start().ok());
  REQUIRE(testing::Eventually([&] { return service_auth.authenticator().Authenticate(token).ok(); },
                              absl::Seconds(5)));
  absl::StatusOr<auth::Principal> p = service_auth.authenticator().Authenticate(token);
  REQUIRE(p.ok());
  CHECK(p->tenant_id == acme.id);
  CHECK(p->user_id == agent);
  CHECK(p->permissions.Has(auth::perm::kCallsRead, auth::Scope::kOwn));
  CHECK_FALSE(p->permissions.HasAny(auth::perm::kUsersManage));
  CHECK(service_auth.authorizer()
            .Check(*p, auth::perm::kCallsRead,
                   {.type = "call", .tenant_id = acme.id, .owner_user_id = agent})
            .ok());
  CHECK(absl::IsNotFound(service_auth.authorizer().Check(
      *p, auth::perm::kCallsRead,
      {.type = "call", .tenant_id = NewUuid(), .owner_user_id = agent})));
  std::string tampered = token;
  const size_t mid = token.rfind('.') + 20;  // a character inside the signature
  tampered[mid] = tampered[mid] == 'A' ? 'B' : 'A';
  CHECK(absl::IsUnauthenticated(service_auth.authenticator().Authenticate(tampered).status()));

  SECTION("API keys are resolved through identity's IntrospectToken") {
    v1::CreateApiKeyRequest req;
    req.mutable_api_key()->set_name("CRM sync");
    auto* g = req.mutable_api_key()->add_permissions();
    g->set_permission("contacts.access");
    g->set_scope(switchboard::common::v1::SCOPE_TENANT);
    v1::CreateApiKeyResponse key;
    SB_REQUIRE_GRPC_OK(f.stub().CreateApiKey(f.Ctx(acme.admin_token).get(), req, &key));
    absl::StatusOr<auth::Principal> k = service_auth.authenticator().Authenticate(key.secret());
    INFO(k.status().ToString());
    REQUIRE(k.ok());
    CHECK(k->kind == auth::Principal::Kind::kApiKey);
    CHECK(k->api_key_id == key.api_key().id());
    CHECK(k->permissions.Has(auth::perm::kContactsAccess, auth::Scope::kTenant));
    CHECK(absl::IsUnauthenticated(
        service_auth.authenticator().Authenticate("sbk_not-a-real-key").status()));
  }
  SECTION("logout reaches the other service within a second") {
    v1::LogoutRequest logout;
    google::protobuf::Empty empty;
    SB_REQUIRE_GRPC_OK(f.stub().Logout(f.Ctx(token).get(), logout, &empty));
    const absl::Time at = absl::Now();
    CHECK(testing::Eventually(
        [&] {
          return absl::IsUnauthenticated(service_auth.authenticator().Authenticate(token).status());
        },
        absl::Seconds(1)));
    INFO("seen after " << absl::FormatDuration(absl::Now() - at));
    CHECK(absl::Now() - at < absl::Seconds(1));
  }
  service_auth.Stop();
}

TEST_CASE("With a secrets key, signing keys and TOTP secrets are sealed at rest", "[keys]") {
  IdentityFixture f;
  REQUIRE_FALSE(f.options().secrets_key.empty());
  TenantInfo acme = f.CreateTenant("acme");
  absl::StatusOr<std::vector<std::string>> pems =
      f.pg().Run([](pqxx::work& tx) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> out;
        for (const auto& row : tx.exec("SELECT private_pem FROM identity.signing_keys")) {
          out.push_back(row[0].as<std::string>());
        }
        return out;
      });
  REQUIRE(pems.ok());
  REQUIRE_FALSE(pems->empty());
  for (const std::string& pem : *pems) {
    CHECK(pem.rfind("sb1:", 0) == 0);
    CHECK(pem.find("PRIVATE KEY") == std::string::npos);
  }
  v1::TotpEnrollment enrollment;
  SB_REQUIRE_GRPC_OK(f.stub().EnrollTotp(f.Ctx(acme.admin_token).get(), {}, &enrollment));
  absl::StatusOr<std::string> stored =
      f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::string> {
        return pqxx::binarystring(
                   tx.exec_params1("SELECT totp_pending_secret FROM identity.users WHERE id = $1",
                                   acme.admin_id)[0])
            .str();
      });
  REQUIRE(stored.ok());
  CHECK(stored->rfind("sb1:", 0) == 0);
  absl::StatusOr<std::string> raw = Base32Decode(enrollment.secret());
  REQUIRE(raw.ok());
  CHECK(stored->find(*raw) == std::string::npos);

  SECTION("a ring that cannot open the keys (lost secrets_key) makes a fresh one and goes on") {
    FakeClock clock(absl::Now());
    auth::JwtVerifier verifier({.issuer = "switchboard-identity", .audience = "switchboard"},
                               clock);
    const Sealer other = *Sealer::FromBase64Key("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=");
    KeyRing ring(f.pg(), clock, verifier, absl::Minutes(15), other);
    REQUIRE(ring.Load().ok());
    int active = 0;
    for (const PublicSigningKey& k : ring.PublicKeys()) active += k.state == 2;
    CHECK(active == 1);
    CHECK(ring.Sign(Claims(clock.Now())).ok());
  }
}

}  // namespace
}  // namespace sb::identity::test
