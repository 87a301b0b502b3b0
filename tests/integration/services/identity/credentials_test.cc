// API keys, outbound-call PINs, SIP digest credentials and the audit log through the gRPC API:
// secrets shown once and stored hashed, keys scoped and revocable, PIN rules and throttling,
// HA1 digests for the registrar, audit entries and their filters, and tenant isolation.

#include <catch2/catch.hpp>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "libs/auth/authenticator.h"
#include "libs/common/ids.h"
#include "libs/testing/eventually.h"
#include "services/identity/crypto/secrets.h"
#include "tests/integration/services/identity/identity_fixture.h"

namespace sb::identity::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

constexpr char kClientIp[] = "203.0.113.7";
// Org units: east > east-1, and west beside it.
const std::string kEast = "cccccccc-0000-4000-8000-000000000001";
const std::string kEast1 = "cccccccc-0000-4000-8000-000000000002";
const std::string kWest = "cccccccc-0000-4000-8000-000000000003";
// A well-formed id nobody has.
const std::string kNobody = "dddddddd-0000-4000-8000-000000000099";

struct Refusal {
  grpc::StatusCode code;
  std::string field;
};

// A call as the gateway makes it: the user's token, the client's address, and the service
// credential that lets identity believe the address.
std::unique_ptr<grpc::ClientContext> FromClient(IdentityFixture& f, const std::string& token) {
  auto ctx = f.Ctx(token);
  ctx->AddMetadata("x-sb-client-ip", kClientIp);
  ctx->AddMetadata(auth::kInternalTokenHeader, f.internal_token());
  return ctx;
}

void AddGrant(v1::ApiKey* key, const std::string& permission, cv1::Scope scope) {
  v1::PermissionGrant* g = key->add_permissions();
  g->set_permission(permission);
  g->set_scope(scope);
}

v1::CreateApiKeyRequest KeyRequest(const std::string& name,
                                   const std::vector<std::string>& permissions) {
  v1::CreateApiKeyRequest req;
  req.mutable_api_key()->set_name(name);
  req.mutable_api_key()->set_description("CRM sync");
  for (const auto& p : permissions) AddGrant(req.mutable_api_key(), p, cv1::SCOPE_TENANT);
  return req;
}

v1::CreateApiKeyResponse CreateKey(IdentityFixture& f, const std::string& token,
                                   const std::string& name,
                                   const std::vector<std::string>& permissions) {
  v1::CreateApiKeyResponse resp;
  SB_REQUIRE_GRPC_OK(
      f.stub().CreateApiKey(FromClient(f, token).get(), KeyRequest(name, permissions), &resp));
  return resp;
}

Refusal TryCreateKey(IdentityFixture& f, const std::string& token,
                     const v1::CreateApiKeyRequest& req) {
  auto ctx = f.Ctx(token);
  v1::CreateApiKeyResponse resp;
  grpc::Status s = f.stub().CreateApiKey(ctx.get(), req, &resp);
  if (!s.ok()) CHECK(resp.secret().empty());
  return {s.error_code(), ViolationField(*ctx)};
}

grpc::Status ListKeys(IdentityFixture& f, const std::string& token, bool include_inactive,
                      v1::ListApiKeysResponse* resp) {
  v1::ListApiKeysRequest req;
  req.set_include_inactive(include_inactive);
  return f.stub().ListApiKeys(f.Ctx(token).get(), req, resp);
}

std::set<std::string> KeyIds(const v1::ListApiKeysResponse& resp) {
  std::set<std::string> ids;
  for (const auto& k : resp.api_keys()) ids.insert(k.id());
  return ids;
}

grpc::Status TryCreatePin(IdentityFixture& f, const std::string& token, const std::string& user_id,
                          const std::string& pin, v1::CreatePinResponse* resp,
                          std::string* field = nullptr) {
  v1::CreatePinRequest req;
  req.set_user_id(user_id);
  req.set_pin(pin);
  req.set_label("desk phone");
  auto ctx = FromClient(f, token);
  grpc::Status s = f.stub().CreatePin(ctx.get(), req, resp);
  if (field != nullptr) *field = ViolationField(*ctx);
  return s;
}

v1::CreatePinResponse CreatePin(IdentityFixture& f, const std::string& token,
                                const std::string& user_id, const std::string& pin = "") {
  v1::CreatePinResponse resp;
  SB_REQUIRE_GRPC_OK(TryCreatePin(f, token, user_id, pin, &resp));
  return resp;
}

grpc::Status ListPins(IdentityFixture& f, const std::string& token, const std::string& user_id,
                      v1::ListPinsResponse* resp) {
  v1::ListPinsRequest req;
  req.set_user_id(user_id);
  return f.stub().ListPins(f.Ctx(token).get(), req, resp);
}

grpc::Status DeletePin(IdentityFixture& f, const std::string& token, const std::string& pin_id) {
  v1::DeletePinRequest req;
  req.set_pin_id(pin_id);
  google::protobuf::Empty empty;
  return f.stub().DeletePin(FromClient(f, token).get(), req, &empty);
}

struct Verified {
  grpc::Status status;
  v1::VerifyPinResponse response;
  absl::Duration retry_delay;
};

Verified VerifyPin(IdentityFixture& f, const std::string& tenant_id, const std::string& user_id,
                   const std::string& pin, bool internal = true) {
  v1::VerifyPinRequest req;
  req.set_tenant_id(tenant_id);
  req.set_user_id(user_id);
  req.set_pin(pin);
  req.set_call_id("call-42");
  auto ctx = internal ? f.InternalCtx() : f.Ctx();
  Verified v;
  v.status = f.stub().VerifyPin(ctx.get(), req, &v.response);
  v.retry_delay = RetryDelay(*ctx);
  return v;
}

grpc::Status ResetSip(IdentityFixture& f, const std::string& token, const std::string& user_id,
                      const std::string& username, v1::ResetSipCredentialResponse* resp,
                      std::string* field = nullptr) {
  v1::ResetSipCredentialRequest req;
  req.set_user_id(user_id);
  req.set_username(username);
  auto ctx = FromClient(f, token);
  grpc::Status s = f.stub().ResetSipCredential(ctx.get(), req, resp);
  if (field != nullptr) *field = ViolationField(*ctx);
  return s;
}

grpc::Status GetDigest(IdentityFixture& f, const std::string& realm, const std::string& username,
                       v1::GetSipDigestResponse* resp, bool internal = true) {
  v1::GetSipDigestRequest req;
  req.set_realm(realm);
  req.set_username(username);
  auto ctx = internal ? f.InternalCtx() : f.Ctx();
  return f.stub().GetSipDigest(ctx.get(), req, resp);
}

grpc::Status ListAudit(IdentityFixture& f, const std::string& token,
                       const v1::ListAuditEntriesRequest& req, v1::ListAuditEntriesResponse* resp) {
  return f.stub().ListAuditEntries(f.Ctx(token).get(), req, resp);
}

v1::ListAuditEntriesResponse Audit(IdentityFixture& f, const std::string& token,
                                   v1::ListAuditEntriesRequest req) {
  if (req.page_size() == 0) req.set_page_size(1000);
  v1::ListAuditEntriesResponse resp;
  SB_REQUIRE_GRPC_OK(ListAudit(f, token, req, &resp));
  return resp;
}

const v1::AuditEntry* FindEntry(const v1::ListAuditEntriesResponse& resp, const std::string& action,
                                const std::string& target_id) {
  for (const auto& e : resp.entries()) {
    if (e.action() == action && e.target_id() == target_id) return &e;
  }
  return nullptr;
}

// Every text column of a table's rows, as one string.
std::string TableText(IdentityFixture& f, const std::string& table) {
  absl::StatusOr<std::string> out = f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::string> {
    std::string all;
    for (const auto& row : tx.exec("SELECT row_to_json(t)::text FROM " + table + " t")) {
      all += row[0].as<std::string>();
      all += '\n';
    }
    return all;
  });
  REQUIRE(out.ok());
  return *out;
}

std::vector<std::string> PinHashes(IdentityFixture& f, const std::string& user_id) {
  absl::StatusOr<std::vector<std::string>> out =
      f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> hashes;
        for (const auto& row :
             tx.exec_params("SELECT pin_hash FROM identity.pins WHERE user_id = $1", user_id)) {
          hashes.push_back(row[0].as<std::string>());
        }
        return hashes;
      });
  REQUIRE(out.ok());
  return *out;
}

bool AllDigits(const std::string& s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

// ---------------------------------------------------------------------------------------------
// API keys

TEST_CASE("An API key authenticates within its permissions and stops within 1 s of revocation",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});

  const v1::CreateApiKeyResponse created =
      CreateKey(f, acme.admin_token, "CRM", {auth::perm::kApiKeysManage, auth::perm::kUsersRead});
  const std::string& secret = created.secret();
  const v1::ApiKey& key = created.api_key();
  CHECK(absl::StartsWith(secret, "sbk_"));
  CHECK(secret.size() >= 40);
  CHECK(key.key_prefix() == secret.substr(0, 8));
  CHECK(key.state() == v1::ApiKey::STATE_ACTIVE);
  CHECK(key.created_by_user_id() == acme.admin_id);
  CHECK(key.tenant_id() == acme.id);
  CHECK(key.permissions_size() == 2);

  // Within its permissions.
  v1::ListApiKeysResponse keys;
  SB_REQUIRE_GRPC_OK(ListKeys(f, secret, false, &keys));
  CHECK(KeyIds(keys).count(key.id()) == 1);
  v1::GetUserRequest get_user;
  get_user.set_user_id(agent);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().GetUser(f.Ctx(secret).get(), get_user, &user));
  CHECK(user.id() == agent);
  // Not beyond them: the key has no pins.manage.
  v1::CreatePinResponse pin;
  CHECK(Code(TryCreatePin(f, secret, agent, "2580", &pin)) == grpc::PERMISSION_DENIED);
  // A guessed key is refused.
  CHECK(Code(ListKeys(f, "sbk_" + std::string(43, 'A'), false, &keys)) == grpc::UNAUTHENTICATED);

  v1::RevokeApiKeyRequest revoke;
  revoke.set_api_key_id(key.id());
  v1::ApiKey revoked;
  SB_REQUIRE_GRPC_OK(
      f.stub().RevokeApiKey(FromClient(f, acme.admin_token).get(), revoke, &revoked));
  CHECK(revoked.state() == v1::ApiKey::STATE_REVOKED);
  CHECK(revoked.has_revoked_at());
  CHECK(testing::Eventually(
      [&] {
        v1::ListApiKeysResponse r;
        return Code(ListKeys(f, secret, false, &r)) == grpc::UNAUTHENTICATED;
      },
      absl::Seconds(1)));
  CHECK(Code(f.stub().GetUser(f.Ctx(secret).get(), get_user, &user)) == grpc::UNAUTHENTICATED);

  // Revoking twice: not active any more.
  CHECK(Code(f.stub().RevokeApiKey(f.Ctx(acme.admin_token).get(), revoke, &revoked)) ==
        grpc::FAILED_PRECONDITION);
  v1::GetApiKeyRequest get;
  get.set_api_key_id(key.id());
  v1::ApiKey got;
  SB_REQUIRE_GRPC_OK(f.stub().GetApiKey(f.Ctx(acme.admin_token).get(), get, &got));
  CHECK(got.state() == v1::ApiKey::STATE_REVOKED);
  CHECK(got.name() == "CRM");
}

TEST_CASE("CreateApiKey never grants more than the creator holds and checks its input",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string agent_token = f.Token("acme", "anna");

  // An admin does not hold platform-wide permissions.
  v1::CreateApiKeyRequest platform = KeyRequest("too much", {});
  AddGrant(platform.mutable_api_key(), auth::perm::kTenantsManage, cv1::SCOPE_PLATFORM);
  CHECK(TryCreateKey(f, acme.admin_token, platform).code == grpc::PERMISSION_DENIED);

  // Keys do not make keys, not even narrower ones: a copy would outlive the original's
  // revocation or expiry.
  const std::string narrow =
      CreateKey(f, acme.admin_token, "key admin", {auth::perm::kApiKeysManage}).secret();
  CHECK(TryCreateKey(f, narrow, KeyRequest("wider", {auth::perm::kUsersRead})).code ==
        grpc::PERMISSION_DENIED);
  CHECK(TryCreateKey(f, narrow, KeyRequest("same", {auth::perm::kApiKeysManage})).code ==
        grpc::PERMISSION_DENIED);

  // Agents may not create keys at all.
  CHECK(TryCreateKey(f, agent_token, KeyRequest("mine", {auth::perm::kCallsRead})).code ==
        grpc::PERMISSION_DENIED);
  v1::ListApiKeysResponse keys;
  CHECK(Code(ListKeys(f, agent_token, false, &keys)) == grpc::PERMISSION_DENIED);

  Refusal r = TryCreateKey(f, acme.admin_token, KeyRequest("", {auth::perm::kUsersRead}));
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "api_key.name");
  r = TryCreateKey(f, acme.admin_token,
                   KeyRequest(std::string(101, 'n'), {auth::perm::kUsersRead}));
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "api_key.name");
  r = TryCreateKey(f, acme.admin_token, KeyRequest("none", {}));
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "api_key.permissions");
  r = TryCreateKey(f, acme.admin_token,
                   KeyRequest("unknown", {auth::perm::kUsersRead, "no.such_permission"}));
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "api_key.permissions[1]");
  v1::CreateApiKeyRequest long_description = KeyRequest("long", {auth::perm::kUsersRead});
  long_description.mutable_api_key()->set_description(std::string(501, 'd'));
  r = TryCreateKey(f, acme.admin_token, long_description);
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "api_key.description");
  v1::CreateApiKeyRequest past = KeyRequest("past", {auth::perm::kUsersRead});
  past.mutable_api_key()->mutable_expires_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) - 60);
  r = TryCreateKey(f, acme.admin_token, past);
  CHECK(r.code == grpc::INVALID_ARGUMENT);
  CHECK(r.field == "api_key.expires_at");
}

TEST_CASE("ListApiKeys hides revoked keys unless asked and never shows a secret", "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const v1::CreateApiKeyResponse kept =
      CreateKey(f, acme.admin_token, "kept", {auth::perm::kUsersRead});
  const v1::CreateApiKeyResponse gone =
      CreateKey(f, acme.admin_token, "gone", {auth::perm::kUsersRead});
  v1::RevokeApiKeyRequest revoke;
  revoke.set_api_key_id(gone.api_key().id());
  v1::ApiKey revoked;
  SB_REQUIRE_GRPC_OK(f.stub().RevokeApiKey(f.Ctx(acme.admin_token).get(), revoke, &revoked));

  v1::ListApiKeysResponse active;
  SB_REQUIRE_GRPC_OK(ListKeys(f, acme.admin_token, false, &active));
  CHECK(KeyIds(active) == std::set<std::string>{kept.api_key().id()});
  CHECK(active.total_size() == 1);

  v1::ListApiKeysResponse all;
  SB_REQUIRE_GRPC_OK(ListKeys(f, acme.admin_token, true, &all));
  CHECK(KeyIds(all) == std::set<std::string>{kept.api_key().id(), gone.api_key().id()});
  CHECK(all.total_size() == 2);
  for (const auto& k : all.api_keys()) {
    CHECK(k.state() ==
          (k.id() == gone.api_key().id() ? v1::ApiKey::STATE_REVOKED : v1::ApiKey::STATE_ACTIVE));
  }

  for (const auto* resp : {&active, &all}) {
    const std::string bytes = resp->SerializeAsString();
    for (const auto* key : {&kept, &gone}) {
      CHECK(bytes.find(key->secret()) == std::string::npos);
      CHECK(bytes.find(key->secret().substr(8)) == std::string::npos);
      CHECK(bytes.find(Sha256Hex(key->secret())) == std::string::npos);
    }
  }
  // Stored hashed: the secret is nowhere in the table.
  const std::string table = TableText(f, "identity.api_keys");
  CHECK(table.find(kept.secret()) == std::string::npos);
  CHECK(table.find(Sha256Hex(kept.secret())) != std::string::npos);

  // Paging.
  v1::ListApiKeysRequest paged;
  paged.set_include_inactive(true);
  paged.set_page_size(1);
  v1::ListApiKeysResponse first, second;
  SB_REQUIRE_GRPC_OK(f.stub().ListApiKeys(f.Ctx(acme.admin_token).get(), paged, &first));
  REQUIRE(first.api_keys_size() == 1);
  REQUIRE(!first.next_page_token().empty());
  paged.set_page_token(first.next_page_token());
  SB_REQUIRE_GRPC_OK(f.stub().ListApiKeys(f.Ctx(acme.admin_token).get(), paged, &second));
  REQUIRE(second.api_keys_size() == 1);
  CHECK(second.api_keys(0).id() != first.api_keys(0).id());
  CHECK(second.next_page_token().empty());
  // A token of the full list does not page the active one.
  paged.set_include_inactive(false);
  CHECK(Code(f.stub().ListApiKeys(f.Ctx(acme.admin_token).get(), paged, &second)) ==
        grpc::INVALID_ARGUMENT);
}

// ---------------------------------------------------------------------------------------------
// PINs

TEST_CASE("PINs: generated once, stored as argon2id, listed without the PIN, deleted",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string agent_token = f.Token("acme", "anna");

  const v1::CreatePinResponse generated = CreatePin(f, acme.admin_token, agent);
  const std::string& pin = generated.generated_pin();
  CHECK(pin.size() == 6);
  CHECK(AllDigits(pin));
  CHECK(generated.pin().user_id() == agent);
  CHECK(generated.pin().tenant_id() == acme.id);
  CHECK(generated.pin().created_by_user_id() == acme.admin_id);
  CHECK(generated.pin().label() == "desk phone");

  const v1::CreatePinResponse chosen = CreatePin(f, acme.admin_token, agent, "2580");
  CHECK(chosen.generated_pin().empty());

  // Listed by the admin and by the agent themself, never with the PIN.
  v1::ListPinsResponse by_admin, by_agent;
  SB_REQUIRE_GRPC_OK(ListPins(f, acme.admin_token, agent, &by_admin));
  SB_REQUIRE_GRPC_OK(ListPins(f, agent_token, "", &by_agent));
  CHECK(by_admin.pins_size() == 2);
  CHECK(by_admin.total_size() == 2);
  CHECK(by_agent.pins_size() == 2);
  for (const auto* resp : {&by_admin, &by_agent}) {
    CHECK(resp->SerializeAsString().find(pin) == std::string::npos);
    CHECK(resp->DebugString().find(pin) == std::string::npos);
  }

  const std::vector<std::string> hashes = PinHashes(f, agent);
  REQUIRE(hashes.size() == 2);
  for (const std::string& h : hashes) {
    CHECK(absl::StartsWith(h, "$argon2id$"));
    CHECK(h.find(pin) == std::string::npos);
  }
  CHECK(TableText(f, "identity.audit_log").find(pin) == std::string::npos);

  // The same PIN twice for one user.
  v1::CreatePinResponse dup;
  CHECK(Code(TryCreatePin(f, acme.admin_token, agent, "2580", &dup)) == grpc::ALREADY_EXISTS);
  CHECK(Code(TryCreatePin(f, acme.admin_token, agent, pin, &dup)) == grpc::ALREADY_EXISTS);
  // ... is fine for another user.
  const std::string other = f.CreateUser(acme.admin_token, "bob", {"agent"});
  CreatePin(f, acme.admin_token, other, "2580");

  for (const std::string bad : {"1111", "1234", "9876", "123456", "0000000", "123", "12a4",
                                "1234567890123", "25 80", "٢٥٨٠"}) {
    INFO("pin " << bad);
    std::string field;
    CHECK(Code(TryCreatePin(f, acme.admin_token, agent, bad, &dup, &field)) ==
          grpc::INVALID_ARGUMENT);
    CHECK(field == "pin");
  }

  SB_REQUIRE_GRPC_OK(DeletePin(f, acme.admin_token, chosen.pin().id()));
  SB_REQUIRE_GRPC_OK(ListPins(f, acme.admin_token, agent, &by_admin));
  REQUIRE(by_admin.pins_size() == 1);
  CHECK(by_admin.pins(0).id() == generated.pin().id());
  CHECK(Code(DeletePin(f, acme.admin_token, chosen.pin().id())) == grpc::NOT_FOUND);
  CHECK(Code(DeletePin(f, acme.admin_token, kNobody)) == grpc::NOT_FOUND);
  CHECK(Code(DeletePin(f, acme.admin_token, "not-an-id")) == grpc::NOT_FOUND);
  // A deleted PIN can be created again.
  CreatePin(f, acme.admin_token, agent, "2580");
}

TEST_CASE("Agents cannot create PINs; local managers only within their unit subtree",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.org().AddUnit(kEast);
  f.org().AddUnit(kEast1, kEast);
  f.org().AddUnit(kWest);
  const std::string lm = f.CreateUser(acme.admin_token, "local.mgr", {"local_manager"}, {kEast});
  const std::string inside = f.CreateUser(acme.admin_token, "east1.agent", {"agent"}, {kEast1});
  const std::string outside = f.CreateUser(acme.admin_token, "west.agent", {"agent"}, {kWest});
  const std::string lm_token = f.Token("acme", "local.mgr");
  const std::string agent_token = f.Token("acme", "east1.agent");

  v1::CreatePinResponse resp;
  // An agent: neither for themself (no pins.manage) nor for anybody else.
  CHECK(Code(TryCreatePin(f, agent_token, inside, "2580", &resp)) == grpc::PERMISSION_DENIED);
  const grpc::StatusCode for_other = Code(TryCreatePin(f, agent_token, outside, "2580", &resp));
  CHECK((for_other == grpc::NOT_FOUND || for_other == grpc::PERMISSION_DENIED));
  CHECK(resp.generated_pin().empty());
  CHECK(PinHashes(f, outside).empty());

  // The local manager: users in the subtree, and themself.
  const v1::CreatePinResponse in_pin = CreatePin(f, lm_token, inside, "4711");
  CHECK(in_pin.pin().created_by_user_id() == lm);
  CreatePin(f, lm_token, lm, "4712");
  const grpc::StatusCode out_code = Code(TryCreatePin(f, lm_token, outside, "4711", &resp));
  CHECK((out_code == grpc::NOT_FOUND || out_code == grpc::PERMISSION_DENIED));
  CHECK(PinHashes(f, outside).empty());

  v1::ListPinsResponse pins;
  SB_REQUIRE_GRPC_OK(ListPins(f, lm_token, inside, &pins));
  CHECK(pins.pins_size() == 1);
  const v1::CreatePinResponse out_pin = CreatePin(f, acme.admin_token, outside, "8520");
  const grpc::StatusCode list_out = Code(ListPins(f, lm_token, outside, &pins));
  CHECK((list_out == grpc::NOT_FOUND || list_out == grpc::PERMISSION_DENIED));
  // Another user's PIN the manager cannot reach is, for them, not there.
  CHECK(Code(DeletePin(f, lm_token, out_pin.pin().id())) == grpc::NOT_FOUND);
  CHECK(Code(DeletePin(f, agent_token, in_pin.pin().id())) == grpc::PERMISSION_DENIED);
  SB_REQUIRE_GRPC_OK(DeletePin(f, lm_token, in_pin.pin().id()));
  CHECK(PinHashes(f, outside).size() == 1);
}

TEST_CASE("VerifyPin is internal, checks the PIN and locks after five wrong ones",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo bravo = f.CreateTenant("bravo");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const v1::CreatePinResponse pin = CreatePin(f, acme.admin_token, agent, "2580");

  Verified v = VerifyPin(f, acme.id, agent, "2580", /*internal=*/false);
  CHECK(Code(v.status) == grpc::UNAUTHENTICATED);
  CHECK(!v.response.valid());
  {
    // A user's token is not a service credential.
    v1::VerifyPinRequest req;
    req.set_tenant_id(acme.id);
    req.set_user_id(agent);
    req.set_pin("2580");
    v1::VerifyPinResponse resp;
    CHECK(Code(f.stub().VerifyPin(f.Ctx(acme.admin_token).get(), req, &resp)) ==
          grpc::UNAUTHENTICATED);
  }

  v = VerifyPin(f, acme.id, agent, "2580");
  SB_REQUIRE_GRPC_OK(v.status);
  CHECK(v.response.valid());
  CHECK(v.response.pin_id() == pin.pin().id());
  v1::ListPinsResponse pins;
  SB_REQUIRE_GRPC_OK(ListPins(f, acme.admin_token, agent, &pins));
  REQUIRE(pins.pins_size() == 1);
  CHECK(pins.pins(0).has_last_used_at());

  v = VerifyPin(f, acme.id, agent, "2581");
  SB_REQUIRE_GRPC_OK(v.status);
  CHECK(!v.response.valid());
  CHECK(v.response.pin_id().empty());
  // The right PIN in the wrong tenant.
  v = VerifyPin(f, bravo.id, agent, "2580");
  SB_REQUIRE_GRPC_OK(v.status);
  CHECK(!v.response.valid());
  // A success clears the failure count (else the fifth wrong PIN below would already be locked).
  v = VerifyPin(f, acme.id, agent, "2580");
  CHECK(v.response.valid());

  for (int i = 0; i < 5; ++i) {
    INFO("wrong PIN " << i + 1);
    v = VerifyPin(f, acme.id, agent, i % 2 == 0 ? "0000" : "12x");
    SB_REQUIRE_GRPC_OK(v.status);
    CHECK(!v.response.valid());
  }
  v = VerifyPin(f, acme.id, agent, "2580");
  CHECK(Code(v.status) == grpc::RESOURCE_EXHAUSTED);
  CHECK(!v.response.valid());
  CHECK(v.retry_delay > absl::ZeroDuration());

  // Each check is in the audit log, with its outcome and the call.
  v1::ListAuditEntriesRequest req;
  req.set_action("pin.verify");
  const v1::ListAuditEntriesResponse audit = Audit(f, acme.admin_token, req);
  int ok = 0, failed = 0, denied = 0;
  for (const auto& e : audit.entries()) {
    CHECK(e.actor_user_id() == agent);
    CHECK(e.changes().fields().at("call_id").string_value() == "call-42");
    ok += e.result() == v1::AUDIT_RESULT_SUCCESS;
    failed += e.result() == v1::AUDIT_RESULT_FAILED;
    denied += e.result() == v1::AUDIT_RESULT_DENIED;
  }
  CHECK(ok == 2);
  CHECK(failed == 6);
  CHECK(denied == 1);
}

// ---------------------------------------------------------------------------------------------
// SIP digest credentials

TEST_CASE("ResetSipCredential shows the password once; GetSipDigest serves its HA1s",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string other = f.CreateUser(acme.admin_token, "bob", {"agent"});
  const std::string realm = "acme.sip.test";

  std::string field;
  v1::ResetSipCredentialResponse reset;
  CHECK(Code(ResetSip(f, acme.admin_token, agent, "", &reset, &field)) == grpc::INVALID_ARGUMENT);
  CHECK(field == "username");
  CHECK(Code(ResetSip(f, acme.admin_token, agent, "10 01", &reset, &field)) ==
        grpc::INVALID_ARGUMENT);
  CHECK(field == "username");
  CHECK(Code(ResetSip(f, acme.admin_token, agent, std::string(65, '1'), &reset, &field)) ==
        grpc::INVALID_ARGUMENT);
  CHECK(field == "username");

  SB_REQUIRE_GRPC_OK(ResetSip(f, acme.admin_token, agent, "1001", &reset));
  const std::string password = reset.password();
  CHECK(password.size() >= 20);
  CHECK(reset.credential().username() == "1001");
  CHECK(reset.credential().realm() == realm);
  CHECK(reset.credential().user_id() == agent);
  CHECK(reset.credential().tenant_id() == acme.id);

  v1::GetSipDigestResponse digest;
  CHECK(Code(GetDigest(f, realm, "1001", &digest, /*internal=*/false)) == grpc::UNAUTHENTICATED);
  SB_REQUIRE_GRPC_OK(GetDigest(f, "ACME.sip.test", "1001", &digest));
  CHECK(digest.tenant_id() == acme.id);
  CHECK(digest.user_id() == agent);
  CHECK(digest.ha1_md5() == DigestHa1Md5("1001", realm, password));
  CHECK(digest.ha1_sha256() == DigestHa1Sha256("1001", realm, password));
  CHECK(Code(GetDigest(f, "other.sip.test", "1001", &digest)) == grpc::NOT_FOUND);
  CHECK(Code(GetDigest(f, realm, "1002", &digest)) == grpc::NOT_FOUND);
  CHECK(Code(GetDigest(f, realm, "", &digest)) == grpc::NOT_FOUND);

  // Never the plain password: not stored, not shown again.
  CHECK(TableText(f, "identity.sip_credentials").find(password) == std::string::npos);
  CHECK(TableText(f, "identity.audit_log").find(password) == std::string::npos);
  v1::GetSipCredentialRequest get;
  get.set_user_id(agent);
  v1::SipCredential cred;
  SB_REQUIRE_GRPC_OK(f.stub().GetSipCredential(f.Ctx(acme.admin_token).get(), get, &cred));
  CHECK(cred.username() == "1001");
  CHECK(cred.realm() == realm);
  CHECK(cred.SerializeAsString().find(password) == std::string::npos);

  // Taken by another user of the tenant.
  CHECK(Code(ResetSip(f, acme.admin_token, other, "1001", &reset, &field)) == grpc::ALREADY_EXISTS);
  CHECK(field == "username");

  // A reset keeps the username and replaces the password.
  v1::ResetSipCredentialResponse again;
  SB_REQUIRE_GRPC_OK(ResetSip(f, acme.admin_token, agent, "", &again));
  CHECK(again.credential().username() == "1001");
  CHECK(again.password() != password);
  SB_REQUIRE_GRPC_OK(GetDigest(f, realm, "1001", &digest));
  CHECK(digest.ha1_md5() == DigestHa1Md5("1001", realm, again.password()));
  CHECK(digest.ha1_md5() != DigestHa1Md5("1001", realm, password));

  // An agent may read their own credential but not reset it.
  const std::string agent_token = f.Token("acme", "anna");
  SB_REQUIRE_GRPC_OK(f.stub().GetSipCredential(f.Ctx(agent_token).get(), get, &cred));
  CHECK(Code(ResetSip(f, agent_token, agent, "", &reset)) == grpc::PERMISSION_DENIED);

  // A disabled user's extension cannot register.
  v1::DisableUserRequest disable;
  disable.set_user_id(agent);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().DisableUser(f.Ctx(acme.admin_token).get(), disable, &user));
  CHECK(Code(GetDigest(f, realm, "1001", &digest)) == grpc::NOT_FOUND);
  v1::EnableUserRequest enable;
  enable.set_user_id(agent);
  SB_REQUIRE_GRPC_OK(f.stub().EnableUser(f.Ctx(acme.admin_token).get(), enable, &user));
  SB_REQUIRE_GRPC_OK(GetDigest(f, realm, "1001", &digest));

  v1::DeleteSipCredentialRequest del;
  del.set_user_id(agent);
  google::protobuf::Empty empty;
  SB_REQUIRE_GRPC_OK(
      f.stub().DeleteSipCredential(FromClient(f, acme.admin_token).get(), del, &empty));
  CHECK(Code(GetDigest(f, realm, "1001", &digest)) == grpc::NOT_FOUND);
  CHECK(Code(f.stub().GetSipCredential(f.Ctx(acme.admin_token).get(), get, &cred)) ==
        grpc::NOT_FOUND);
  CHECK(Code(f.stub().DeleteSipCredential(f.Ctx(acme.admin_token).get(), del, &empty)) ==
        grpc::NOT_FOUND);
  // The username is free again.
  SB_REQUIRE_GRPC_OK(ResetSip(f, acme.admin_token, other, "1001", &reset));
}

// ---------------------------------------------------------------------------------------------
// Audit log

TEST_CASE("The audit log records credential actions with actor, target and client address",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const v1::CreatePinResponse pin1 = CreatePin(f, acme.admin_token, agent);
  const v1::CreatePinResponse pin2 = CreatePin(f, acme.admin_token, agent, "2580");
  SB_REQUIRE_GRPC_OK(DeletePin(f, acme.admin_token, pin2.pin().id()));
  const v1::CreateApiKeyResponse key =
      CreateKey(f, acme.admin_token, "CRM", {auth::perm::kUsersRead});
  v1::RevokeApiKeyRequest revoke;
  revoke.set_api_key_id(key.api_key().id());
  v1::ApiKey revoked;
  SB_REQUIRE_GRPC_OK(
      f.stub().RevokeApiKey(FromClient(f, acme.admin_token).get(), revoke, &revoked));
  v1::ResetSipCredentialResponse sip;
  SB_REQUIRE_GRPC_OK(ResetSip(f, acme.admin_token, agent, "1001", &sip));

  const v1::ListAuditEntriesResponse all = Audit(f, acme.admin_token, {});
  struct Expected {
    std::string action, target_type, target_id;
  };
  for (const Expected& x : std::vector<Expected>{
           {"pin.create", "pin", pin1.pin().id()},
           {"pin.create", "pin", pin2.pin().id()},
           {"pin.delete", "pin", pin2.pin().id()},
           {"api_key.create", "api_key", key.api_key().id()},
           {"api_key.revoke", "api_key", key.api_key().id()},
           {"sip_credential.reset", "sip_credential", agent},
       }) {
    INFO(x.action << " " << x.target_id);
    const v1::AuditEntry* e = FindEntry(all, x.action, x.target_id);
    REQUIRE(e != nullptr);
    CHECK(e->tenant_id() == acme.id);
    CHECK(e->target_type() == x.target_type);
    CHECK(e->actor_user_id() == acme.admin_id);
    CHECK(!e->actor_display_name().empty());
    CHECK(e->result() == v1::AUDIT_RESULT_SUCCESS);
    CHECK(e->client().ip_address() == kClientIp);
    CHECK(e->has_occurred_at());
  }
  const v1::AuditEntry* created = FindEntry(all, "pin.create", pin1.pin().id());
  CHECK(created->changes().fields().at("user_id").string_value() == agent);
  const std::string dump = all.DebugString();
  CHECK(dump.find(pin1.generated_pin()) == std::string::npos);
  CHECK(dump.find(key.secret()) == std::string::npos);
  CHECK(dump.find(sip.password()) == std::string::npos);
  // Newest first.
  for (int i = 1; i < all.entries_size(); ++i) {
    const auto& a = all.entries(i - 1).occurred_at();
    const auto& b = all.entries(i).occurred_at();
    CHECK((a.seconds() > b.seconds() || (a.seconds() == b.seconds() && a.nanos() >= b.nanos())));
  }

  v1::ListAuditEntriesRequest by_prefix;
  by_prefix.set_action("pin.");
  const v1::ListAuditEntriesResponse pins = Audit(f, acme.admin_token, by_prefix);
  CHECK(pins.entries_size() == 3);
  CHECK(pins.total_size() == 3);
  for (const auto& e : pins.entries()) CHECK(absl::StartsWith(e.action(), "pin."));
  by_prefix.set_action("api_key.");
  CHECK(Audit(f, acme.admin_token, by_prefix).entries_size() == 2);
  by_prefix.set_action("api_key.revoke");
  CHECK(Audit(f, acme.admin_token, by_prefix).entries_size() == 1);
  by_prefix.set_action("api_key");  // neither the exact action nor a prefix ending in '.'
  CHECK(Audit(f, acme.admin_token, by_prefix).entries_size() == 0);

  v1::ListAuditEntriesRequest by_target;
  by_target.set_target_id(pin2.pin().id());
  const v1::ListAuditEntriesResponse target = Audit(f, acme.admin_token, by_target);
  REQUIRE(target.entries_size() == 2);
  CHECK(target.entries(0).action() == "pin.delete");
  CHECK(target.entries(1).action() == "pin.create");
  by_target.set_target_type("api_key");
  CHECK(Audit(f, acme.admin_token, by_target).entries_size() == 0);

  v1::ListAuditEntriesRequest by_actor;
  by_actor.set_actor_user_id(agent);
  CHECK(Audit(f, acme.admin_token, by_actor).entries_size() == 0);
  by_actor.set_actor_user_id(acme.admin_id);
  by_actor.set_action("pin.");
  CHECK(Audit(f, acme.admin_token, by_actor).entries_size() == 3);

  v1::ListAuditEntriesRequest future;
  future.mutable_time_range()->mutable_start_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                                 3600);
  CHECK(Audit(f, acme.admin_token, future).entries_size() == 0);
  v1::ListAuditEntriesRequest past;
  past.mutable_time_range()->mutable_start_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) -
                                                               3600);
  CHECK(Audit(f, acme.admin_token, past).entries_size() == all.entries_size());

  // Paging with two entries a page walks the same list, in the same order.
  v1::ListAuditEntriesRequest paged;
  paged.set_page_size(2);
  std::vector<std::string> walked;
  for (int pages = 0; pages < 100; ++pages) {
    v1::ListAuditEntriesResponse page;
    SB_REQUIRE_GRPC_OK(ListAudit(f, acme.admin_token, paged, &page));
    CHECK(page.entries_size() <= 2);
    CHECK(page.total_size() == all.total_size());
    for (const auto& e : page.entries()) walked.push_back(e.id());
    if (page.next_page_token().empty()) break;
    paged.set_page_token(page.next_page_token());
  }
  std::vector<std::string> expected;
  for (const auto& e : all.entries()) expected.push_back(e.id());
  CHECK(expected.size() >= 6);
  CHECK(walked == expected);
  // A token is bound to its filters.
  v1::ListAuditEntriesRequest first_page;
  first_page.set_page_size(2);
  v1::ListAuditEntriesResponse page;
  SB_REQUIRE_GRPC_OK(ListAudit(f, acme.admin_token, first_page, &page));
  first_page.set_page_token(page.next_page_token());
  first_page.set_action("pin.");
  CHECK(Code(ListAudit(f, acme.admin_token, first_page, &page)) == grpc::INVALID_ARGUMENT);
}

TEST_CASE("Audit entries stay in their tenant and within the reader's reach", "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo bravo = f.CreateTenant("bravo");
  f.org().AddUnit(kEast);
  f.org().AddUnit(kWest);
  f.CreateUser(acme.admin_token, "local.mgr", {"local_manager"}, {kEast});
  const std::string inside = f.CreateUser(acme.admin_token, "east.agent", {"agent"}, {kEast});
  const std::string outside = f.CreateUser(acme.admin_token, "west.agent", {"agent"}, {kWest});
  const v1::CreatePinResponse in_pin = CreatePin(f, acme.admin_token, inside);
  const v1::CreatePinResponse out_pin = CreatePin(f, acme.admin_token, outside);
  v1::ResetSipCredentialResponse sip;
  SB_REQUIRE_GRPC_OK(ResetSip(f, acme.admin_token, outside, "2002", &sip));
  CreatePin(f, bravo.admin_token, bravo.admin_id, "7531");

  // Tenant B's admin sees only B's entries, whatever they ask for.
  const v1::ListAuditEntriesResponse b = Audit(f, bravo.admin_token, {});
  CHECK(b.entries_size() > 0);
  for (const auto& e : b.entries()) CHECK(e.tenant_id() == bravo.id);
  CHECK(FindEntry(b, "pin.create", in_pin.pin().id()) == nullptr);
  v1::ListAuditEntriesRequest other_tenant;
  other_tenant.set_tenant_id(acme.id);
  v1::ListAuditEntriesResponse refused;
  CHECK(Code(ListAudit(f, bravo.admin_token, other_tenant, &refused)) == grpc::NOT_FOUND);
  CHECK(refused.entries_size() == 0);
  v1::ListAuditEntriesRequest by_target;
  by_target.set_target_id(in_pin.pin().id());
  CHECK(Audit(f, bravo.admin_token, by_target).entries_size() == 0);

  // The platform admin may read any tenant's log.
  const v1::ListAuditEntriesResponse as_platform = Audit(f, f.platform_token(), other_tenant);
  CHECK(FindEntry(as_platform, "pin.create", in_pin.pin().id()) != nullptr);
  for (const auto& e : as_platform.entries()) CHECK(e.tenant_id() == acme.id);

  // Without audit.read: refused.
  const std::string agent_token = f.Token("acme", "east.agent");
  CHECK(Code(ListAudit(f, agent_token, {}, &refused)) == grpc::PERMISSION_DENIED);

  // A local manager sees what concerns users of their subtree, not the rest.
  const std::string lm_token = f.Token("acme", "local.mgr");
  const v1::ListAuditEntriesResponse lm = Audit(f, lm_token, {});
  CHECK(FindEntry(lm, "pin.create", in_pin.pin().id()) != nullptr);
  CHECK(FindEntry(lm, "pin.create", out_pin.pin().id()) == nullptr);
  CHECK(FindEntry(lm, "sip_credential.reset", outside) == nullptr);
  for (const auto& e : lm.entries()) CHECK(e.tenant_id() == acme.id);
  CHECK(lm.total_size() == lm.entries_size());
  CHECK(lm.entries_size() < Audit(f, acme.admin_token, {}).entries_size());
}

TEST_CASE("Guessed ids of another tenant's keys, PINs and SIP credentials give NotFound",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo bravo = f.CreateTenant("bravo");
  const std::string agent = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const v1::CreateApiKeyResponse key =
      CreateKey(f, acme.admin_token, "CRM", {auth::perm::kUsersRead});
  const v1::CreatePinResponse pin = CreatePin(f, acme.admin_token, agent, "2580");
  v1::ResetSipCredentialResponse sip;
  SB_REQUIRE_GRPC_OK(ResetSip(f, acme.admin_token, agent, "1001", &sip));
  const std::string& b = bravo.admin_token;

  for (const std::string& id : {key.api_key().id(), kNobody, std::string("not-an-id")}) {
    INFO("api key id " << id);
    v1::GetApiKeyRequest get;
    get.set_api_key_id(id);
    v1::ApiKey got;
    CHECK(Code(f.stub().GetApiKey(f.Ctx(b).get(), get, &got)) == grpc::NOT_FOUND);
    CHECK(got.ByteSizeLong() == 0);
    v1::RevokeApiKeyRequest revoke;
    revoke.set_api_key_id(id);
    CHECK(Code(f.stub().RevokeApiKey(f.Ctx(b).get(), revoke, &got)) == grpc::NOT_FOUND);
  }
  for (const std::string& id : {pin.pin().id(), kNobody, std::string("not-an-id")}) {
    INFO("pin id " << id);
    CHECK(Code(DeletePin(f, b, id)) == grpc::NOT_FOUND);
  }
  for (const std::string& id : {agent, kNobody, std::string("not-an-id")}) {
    INFO("user id " << id);
    v1::GetSipCredentialRequest get;
    get.set_user_id(id);
    v1::SipCredential cred;
    CHECK(Code(f.stub().GetSipCredential(f.Ctx(b).get(), get, &cred)) == grpc::NOT_FOUND);
    CHECK(cred.ByteSizeLong() == 0);
    v1::ResetSipCredentialResponse reset;
    CHECK(Code(ResetSip(f, b, id, "1001", &reset)) == grpc::NOT_FOUND);
    CHECK(reset.password().empty());
    v1::DeleteSipCredentialRequest del;
    del.set_user_id(id);
    google::protobuf::Empty empty;
    CHECK(Code(f.stub().DeleteSipCredential(f.Ctx(b).get(), del, &empty)) == grpc::NOT_FOUND);
    v1::ListPinsResponse pins;
    CHECK(Code(ListPins(f, b, id, &pins)) == grpc::NOT_FOUND);
    CHECK(pins.pins_size() == 0);
    v1::CreatePinResponse created;
    CHECK(Code(TryCreatePin(f, b, id, "9512", &created)) == grpc::NOT_FOUND);
  }

  // Everything of tenant A is untouched.
  v1::GetApiKeyRequest get;
  get.set_api_key_id(key.api_key().id());
  v1::ApiKey got;
  SB_REQUIRE_GRPC_OK(f.stub().GetApiKey(f.Ctx(acme.admin_token).get(), get, &got));
  CHECK(got.state() == v1::ApiKey::STATE_ACTIVE);
  v1::ListPinsResponse pins;
  SB_REQUIRE_GRPC_OK(ListPins(f, acme.admin_token, agent, &pins));
  CHECK(pins.pins_size() == 1);
  v1::GetSipDigestResponse digest;
  SB_REQUIRE_GRPC_OK(GetDigest(f, "acme.sip.test", "1001", &digest));
  CHECK(digest.ha1_md5() == DigestHa1Md5("1001", "acme.sip.test", sip.password()));
}

TEST_CASE("An API key stops with its creator and never exceeds the creator's current rights",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  f.CreateUser(acme.admin_token, "integrator", {"admin"});
  const std::string integrator = f.Token("acme", "integrator");
  v1::CreateApiKeyRequest req;
  req.mutable_api_key()->set_name("CRM");
  AddGrant(req.mutable_api_key(), "users.manage", cv1::SCOPE_TENANT);
  AddGrant(req.mutable_api_key(), "contacts.access", cv1::SCOPE_TENANT);
  v1::CreateApiKeyResponse key;
  SB_REQUIRE_GRPC_OK(f.stub().CreateApiKey(f.Ctx(integrator).get(), req, &key));
  auto can_manage_users = [&] {
    v1::ListUsersRequest list;
    v1::ListUsersResponse users;
    return f.stub().ListUsers(f.Ctx(key.secret()).get(), list, &users).error_code();
  };
  CHECK(can_manage_users() == grpc::PERMISSION_DENIED);  // users.read was not given to the key
  v1::GetCurrentUserResponse me;
  SB_REQUIRE_GRPC_OK(f.stub().GetCurrentUser(f.Ctx(key.secret()).get(), {}, &me));
  // A key cannot mint keys (they would outlive its revocation).
  v1::CreateApiKeyResponse minted;
  CHECK(Code(f.stub().CreateApiKey(f.Ctx(key.secret()).get(), req, &minted)) ==
        grpc::PERMISSION_DENIED);
  // Nor reset its creator's password.
  v1::ResetUserPasswordRequest reset;
  reset.set_user_id(me.user().id());
  v1::ResetUserPasswordResponse reset_resp;
  CHECK(Code(f.stub().ResetUserPassword(f.Ctx(key.secret()).get(), reset, &reset_resp)) !=
        grpc::OK);
  CHECK(reset_resp.generated_password().empty());

  // The creator is demoted to agent: the key keeps only what an agent holds.
  v1::UpdateUserRequest demote;
  demote.mutable_user()->set_id(me.user().id());
  demote.mutable_user()->add_role_ids("agent");
  demote.mutable_update_mask()->add_paths("role_ids");
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().UpdateUser(f.Ctx(acme.admin_token).get(), demote, &user));
  v1::IntrospectTokenRequest introspect;
  introspect.set_token(key.secret());
  v1::IntrospectTokenResponse seen;
  SB_REQUIRE_GRPC_OK(f.stub().IntrospectToken(f.InternalCtx().get(), introspect, &seen));
  for (const auto& g : seen.principal().permissions()) {
    CHECK(g.permission() != "users.manage");
    CHECK(g.scope() != cv1::SCOPE_TENANT);
  }
  // The creator is disabled: the key stops.
  v1::DisableUserRequest disable;
  disable.set_user_id(me.user().id());
  SB_REQUIRE_GRPC_OK(f.stub().DisableUser(f.Ctx(acme.admin_token).get(), disable, &user));
  CHECK(Code(f.stub().GetCurrentUser(f.Ctx(key.secret()).get(), {}, &me)) == grpc::UNAUTHENTICATED);
}

TEST_CASE("Only a caller with the service credential may name the client's address",
          "[credentials]") {
  IdentityFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  const std::string id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  auto forged = f.Ctx(acme.admin_token);
  forged->AddMetadata("x-sb-client-ip", "198.51.100.66");
  v1::DisableUserRequest disable;
  disable.set_user_id(id);
  v1::User user;
  SB_REQUIRE_GRPC_OK(f.stub().DisableUser(forged.get(), disable, &user));
  v1::ListAuditEntriesRequest list;
  list.set_action("user.disable");
  v1::ListAuditEntriesResponse entries;
  SB_REQUIRE_GRPC_OK(f.stub().ListAuditEntries(f.Ctx(acme.admin_token).get(), list, &entries));
  REQUIRE(entries.entries_size() == 1);
  CHECK(entries.entries(0).client().ip_address() == "127.0.0.1");
}

}  // namespace
}  // namespace sb::identity::test
