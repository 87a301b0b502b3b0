#include "libs/auth/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "libs/auth/signing_key.h"
#include "libs/common/fake_clock.h"
#include "libs/common/ids.h"
#include "nlohmann/json.hpp"

namespace sb::auth {
namespace {

using Json = nlohmann::json;

constexpr char kIssuer[] = "https://id.switchboard.test";
constexpr char kAudience[] = "switchboard";

// A P-256 key: valid PKCS#8, wrong algorithm.
constexpr char kEcPrivatePem[] = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTdnkHGtwXv/D6mJw
IyPyulPcY7vWTm3FPG4LEja2odGhRANCAARfGOnGSmDE45yCdBt1brOgAk+dzhMr
ipyJevCuDcxYx2S5UopDhYEToXhQG2fm1JlYTZOcnd4OzkAucBQGX2AJ
-----END PRIVATE KEY-----
)";

// An Ed25519 key encrypted with the passphrase "secret": refused, never prompted for.
constexpr char kEncryptedPrivatePem[] = R"(-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgnvzDGP0YUwQICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEJa2qtYQIwvui2UysqujBEUEQIsd
bADa8muVcOa6LM6b8TKVp1mfbVpTxqbNf/sMk2Rwd3AlN4gC4RyeHf5nlY2R+9F6
lmJTUujxFH/D6BIL9NQ=
-----END ENCRYPTED PRIVATE KEY-----
)";

std::string B64(std::string_view bytes) {
  return absl::WebSafeBase64Escape(absl::string_view(bytes.data(), bytes.size()));
}

std::string UnB64(std::string_view text) {
  std::string out;
  REQUIRE(absl::WebSafeBase64Unescape(absl::string_view(text.data(), text.size()), &out));
  return out;
}

std::vector<std::string> Segments(const std::string& token) { return absl::StrSplit(token, '.'); }

std::string Join(const std::vector<std::string>& segments) {
  std::string out;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out += '.';
    out += segments[i];
  }
  return out;
}

Ed25519Key NewKey() {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  return *key;
}

AccessClaims FullClaims(absl::Time now) {
  AccessClaims claims;
  claims.iss = kIssuer;
  claims.sub = NewUuid();
  claims.aud = kAudience;
  claims.jti = NewUuid();
  claims.tid = NewUuid();
  claims.sid = NewUuid();
  claims.iat = now;
  claims.nbf = now;
  claims.exp = now + absl::Minutes(15);
  claims.roles = {"agent", "supervisor", "reporting"};
  claims.perms = {"calls.read:team",      "calls.write:self",     "queues.read:tenant",
                  "recordings.read:team", "contacts.read:tenant", "contacts.write:team",
                  "agents.status:self",   "reports.read:team"};
  claims.amr = "pwd+otp";
  return claims;
}

void RequireRejected(const absl::StatusOr<AccessClaims>& result, std::string_view reason) {
  INFO("status: " << result.status());
  REQUIRE(result.status().code() == absl::StatusCode::kUnauthenticated);
  REQUIRE(std::string(result.status().message()) == reason);
}

// A verifier for kIssuer/kAudience that trusts `key` as "k1", with a fake clock and its own
// signer; Resign edits a signed token's JSON and signs it again with the real key, to reach the
// checks that come after the signature.
struct Fixture {
  explicit Fixture(size_t cache_capacity = 1000)
      : key(NewKey()),
        signer("k1", key),
        verifier(
            JwtVerifierOptions{
                .issuer = kIssuer, .audience = kAudience, .cache_capacity = cache_capacity},
            clock) {
    verifier.SetKeys({{"k1", key.PublicOnly()}});
  }

  std::string Sign(const AccessClaims& claims) {
    absl::StatusOr<std::string> token = signer.Sign(claims);
    REQUIRE(token.ok());
    return *token;
  }
  std::string Token() { return Sign(FullClaims(clock.Now())); }

  std::string Craft(const std::string& header, const std::string& payload) {
    const std::string input = B64(header) + "." + B64(payload);
    absl::StatusOr<std::string> signature = key.Sign(input);
    REQUIRE(signature.ok());
    return input + "." + B64(*signature);
  }
  std::string Resign(const std::function<void(Json& header, Json& payload)>& edit) {
    const std::vector<std::string> parts = Segments(Token());
    Json header = Json::parse(UnB64(parts[0]));
    Json payload = Json::parse(UnB64(parts[1]));
    edit(header, payload);
    return Craft(header.dump(), payload.dump());
  }
  std::string EditPayload(const std::function<void(Json& payload)>& edit) {
    return Resign([&](Json&, Json& payload) { edit(payload); });
  }
  std::string EditHeader(const std::function<void(Json& header)>& edit) {
    return Resign([&](Json& header, Json&) { edit(header); });
  }

  FakeClock clock;
  Ed25519Key key;
  JwtSigner signer;
  JwtVerifier verifier;
};

// ---- keys -----------------------------------------------------------------------------------

TEST_CASE("Ed25519Key signs 64-byte signatures that only its public half verifies", "[auth]") {
  const Ed25519Key key = NewKey();
  REQUIRE(key.has_private());
  const absl::StatusOr<std::string> signature = key.Sign("hello");
  REQUIRE(signature.ok());
  REQUIRE(signature->size() == 64);
  REQUIRE(key.Verify("hello", *signature));
  REQUIRE(key.PublicOnly().Verify("hello", *signature));
  REQUIRE_FALSE(key.Verify("hellO", *signature));
  REQUIRE_FALSE(key.Verify("hello", signature->substr(0, 63)));
  REQUIRE_FALSE(key.Verify("hello", *signature + "x"));
  REQUIRE_FALSE(key.Verify("hello", ""));
  REQUIRE_FALSE(NewKey().Verify("hello", *signature));
  REQUIRE(key.PublicBytes().size() == 32);
}

TEST_CASE("Ed25519Key round-trips through private and public PEM", "[auth]") {
  const Ed25519Key key = NewKey();
  const absl::StatusOr<std::string> private_pem = key.PrivatePem();
  REQUIRE(private_pem.ok());
  REQUIRE(private_pem->rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  REQUIRE(key.PublicPem().rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);

  const absl::StatusOr<Ed25519Key> reloaded = Ed25519Key::FromPrivatePem(*private_pem);
  REQUIRE(reloaded.ok());
  REQUIRE(reloaded->has_private());
  REQUIRE(reloaded->PrivatePem().value() == *private_pem);
  REQUIRE(reloaded->PublicPem() == key.PublicPem());
  REQUIRE(key.Verify("data", reloaded->Sign("data").value()));

  const absl::StatusOr<Ed25519Key> public_key = Ed25519Key::FromPublicPem(key.PublicPem());
  REQUIRE(public_key.ok());
  REQUIRE_FALSE(public_key->has_private());
  REQUIRE(public_key->PublicPem() == key.PublicPem());
  REQUIRE(public_key->PublicBytes() == key.PublicBytes());
  REQUIRE(public_key->Verify("data", key.Sign("data").value()));
  REQUIRE(public_key->PrivatePem().status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(public_key->Sign("data").status().code() == absl::StatusCode::kFailedPrecondition);

  const absl::StatusOr<Ed25519Key> from_bytes = Ed25519Key::FromPublicBytes(key.PublicBytes());
  REQUIRE(from_bytes.ok());
  REQUIRE(from_bytes->PublicPem() == key.PublicPem());

  const Ed25519Key public_only = key.PublicOnly();
  REQUIRE_FALSE(public_only.has_private());
  REQUIRE(public_only.PublicPem() == key.PublicPem());
  REQUIRE(public_only.PrivatePem().status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Ed25519Key refuses PEM that is not an Ed25519 key of the right kind", "[auth]") {
  const Ed25519Key key = NewKey();
  const auto invalid = absl::StatusCode::kInvalidArgument;
  REQUIRE(Ed25519Key::FromPrivatePem("").status().code() == invalid);
  REQUIRE(Ed25519Key::FromPrivatePem("garbage").status().code() == invalid);
  REQUIRE(Ed25519Key::FromPrivatePem(key.PublicPem()).status().code() == invalid);
  REQUIRE(Ed25519Key::FromPublicPem(key.PrivatePem().value()).status().code() == invalid);
  REQUIRE(Ed25519Key::FromPublicPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
              .status()
              .code() == invalid);
  const absl::StatusOr<Ed25519Key> ec = Ed25519Key::FromPrivatePem(kEcPrivatePem);
  REQUIRE(ec.status().code() == invalid);
  REQUIRE(ec.status().message() == "not an Ed25519 key");
  REQUIRE(Ed25519Key::FromPrivatePem(kEncryptedPrivatePem).status().code() == invalid);
  REQUIRE(Ed25519Key::FromPublicBytes("short").status().code() == invalid);
}

// ---- signing and round trip -------------------------------------------------------------------

TEST_CASE("a signed token verifies back to every claim", "[auth]") {
  const size_t capacity = GENERATE(0, 1000);
  Fixture f(capacity);
  AccessClaims claims = FullClaims(f.clock.Now());
  claims.rst = true;
  const std::string token = f.Sign(claims);

  for (int pass = 0; pass < 2; ++pass) {  // the second one is a cache hit when there is a cache
    const absl::StatusOr<AccessClaims> verified = f.verifier.Verify(token);
    REQUIRE(verified.ok());
    REQUIRE(*verified == claims);
  }

  const std::vector<std::string> parts = Segments(token);
  REQUIRE(parts.size() == 3);
  REQUIRE(UnB64(parts[0]) == R"({"alg":"EdDSA","typ":"at+jwt","kid":"k1"})");
  const Json payload = Json::parse(UnB64(parts[1]));
  REQUIRE(payload["exp"] == absl::ToUnixSeconds(claims.exp));
  REQUIRE(payload["iat"] == absl::ToUnixSeconds(claims.iat));
  REQUIRE(payload["nbf"] == absl::ToUnixSeconds(claims.nbf));
  REQUIRE(payload["rst"] == true);
  REQUIRE(UnB64(parts[1]).find(' ') == std::string::npos);  // compact
  REQUIRE(token.find('=') == std::string::npos);
}

TEST_CASE("optional claims are left out when empty and read back empty", "[auth]") {
  Fixture f;
  AccessClaims claims = FullClaims(f.clock.Now());
  claims.sid.clear();
  claims.amr.clear();
  claims.roles.clear();
  claims.perms.clear();
  const std::string token = f.Sign(claims);
  const Json payload = Json::parse(UnB64(Segments(token)[1]));
  REQUIRE_FALSE(payload.contains("sid"));
  REQUIRE_FALSE(payload.contains("amr"));
  REQUIRE_FALSE(payload.contains("rst"));
  REQUIRE(f.verifier.Verify(token).value() == claims);

  // Without nbf the token is valid from iat on.
  const std::string no_nbf = f.EditPayload([](Json& p) { p.erase("nbf"); });
  const absl::StatusOr<AccessClaims> verified = f.verifier.Verify(no_nbf);
  REQUIRE(verified.ok());
  REQUIRE(verified->nbf == verified->iat);
}

TEST_CASE("JwtSigner refuses what it cannot sign", "[auth]") {
  FakeClock clock;
  const Ed25519Key key = NewKey();
  const AccessClaims claims = FullClaims(clock.Now());
  REQUIRE(JwtSigner("k1", key.PublicOnly()).Sign(claims).status().code() ==
          absl::StatusCode::kFailedPrecondition);
  REQUIRE(JwtSigner("", key).Sign(claims).status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(JwtSigner("k\xff", key).Sign(claims).status().code() ==
          absl::StatusCode::kInvalidArgument);

  const JwtSigner signer("k1", key);
  REQUIRE(signer.key_id() == "k1");
  for (std::string AccessClaims::*field :
       {&AccessClaims::iss, &AccessClaims::sub, &AccessClaims::aud, &AccessClaims::jti,
        &AccessClaims::tid}) {
    AccessClaims missing = claims;
    missing.*field = "";
    REQUIRE(signer.Sign(missing).status().code() == absl::StatusCode::kInvalidArgument);
  }
  AccessClaims bad_utf8 = claims;
  bad_utf8.perms.push_back("calls.read:\xc3");
  REQUIRE(signer.Sign(bad_utf8).status().code() == absl::StatusCode::kInvalidArgument);
  AccessClaims forever = claims;
  forever.exp = absl::InfiniteFuture();
  REQUIRE(signer.Sign(forever).status().code() == absl::StatusCode::kInvalidArgument);
}

// ---- rejections -------------------------------------------------------------------------------

TEST_CASE("tampered tokens fail the signature check", "[auth]") {
  const size_t capacity = GENERATE(0, 1000);
  Fixture f(capacity);
  const std::string token = f.Token();
  REQUIRE(f.verifier.Verify(token).ok());  // cached, when there is a cache
  std::vector<std::string> parts = Segments(token);

  SECTION("a claim flipped, signature kept") {
    Json payload = Json::parse(UnB64(parts[1]));
    payload["perms"].push_back("tenant.admin:tenant");
    parts[1] = B64(payload.dump());
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");  // and not cached
  }
  SECTION("a bit of the signature flipped") {
    std::string signature = UnB64(parts[2]);
    signature[10] ^= 0x01;
    parts[2] = B64(signature);
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");
  }
  SECTION("a signature one byte short") {
    parts[2] = B64(UnB64(parts[2]).substr(0, 63));
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");
  }
  SECTION("signed by another key under the same kid") {
    const JwtSigner impostor("k1", NewKey());
    const std::string forged = impostor.Sign(FullClaims(f.clock.Now())).value();
    RequireRejected(f.verifier.Verify(forged), "bad signature");
  }
  SECTION("the signature of another token") {
    parts[2] = Segments(f.Token())[2];
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");
  }
}

TEST_CASE("only EdDSA is accepted, whatever the token carries", "[auth]") {
  Fixture f;
  const std::string payload = UnB64(Segments(f.Token())[1]);

  SECTION("alg none with an empty signature") {
    const std::string token =
        B64(R"({"alg":"none","typ":"at+jwt","kid":"k1"})") + "." + B64(payload) + ".";
    RequireRejected(f.verifier.Verify(token), "algorithm 'none' not allowed");
    const std::string no_kid = B64(R"({"alg":"none"})") + "." + B64(payload) + ".";
    RequireRejected(f.verifier.Verify(no_kid), "algorithm 'none' not allowed");
  }
  SECTION("HS256 keyed with the public key (algorithm confusion)") {
    const std::string input =
        B64(R"({"alg":"HS256","typ":"at+jwt","kid":"k1"})") + "." + B64(payload);
    for (const std::string& secret : {f.key.PublicPem(), f.key.PublicBytes()}) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_size = 0;
      REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                   reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                   &mac_size) != nullptr);
      const std::string token =
          input + "." + B64(std::string(reinterpret_cast<const char*>(mac), mac_size));
      RequireRejected(f.verifier.Verify(token), "algorithm 'HS256' not allowed");
    }
  }
  SECTION("other algorithms, even correctly signed with our key") {
    for (const char* alg :
         {"RS256", "ES256", "PS256", "HS512", "None", "NONE", "eddsa", "Ed25519"}) {
      const std::string token = f.EditHeader([&](Json& h) { h["alg"] = alg; });
      RequireRejected(f.verifier.Verify(token), std::string("algorithm '") + alg + "' not allowed");
    }
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h["alg"] = "EdDSA\n"; })),
                    "algorithm not allowed");
  }
  SECTION("alg missing or not a string") {
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h.erase("alg"); })),
                    "malformed token: header has no alg");
    RequireRejected(
        f.verifier.Verify(f.EditHeader([](Json& h) { h["alg"] = Json::array({"EdDSA"}); })),
        "malformed token: alg is not a string");
  }
  SECTION("crit extensions are refused") {
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h["crit"] = {"exp"}; })),
                    "malformed token: unsupported crit header");
  }
}

TEST_CASE("the header must say at+jwt and name a current key", "[auth]") {
  Fixture f;
  SECTION("wrong or missing typ") {
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h["typ"] = "JWT"; })),
                    "wrong token type");
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h.erase("typ"); })),
                    "wrong token type");
  }
  SECTION("unknown or missing kid") {
    const JwtSigner other("k2", f.key);
    RequireRejected(f.verifier.Verify(other.Sign(FullClaims(f.clock.Now())).value()),
                    "unknown key id");
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h.erase("kid"); })),
                    "malformed token: header has no kid");
    RequireRejected(f.verifier.Verify(f.EditHeader([](Json& h) { h["kid"] = 1; })),
                    "malformed token: kid is not a non-empty string");
  }
  SECTION("a key past its not_after") {
    AccessClaims claims = FullClaims(f.clock.Now());
    claims.exp = f.clock.Now() + absl::Hours(2);
    const std::string token = f.Sign(claims);
    f.verifier.SetKeys({{"k1", f.key.PublicOnly(), f.clock.Now() + absl::Hours(1)}});
    REQUIRE(f.verifier.Verify(token).ok());
    f.clock.Advance(absl::Hours(1));
    RequireRejected(f.verifier.Verify(token), "signing key retired");  // a cache hit
    claims.iat = claims.nbf = f.clock.Now();
    RequireRejected(f.verifier.Verify(f.Sign(claims)), "signing key retired");  // a fresh one
  }
  SECTION("no keys at all") {
    f.verifier.SetKeys({});
    RequireRejected(f.verifier.Verify(f.Token()), "unknown key id");
  }
}

TEST_CASE("dates are checked with the configured leeway", "[auth]") {
  const size_t capacity = GENERATE(0, 1000);
  Fixture f(capacity);
  const absl::Time now = f.clock.Now();

  SECTION("expired, and accepted within leeway") {
    AccessClaims claims = FullClaims(now);
    claims.exp = now + absl::Minutes(1);
    const std::string token = f.Sign(claims);
    REQUIRE(f.verifier.Verify(token).ok());
    f.clock.Advance(absl::Minutes(1) + absl::Seconds(29));
    REQUIRE(f.verifier.Verify(token).ok());
    f.clock.Advance(absl::Seconds(1));
    RequireRejected(f.verifier.Verify(token), "token expired");
  }
  SECTION("nbf in the future") {
    AccessClaims claims = FullClaims(now);
    claims.nbf = now + absl::Seconds(31);
    const std::string token = f.Sign(claims);
    RequireRejected(f.verifier.Verify(token), "token not yet valid");
    f.clock.Advance(absl::Seconds(1));  // the failure was not cached
    REQUIRE(f.verifier.Verify(token).ok());
  }
  SECTION("iat in the future") {
    AccessClaims claims = FullClaims(now);
    claims.iat = now + absl::Seconds(31);
    RequireRejected(f.verifier.Verify(f.Sign(claims)), "token issued in the future");
    claims.iat = now + absl::Seconds(30);
    REQUIRE(f.verifier.Verify(f.Sign(claims)).ok());
  }
  SECTION("a clock that steps back past iat on a cached token") {
    const std::string token = f.Token();
    REQUIRE(f.verifier.Verify(token).ok());
    f.clock.Set(now - absl::Minutes(5));
    RequireRejected(f.verifier.Verify(token), "token issued in the future");
  }
}

TEST_CASE("a zero leeway is exact", "[auth]") {
  FakeClock clock;
  const Ed25519Key key = NewKey();
  JwtVerifier verifier({.issuer = kIssuer, .audience = kAudience, .leeway = absl::ZeroDuration()},
                       clock);
  verifier.SetKeys({{"k1", key}});
  AccessClaims claims = FullClaims(clock.Now());
  claims.exp = clock.Now() + absl::Seconds(1);
  const std::string token = JwtSigner("k1", key).Sign(claims).value();
  REQUIRE(verifier.Verify(token).ok());
  clock.Advance(absl::Seconds(1));
  RequireRejected(verifier.Verify(token), "token expired");
}

TEST_CASE("issuer, audience and required claims are checked", "[auth]") {
  Fixture f;
  SECTION("wrong issuer") {
    AccessClaims claims = FullClaims(f.clock.Now());
    claims.iss = "https://evil.test";
    RequireRejected(f.verifier.Verify(f.Sign(claims)), "wrong issuer");
    RequireRejected(f.verifier.Verify(f.EditPayload([](Json& p) { p.erase("iss"); })),
                    "malformed token: missing claim 'iss'");
  }
  SECTION("wrong audience") {
    AccessClaims claims = FullClaims(f.clock.Now());
    claims.aud = "billing";
    RequireRejected(f.verifier.Verify(f.Sign(claims)), "wrong audience");
  }
  SECTION("audience arrays") {
    const absl::StatusOr<AccessClaims> ours = f.verifier.Verify(f.EditPayload([](Json& p) {
      p["aud"] = {"billing", kAudience};
    }));
    REQUIRE(ours.ok());
    REQUIRE(ours->aud == kAudience);
    RequireRejected(f.verifier.Verify(f.EditPayload([](Json& p) {
      p["aud"] = {"a", "b"};
    })),
                    "wrong audience");
    RequireRejected(f.verifier.Verify(f.EditPayload([](Json& p) { p["aud"] = Json::array(); })),
                    "wrong audience");
    RequireRejected(f.verifier.Verify(f.EditPayload([](Json& p) {
      p["aud"] = {kAudience, 7};
    })),
                    "malformed token: claim 'aud' holds a non-string");
    RequireRejected(f.verifier.Verify(f.EditPayload([](Json& p) { p["aud"] = 7; })),
                    "malformed token: claim 'aud' is not a string or array");
  }
  SECTION("missing or empty sub, tid, jti, and missing exp, iat") {
    for (const char* name : {"sub", "tid", "jti", "exp", "iat", "aud"}) {
      RequireRejected(f.verifier.Verify(f.EditPayload([&](Json& p) { p.erase(name); })),
                      std::string("malformed token: missing claim '") + name + "'");
    }
    for (const char* name : {"sub", "tid", "jti"}) {
      RequireRejected(f.verifier.Verify(f.EditPayload([&](Json& p) { p[name] = ""; })),
                      std::string("malformed token: missing claim '") + name + "'");
    }
  }
  SECTION("claims of the wrong JSON type") {
    const auto check = [&](const char* name, Json value, const std::string& reason) {
      INFO(name << " = " << value.dump());
      RequireRejected(f.verifier.Verify(f.EditPayload([&](Json& p) { p[name] = value; })),
                      "malformed token: " + reason);
    };
    check("sub", 42, "claim 'sub' is not a string");
    check("tid", nullptr, "claim 'tid' is not a string");
    check("sid", Json::array({"x"}), "claim 'sid' is not a string");
    check("amr", false, "claim 'amr' is not a string");
    check("exp", "2030-01-01", "claim 'exp' is not a number");
    check("iat", -1, "claim 'iat' is out of range");
    check("nbf", 1e300, "claim 'nbf' is out of range");
    check("exp", 18446744073709551615ull, "claim 'exp' is out of range");
    check("roles", "admin", "claim 'roles' is not an array");
    check("perms", Json::array({"calls.read:team", 1}), "claim 'perms' holds a non-string");
    check("rst", "true", "claim 'rst' is not a boolean");
  }
  SECTION("a payload that is not an object") {
    const std::string header = R"({"alg":"EdDSA","typ":"at+jwt","kid":"k1"})";
    RequireRejected(f.verifier.Verify(f.Craft(header, "[1,2]")),
                    "malformed token: payload is not a JSON object");
    RequireRejected(f.verifier.Verify(f.Craft(header, "{\"iss\":")),
                    "malformed token: payload is not JSON");
  }
  SECTION("fractional dates are accepted") {
    const std::string token = f.EditPayload([&](Json& p) {
      p["exp"] = static_cast<double>(absl::ToUnixSeconds(f.clock.Now())) + 60.5;
    });
    const absl::StatusOr<AccessClaims> claims = f.verifier.Verify(token);
    REQUIRE(claims.ok());
    REQUIRE(claims->exp == f.clock.Now() + absl::Seconds(60.5));
  }
}

TEST_CASE("token syntax is checked strictly", "[auth]") {
  Fixture f;
  const std::string token = f.Token();
  std::vector<std::string> parts = Segments(token);
  const std::string segments = "malformed token: expected three dot-separated segments";

  RequireRejected(f.verifier.Verify(""), segments);
  RequireRejected(f.verifier.Verify(parts[0] + "." + parts[1]), segments);
  RequireRejected(f.verifier.Verify(token + ".x"), segments);
  RequireRejected(f.verifier.Verify(token + "."), segments);
  RequireRejected(f.verifier.Verify(".."), "malformed token: header is not JSON");

  RequireRejected(f.verifier.Verify(Join({parts[0] + "=", parts[1], parts[2]})),
                  "malformed token: header is not unpadded base64url");
  RequireRejected(f.verifier.Verify(Join({parts[0], parts[1], parts[2] + "=="})),
                  "malformed token: signature is not unpadded base64url");
  std::string plus = parts[1];
  plus[3] = '+';
  RequireRejected(f.verifier.Verify(Join({parts[0], plus, parts[2]})),
                  "malformed token: payload is not unpadded base64url");
  std::string slash = parts[2];
  slash[5] = '/';
  RequireRejected(f.verifier.Verify(Join({parts[0], parts[1], slash})),
                  "malformed token: signature is not unpadded base64url");
  RequireRejected(f.verifier.Verify(Join({parts[0], parts[1] + " ", parts[2]})),
                  "malformed token: payload is not unpadded base64url");
  // 86 characters carry 64 bytes with 4 bits to spare; setting a spare bit must not yield the same
  // signature under a different spelling.
  REQUIRE(parts[2].size() == 86);
  std::string spare = parts[2];
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  spare.back() = alphabet[alphabet.find(spare.back()) | 1];
  RequireRejected(f.verifier.Verify(Join({parts[0], parts[1], spare})),
                  "malformed token: signature is not unpadded base64url");
  // A length that no byte count encodes (4n+1 characters), and one that does but is not 64 bytes.
  RequireRejected(f.verifier.Verify(Join({parts[0], parts[1], parts[2] + "AAA"})),
                  "malformed token: signature is not unpadded base64url");
  RequireRejected(f.verifier.Verify(Join({parts[0], parts[1], parts[2] + "A"})), "bad signature");

  RequireRejected(f.verifier.Verify(Join({B64("not json"), parts[1], parts[2]})),
                  "malformed token: header is not JSON");
  RequireRejected(f.verifier.Verify(Join({B64(R"(["alg","EdDSA"])"), parts[1], parts[2]})),
                  "malformed token: header is not a JSON object");
  RequireRejected(f.verifier.Verify(Join({B64("\"EdDSA\""), parts[1], parts[2]})),
                  "malformed token: header is not a JSON object");
  RequireRejected(f.verifier.Verify(Join({B64("{\"alg\":\"EdDSA\"} x"), parts[1], parts[2]})),
                  "malformed token: header is not JSON");

  SECTION("oversized tokens are refused unread") {
    AccessClaims big = FullClaims(f.clock.Now());
    big.perms.assign(400, "calls.read:team");
    const std::string big_token = f.Sign(big);
    REQUIRE(big_token.size() > 8192);
    RequireRejected(f.verifier.Verify(big_token), "malformed token: too large");
    RequireRejected(f.verifier.Verify(std::string(8193, 'A')), "malformed token: too large");
  }
}

TEST_CASE("a verifier without issuer or audience refuses to work", "[auth]") {
  FakeClock clock;
  JwtVerifier verifier({.audience = kAudience}, clock);
  REQUIRE(verifier.Verify("a.b.c").status().code() == absl::StatusCode::kFailedPrecondition);
}

// ---- cache ------------------------------------------------------------------------------------

TEST_CASE("a cached token is still checked against the clock and the key set", "[auth]") {
  Fixture f;
  const std::string token = f.Token();
  REQUIRE(f.verifier.Verify(token).ok());
  REQUIRE(f.verifier.Verify(token).ok());

  SECTION("rejected once the clock passes exp") {
    f.clock.Advance(absl::Minutes(15) + absl::Seconds(30));
    RequireRejected(f.verifier.Verify(token), "token expired");
  }
  SECTION("rejected after SetKeys removes its kid, accepted when it comes back") {
    const Ed25519Key next = NewKey();
    f.verifier.SetKeys({{"k2", next}});
    RequireRejected(f.verifier.Verify(token), "unknown key id");
    f.verifier.SetKeys({{"k2", next}, {"k1", f.key}});
    REQUIRE(f.verifier.Verify(token).ok());
  }
  SECTION("rejected after SetKeys binds its kid to another key") {
    f.verifier.SetKeys({{"k1", NewKey()}});
    RequireRejected(f.verifier.Verify(token), "bad signature");
  }
  SECTION("kept across a rotation that keeps its key") {
    f.verifier.SetKeys({{"k1", f.key.PublicOnly()}, {"k2", NewKey()}});
    REQUIRE(f.verifier.Verify(token).ok());
  }
  SECTION("a tampered copy of a cached token is not a hit") {
    std::vector<std::string> parts = Segments(token);
    Json payload = Json::parse(UnB64(parts[1]));
    payload["sub"] = NewUuid();
    parts[1] = B64(payload.dump());
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");
    RequireRejected(f.verifier.Verify(Join(parts)), "bad signature");
    REQUIRE(f.verifier.Verify(token).ok());
  }
}

TEST_CASE("failed verifications are not cached", "[auth]") {
  Fixture f;
  const JwtSigner later("k2", f.key);
  const std::string token = later.Sign(FullClaims(f.clock.Now())).value();
  RequireRejected(f.verifier.Verify(token), "unknown key id");
  f.verifier.SetKeys({{"k1", f.key}, {"k2", f.key}});
  REQUIRE(f.verifier.Verify(token).ok());
}

TEST_CASE("a small cache evicts and stays correct", "[auth]") {
  const size_t capacity = GENERATE(1, 5, 64);
  Fixture f(capacity);
  std::vector<std::string> tokens;
  for (int i = 0; i < 200; ++i) {
    AccessClaims claims = FullClaims(f.clock.Now());
    // Some expire early, so that sweeps find expired entries to drop first.
    if (i % 3 == 0) claims.exp = f.clock.Now() + absl::Minutes(1);
    tokens.push_back(f.Sign(claims));
  }
  for (int round = 0; round < 3; ++round) {
    for (const std::string& token : tokens) REQUIRE(f.verifier.Verify(token).ok());
    for (size_t i = 0; i < 10; ++i) REQUIRE(f.verifier.Verify(tokens[i]).ok());  // hot ones
  }
  f.clock.Advance(absl::Minutes(2));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const absl::StatusOr<AccessClaims> result = f.verifier.Verify(tokens[i]);
    if (i % 3 == 0) {
      RequireRejected(result, "token expired");
    } else {
      REQUIRE(result.ok());
    }
  }
}

TEST_CASE("Verify and SetKeys run concurrently", "[auth]") {
  Fixture f(/*cache_capacity=*/32);
  const Ed25519Key other = NewKey();
  std::vector<std::string> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back(f.Token());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (!f.verifier.Verify(tokens[(i * 7 + t) % tokens.size()]).ok()) ++failures;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    if (i % 2 == 0) {
      f.verifier.SetKeys({{"k1", f.key.PublicOnly()}, {"k2", other}});
    } else {
      f.verifier.SetKeys({{"k1", f.key.PublicOnly()}});
    }
  }
  for (std::thread& thread : threads) thread.join();
  REQUIRE(failures == 0);
}

// ---- fuzz -------------------------------------------------------------------------------------

TEST_CASE("random and mutated input never crashes and is never accepted", "[auth]") {
  Fixture f;
  const std::string token = f.Token();
  REQUIRE(f.verifier.Verify(token).ok());  // so that near-misses meet a cached neighbour
  std::mt19937 rng(20240501);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_..=+/ {}\":,";
  const auto check_rejected = [&](const std::string& input) {
    const absl::StatusOr<AccessClaims> result = f.verifier.Verify(input);
    INFO("input: " << absl::CEscape(input));
    REQUIRE(result.status().code() == absl::StatusCode::kUnauthenticated);
    // Short reasons that never carry the input back.
    REQUIRE(result.status().message().size() < 80);
  };

  for (int i = 0; i < 2000; ++i) {
    std::string input(rng() % 200, '\0');
    const bool bytes = i % 2 == 0;
    for (char& c : input) {
      c = bytes ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    check_rejected(input);
  }
  // Random headers and payloads in valid base64url around a real signature.
  const std::vector<std::string> parts = Segments(token);
  for (int i = 0; i < 500; ++i) {
    std::string json(rng() % 60, '\0');
    for (char& c : json) c = alphabet[rng() % alphabet.size()];
    check_rejected(Join({B64(json), parts[1], parts[2]}));
    check_rejected(Join({parts[0], B64(json), parts[2]}));
  }
  // Every position of the valid token, changed to a few other characters.
  for (size_t pos = 0; pos < token.size(); ++pos) {
    for (int j = 0; j < 3; ++j) {
      std::string mutated = token;
      const char original = mutated[pos];
      do {
        mutated[pos] = j == 0 ? alphabet[rng() % 64] : static_cast<char>(rng() % 256);
      } while (mutated[pos] == original);
      check_rejected(mutated);
    }
  }
  REQUIRE(f.verifier.Verify(token).ok());
}

}  // namespace
}  // namespace sb::auth
