// Digest authentication: RFC test vectors, the credentials parser, challenges, nonces and nonce
// counting.

#include "libs/sip/digest.h"

#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace sb::sip::digest {
namespace {

using Catch::Matchers::Contains;

// The message of the InvalidArgument that ParseCredentials returns, or what went wrong instead.
std::string ParseError(std::string_view value) {
  absl::StatusOr<Credentials> c = ParseCredentials(value);
  if (c.ok()) return "parsed";
  if (c.status().code() != absl::StatusCode::kInvalidArgument) return c.status().ToString();
  return std::string(c.status().message());
}

Credentials MustParse(std::string_view value) {
  absl::StatusOr<Credentials> c = ParseCredentials(value);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return *c;
}

// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
constexpr char kRfc7616Nonce[] = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
constexpr char kRfc7616Cnonce[] = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
constexpr char kRfc7616Md5Response[] = "8ca523f5e9506fed4657c9700eebdbec";
constexpr char kRfc7616Sha256Response[] =
    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1";

// A REGISTER as a SIP phone sends it.
constexpr char kRegister[] =
    "Digest username=\"101\", realm=\"demo.sip.localhost\", "
    "nonce=\"AAAAAGVTkYAvE2cKy0xOc2bPuB4fPu3kXTJd0ns6ZJQwjlxy\", uri=\"sip:demo.sip.localhost\", "
    "response=\"a09ee2b3dc1b6f7ab9b0c4c4cb2f2b3c2e4cc8a6f1e9d7c5b3a1908070605040\", "
    "algorithm=SHA-256, cnonce=\"x1y2z3\", qop=auth, nc=00000001, opaque=\"op\"";

TEST_CASE("Digest responses match the RFC 7616 example for MD5 and SHA-256", "[sip][digest]") {
  const std::string md5_ha1 =
      ComputeHa1(Algorithm::kMd5, "Mufasa", "http-auth@example.org", "Circle of Life");
  const std::string sha_ha1 =
      ComputeHa1(Algorithm::kSha256, "Mufasa", "http-auth@example.org", "Circle of Life");
  CHECK(sha_ha1 == "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232");
  CHECK(md5_ha1.size() == 32);

  CHECK(ComputeResponse(Algorithm::kMd5, md5_ha1, "GET", "/dir/index.html", kRfc7616Nonce,
                        "00000001", kRfc7616Cnonce, "auth") == kRfc7616Md5Response);
  CHECK(ComputeResponse(Algorithm::kSha256, sha_ha1, "GET", "/dir/index.html", kRfc7616Nonce,
                        "00000001", kRfc7616Cnonce, "auth") == kRfc7616Sha256Response);

  // The RFC's Authorization headers, as written there (one parameter a line, folded).
  const std::string sha_header = std::string(
                                     "Digest username=\"Mufasa\",\r\n"
                                     "    realm=\"http-auth@example.org\",\r\n"
                                     "    uri=\"/dir/index.html\",\r\n"
                                     "    algorithm=SHA-256,\r\n"
                                     "    nonce=\"") +
                                 kRfc7616Nonce +
                                 "\",\r\n"
                                 "    nc=00000001,\r\n"
                                 "    cnonce=\"" +
                                 kRfc7616Cnonce +
                                 "\",\r\n"
                                 "    qop=auth,\r\n"
                                 "    response=\"" +
                                 kRfc7616Sha256Response +
                                 "\",\r\n"
                                 "    opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
  const Credentials sha = MustParse(sha_header);
  CHECK(sha.username == "Mufasa");
  CHECK(sha.realm == "http-auth@example.org");
  CHECK(sha.uri == "/dir/index.html");
  CHECK(sha.algorithm == Algorithm::kSha256);
  CHECK(sha.nonce == kRfc7616Nonce);
  CHECK(sha.nc == "00000001");
  CHECK(sha.nonce_count == 1);
  CHECK(sha.cnonce == kRfc7616Cnonce);
  CHECK(sha.qop == "auth");
  CHECK(sha.response == kRfc7616Sha256Response);
  CHECK(sha.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS");
  CHECK(Verify(sha, "GET", sha_ha1));
  CHECK_FALSE(Verify(sha, "GET", md5_ha1));

  Credentials md5 = sha;
  md5.algorithm = Algorithm::kMd5;
  md5.response = kRfc7616Md5Response;
  CHECK(Verify(md5, "GET", md5_ha1));
  CHECK_FALSE(Verify(md5, "GET", sha_ha1));
}

TEST_CASE("Digest responses match the RFC 2617 example", "[sip][digest]") {
  const std::string ha1 =
      ComputeHa1(Algorithm::kMd5, "Mufasa", "testrealm@host.com", "Circle Of Life");
  CHECK(ha1 == "939e7578ed9e3c518a452acee763bce9");
  const Credentials c = MustParse(
      "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
      "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, "
      "nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
      "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");
  CHECK(c.algorithm == Algorithm::kMd5);  // no algorithm parameter: MD5
  CHECK(ComputeResponse(c.algorithm, ha1, "GET", c.uri, c.nonce, c.nc, c.cnonce, c.qop) ==
        "6629fae49393a05397450978507c4ef1");
  CHECK(Verify(c, "GET", ha1));
  // HA1 in uppercase hex is the same HA1.
  std::string upper = ha1;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(Verify(c, "GET", upper));
}

TEST_CASE("Digest responses without qop use the RFC 2069 form", "[sip][digest]") {
  // Computed with Python's hashlib: H(HA1:nonce:HA2). (RFC 2069's own example response does not
  // reproduce, so it is not used here.)
  const std::string ha1 =
      ComputeHa1(Algorithm::kMd5, "Mufasa", "testrealm@host.com", "Circle Of Life");
  const Credentials c = MustParse(
      "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
      "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
      "response=\"670fd8c2df070c60b045671b8b24ff02\"");
  CHECK(c.qop.empty());
  CHECK(c.nonce_count == 0);
  CHECK(Verify(c, "GET", ha1));

  const std::string sha_ha1 = ComputeHa1(Algorithm::kSha256, "101", "demo.sip.localhost", "s3cret");
  CHECK(ComputeResponse(Algorithm::kSha256, sha_ha1, "REGISTER", "sip:demo.sip.localhost", "abc",
                        "", "",
                        "") == "3229acd23dde5e71a1d34dd66454831ed7085acbec2bfe7e5c1a27b31e4490c9");
}

TEST_CASE("Verify fails for a wrong password or a changed request", "[sip][digest]") {
  const std::string realm = "demo.sip.localhost";
  const std::string ha1 = ComputeHa1(Algorithm::kSha256, "101", realm, "right-password");
  Credentials c;
  c.username = "101";
  c.realm = realm;
  c.nonce = "n1";
  c.uri = "sip:demo.sip.localhost";
  c.algorithm = Algorithm::kSha256;
  c.qop = "auth";
  c.cnonce = "c1";
  c.nc = "00000002";
  c.nonce_count = 2;
  c.response =
      ComputeResponse(Algorithm::kSha256, ha1, "REGISTER", c.uri, c.nonce, c.nc, c.cnonce, c.qop);
  REQUIRE(Verify(c, "REGISTER", ha1));

  CHECK_FALSE(Verify(c, "REGISTER", ComputeHa1(Algorithm::kSha256, "101", realm, "wrong")));
  CHECK_FALSE(Verify(c, "INVITE", ha1));
  CHECK_FALSE(Verify(c, "REGISTER", ""));
  for (auto change : std::vector<void (*)(Credentials&)>{
           [](Credentials& x) { x.uri = "sip:other.localhost"; },
           [](Credentials& x) { x.nonce = "n2"; },
           [](Credentials& x) { x.nc = "00000003"; },
           [](Credentials& x) { x.cnonce = "c2"; },
           [](Credentials& x) { x.qop = ""; },
           [](Credentials& x) { x.response.pop_back(); },
           [](Credentials& x) { x.response += "0"; },
           [](Credentials& x) { x.response[10] = x.response[10] == '0' ? '1' : '0'; },
       }) {
    Credentials changed = c;
    change(changed);
    CHECK_FALSE(Verify(changed, "REGISTER", ha1));
  }

  // Uppercase hex from the client is the same response.
  Credentials upper = c;
  for (char& ch : upper.response) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  CHECK(Verify(upper, "REGISTER", ha1));
  std::string header = std::string("Digest username=\"101\", realm=\"") + realm +
                       "\", nonce=\"n1\", uri=\"sip:demo.sip.localhost\", algorithm=SHA-256, "
                       "qop=auth, nc=00000002, cnonce=\"c1\", response=\"" +
                       upper.response + "\"";
  const Credentials parsed = MustParse(header);
  CHECK(parsed.response == c.response);  // lowercased
  CHECK(Verify(parsed, "REGISTER", ha1));
}

TEST_CASE("ParseCredentials reads a phone's REGISTER credentials", "[sip][digest]") {
  const Credentials c = MustParse(kRegister);
  CHECK(c.username == "101");
  CHECK(c.realm == "demo.sip.localhost");
  CHECK(c.nonce == "AAAAAGVTkYAvE2cKy0xOc2bPuB4fPu3kXTJd0ns6ZJQwjlxy");
  CHECK(c.uri == "sip:demo.sip.localhost");
  CHECK(c.response == "a09ee2b3dc1b6f7ab9b0c4c4cb2f2b3c2e4cc8a6f1e9d7c5b3a1908070605040");
  CHECK(c.algorithm == Algorithm::kSha256);
  CHECK(c.cnonce == "x1y2z3");
  CHECK(c.qop == "auth");
  CHECK(c.nc == "00000001");
  CHECK(c.nonce_count == 1);
  CHECK(c.opaque == "op");
}

TEST_CASE("ParseCredentials tolerates case whitespace and list oddities", "[sip][digest]") {
  const std::string md5 = "6629fae49393a05397450978507c4ef1";
  // Scheme and parameter names in any case, algorithm and qop in any case, spaces and tabs around
  // '=' and ',', leading and trailing whitespace, empty list elements, a trailing comma.
  const Credentials c = MustParse(
      " \t dIgEsT\tUserName = \"bob\" ,,REALM=\"r\"\t,  Nonce=\"n\",URI=\"sip:r\" ,"
      " Response=\"" +
      md5 + "\", ALGORITHM=md5, QOP=Auth, NC=0000000A, CNonce=\"c\",  ");
  CHECK(c.username == "bob");
  CHECK(c.realm == "r");
  CHECK(c.nonce == "n");
  CHECK(c.uri == "sip:r");
  CHECK(c.algorithm == Algorithm::kMd5);
  CHECK(c.qop == "Auth");  // as sent: it enters the hash
  CHECK(c.nc == "0000000A");
  CHECK(c.nonce_count == 10);
  CHECK(c.opaque.empty());

  // Token values where quotes are expected, and quotes where tokens are expected.
  const Credentials t =
      MustParse("Digest username=bob, realm=r, nonce=n, uri=\"sip:r\", response=" + md5 +
                ", algorithm=\"MD5\", qop=\"auth\", nc=\"ffffffff\", "
                "cnonce=c");
  CHECK(t.username == "bob");
  CHECK(t.nonce_count == 0xffffffffu);
  CHECK(t.qop == "auth");

  // Folded lines (CRLF then SP or HTAB) count as whitespace.
  const Credentials f = MustParse(
      "Digest\r\n username=\"bob\",\r\n\trealm=\"r\", nonce=\"n\""
      "\r\n ,uri=\"u\", response=\"" +
      md5 + "\"");
  CHECK(f.username == "bob");
  CHECK(f.uri == "u");

  // Unknown parameters (auth-param extensions) are skipped, quoted or not.
  const Credentials u = MustParse(
      "Digest username=\"bob\", realm=\"r\", x-ext=\"a,b\\\"c\", "
      "nonce=\"n\", uri=\"u\", response=\"" +
      md5 + "\", charset=UTF-8, userhash=false");
  CHECK(u.nonce == "n");
}

TEST_CASE("ParseCredentials undoes quoted-string escapes", "[sip][digest]") {
  const std::string md5 = "6629fae49393a05397450978507c4ef1";
  const Credentials c = MustParse(
      "Digest username=\"a\\\"b\\\\c\\d\", realm=\"semi;colon, comma=equals\", nonce=\"n\", "
      "uri=\"sip:x@y;transport=tcp\", response=\"" +
      md5 + "\", opaque=\"\"");
  CHECK(c.username == "a\"b\\cd");
  CHECK(c.realm == "semi;colon, comma=equals");
  CHECK(c.uri == "sip:x@y;transport=tcp");
  CHECK(c.opaque.empty());
  // UTF-8 inside quotes is kept as is.
  CHECK(MustParse("Digest username=\"J\xC3\xB6rg\", realm=\"r\", nonce=\"n\", uri=\"u\", "
                  "response=\"" +
                  md5 + "\"")
            .username == "J\xC3\xB6rg");
}

TEST_CASE("ParseCredentials rejects malformed values naming the problem", "[sip][digest]") {
  const std::string ok_rest =
      "realm=\"r\", nonce=\"n\", uri=\"u\", response=\"6629fae49393a05397450978507c4ef1\"";
  const std::string ok = "Digest username=\"bob\", " + ok_rest;
  REQUIRE(ParseError(ok) == "parsed");

  // Scheme and syntax.
  CHECK_THAT(ParseError(""), Contains("scheme is not Digest"));
  CHECK_THAT(ParseError("Basic Ym9iOnNlY3JldA=="), Contains("scheme is not Digest"));
  CHECK_THAT(ParseError("Digest"), Contains("expected parameters after Digest"));
  CHECK_THAT(ParseError("Digest,username=\"bob\""), Contains("expected parameters after Digest"));
  CHECK_THAT(ParseError("Digestusername=\"bob\""), Contains("scheme is not Digest"));
  CHECK_THAT(ParseError("Digest   "), Contains("missing username"));
  CHECK_THAT(ParseError("Digest username"), Contains("expected '=' after username"));
  CHECK_THAT(ParseError("Digest username \"bob\""), Contains("expected '=' after username"));
  CHECK_THAT(ParseError("Digest username=, " + ok_rest), Contains("username has no value"));
  CHECK_THAT(ParseError("Digest username="), Contains("username has no value"));
  CHECK_THAT(ParseError("Digest username=\"bob"),
             Contains("unterminated quoted value of username"));
  CHECK_THAT(ParseError("Digest username=\"bob\\"),
             Contains("unterminated quoted value of username"));
  CHECK_THAT(ParseError("Digest username=\"bob\" realm=\"r\""),
             Contains("expected ',' after username"));
  CHECK_THAT(ParseError("Digest uri=sip:r, username=\"bob\""), Contains("expected ',' after uri"));
  CHECK_THAT(ParseError("Digest =\"bob\""), Contains("expected a parameter name at byte 7"));
  CHECK_THAT(ParseError("Digest username=\"bob\", \"x\""),
             Contains("expected a parameter name at byte 23"));

  // Control characters, also escaped or quoted; bare CR or LF (not a folded line).
  CHECK_THAT(ParseError(std::string("Digest username=\"b\0b\", ", 23) + ok_rest),
             Contains("control character at byte 18"));
  CHECK_THAT(ParseError("Digest username=\"b\\\x01"
                        "b\", " +
                        ok_rest),
             Contains("control character at byte 19"));
  CHECK_THAT(ParseError("Digest username=\"bob\",\n realm=\"r\""), Contains("control character"));
  CHECK_THAT(ParseError("Digest username=\"bob\",\r realm=\"r\""), Contains("control character"));
  CHECK_THAT(ParseError("Digest username=\"bob\",\r\nrealm=\"r\""), Contains("control character"));
  CHECK_THAT(ParseError("Digest username=\"bob\"\r\n"), Contains("control character"));
  CHECK_THAT(ParseError("Digest username=\"b\x7f\", " + ok_rest), Contains("control character"));
  CHECK_THAT(ParseError("Digest username=\"b\r\n ob\", " + ok_rest),
             Contains("line break inside the quoted value of username"));

  // Lengths.
  const std::string long_value(kMaxParamBytes + 1, 'a');
  CHECK(ParseError("Digest username=\"" + std::string(kMaxParamBytes, 'a') + "\", " + ok_rest) ==
        "parsed");
  CHECK_THAT(ParseError("Digest username=\"" + long_value + "\", " + ok_rest),
             Contains("username is longer than 256 bytes"));
  CHECK_THAT(ParseError("Digest username=" + long_value + ", " + ok_rest),
             Contains("username is longer than 256 bytes"));
  CHECK_THAT(ParseError("Digest x" + long_value + "=1, " + ok),
             Contains("parameter name longer than 256 bytes"));
  std::string padded = ok + ", ";
  padded += std::string(kMaxCredentialsBytes - padded.size(), ' ');
  CHECK(ParseError(padded) == "parsed");
  CHECK_THAT(ParseError(padded + " "), Contains("longer than 4096 bytes"));

  // Duplicates, known (in any case) and unknown.
  CHECK_THAT(ParseError(ok + ", nonce=\"m\""), Contains("duplicate parameter nonce"));
  CHECK_THAT(ParseError(ok + ", NONCE=m"), Contains("duplicate parameter nonce"));
  CHECK_THAT(ParseError(ok + ", x=1, X=2"), Contains("duplicate parameter"));
  std::string many = ok;
  for (int i = 0; i < 17; ++i) many += ", x" + std::to_string(i) + "=1";
  CHECK_THAT(ParseError(many), Contains("more than 16 unknown parameters"));

  // Missing or empty required parameters.
  CHECK_THAT(ParseError("Digest " + ok_rest), Contains("missing username"));
  CHECK_THAT(ParseError("Digest username=\"\", " + ok_rest), Contains("username is empty"));
  CHECK_THAT(ParseError("Digest username=\"bob\", nonce=\"n\", uri=\"u\", response=\"" +
                        std::string(32, '0') + "\""),
             Contains("missing realm"));
  CHECK_THAT(ParseError("Digest username=\"bob\", realm=\"r\", uri=\"u\", response=\"" +
                        std::string(32, '0') + "\""),
             Contains("missing nonce"));
  CHECK_THAT(ParseError("Digest username=\"bob\", realm=\"r\", nonce=\"n\", response=\"" +
                        std::string(32, '0') + "\""),
             Contains("missing uri"));
  CHECK_THAT(ParseError("Digest username=\"bob\", realm=\"r\", nonce=\"n\", uri=\"u\""),
             Contains("missing response"));
  CHECK_THAT(ParseError("Digest username=\"bob\", realm=\"r\", nonce=\"\", uri=\"u\", response=\"" +
                        std::string(32, '0') + "\""),
             Contains("nonce is empty"));

  // Algorithms.
  CHECK(ParseError(ok + ", algorithm=MD5") == "parsed");
  CHECK_THAT(ParseError(ok + ", algorithm=SHA-256"),
             Contains("response must be 64 hex digits for SHA-256"));
  for (const char* unsupported : {"MD5-sess", "SHA-256-sess", "SHA-512-256", "sha-512-256-SESS"}) {
    CHECK_THAT(ParseError(ok + ", algorithm=" + unsupported),
               Contains("is not supported (only MD5 and SHA-256)"));
  }
  CHECK_THAT(ParseError(ok + ", algorithm=SHA-512-256"), Contains("algorithm SHA-512-256"));
  CHECK_THAT(ParseError(ok + ", algorithm=SHA1"), Contains("unknown algorithm"));

  // qop, cnonce and nc.
  CHECK(ParseError(ok + ", qop=auth, cnonce=\"c\", nc=00000001") == "parsed");
  CHECK_THAT(ParseError(ok + ", qop=auth-int, cnonce=\"c\", nc=00000001"),
             Contains("qop auth-int is not supported"));
  CHECK_THAT(ParseError(ok + ", qop=\"auth,auth-int\", cnonce=\"c\", nc=00000001"),
             Contains("qop must be auth"));
  CHECK_THAT(ParseError(ok + ", qop=auth, nc=00000001"), Contains("missing cnonce"));
  CHECK_THAT(ParseError(ok + ", qop=auth, cnonce=\"\", nc=00000001"), Contains("cnonce is empty"));
  CHECK_THAT(ParseError(ok + ", qop=auth, cnonce=\"c\""), Contains("missing nc"));
  CHECK_THAT(ParseError(ok + ", cnonce=\"c\""),
             Contains("cnonce and nc are only allowed with qop"));
  CHECK_THAT(ParseError(ok + ", nc=00000001"), Contains("cnonce and nc are only allowed with qop"));
  for (const char* nc : {"1", "0000001", "000000001", "0000000g", "+0000001", "\"\""}) {
    CHECK_THAT(ParseError(ok + ", qop=auth, cnonce=\"c\", nc=" + nc),
               Contains("nc must be exactly 8 hex digits"));
  }
  CHECK_THAT(ParseError(ok + ", qop=auth, cnonce=\"c\", nc=00000000"),
             Contains("nc must be at least 00000001"));

  // Response.
  CHECK_THAT(ParseError("Digest username=\"bob\", realm=\"r\", nonce=\"n\", uri=\"u\", "
                        "response=\"6629fae49393a05397450978507c4ef\""),
             Contains("response must be 32 hex digits for MD5"));
  CHECK_THAT(ParseError("Digest username=\"bob\", realm=\"r\", nonce=\"n\", uri=\"u\", "
                        "response=\"6629fae49393a05397450978507c4efz\""),
             Contains("response must be 32 hex digits for MD5"));

  // RFC 7616 features we do not support.
  CHECK_THAT(ParseError(ok + ", userhash=true"), Contains("userhash=true"));
  CHECK_THAT(ParseError(ok + ", userhash=maybe"), Contains("userhash must be true or false"));
  CHECK_THAT(ParseError("Digest username*=UTF-8''J%C3%B6rg, " + ok_rest),
             Contains("username* (RFC 7616 extended username) is not supported"));
}

TEST_CASE("ParseCredentials survives arbitrary bytes", "[sip][digest]") {
  // Not a fuzzer (issue #12), but every prefix of a good value, random byte flips in it and random
  // strings must come back as a value or an InvalidArgument, without reading past the input (run
  // under ASan to see that).
  const std::string good = kRegister;
  for (size_t n = 0; n <= good.size(); ++n) {
    // A heap copy of exactly n bytes, so that a read past the end is a real overflow under ASan.
    const std::unique_ptr<char[]> copy(new char[n]);
    std::copy(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n), copy.get());
    const absl::StatusOr<Credentials> c = ParseCredentials(std::string_view(copy.get(), n));
    CHECK((c.ok() || c.status().code() == absl::StatusCode::kInvalidArgument));
  }
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string alphabet = "Digest=\", \\\r\n\tauthncqo0123456789abcdefSHA-";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  int parsed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = good;
    const int flips = 1 + round % 4;
    for (int f = 0; f < flips; ++f) {
      std::uniform_int_distribution<size_t> at(0, s.size() - 1);
      s[at(rng)] = round % 2 ? static_cast<char>(byte(rng)) : alphabet[pick(rng)];
    }
    const absl::StatusOr<Credentials> c = ParseCredentials(s);
    REQUIRE((c.ok() || c.status().code() == absl::StatusCode::kInvalidArgument));
    parsed += c.ok();

    std::string noise(static_cast<size_t>(round % 64), '\0');
    for (char& ch : noise) ch = round % 3 ? alphabet[pick(rng)] : static_cast<char>(byte(rng));
    const absl::StatusOr<Credentials> n = ParseCredentials("Digest " + noise);
    REQUIRE((n.ok() || n.status().code() == absl::StatusCode::kInvalidArgument));
  }
  CHECK(parsed > 0);  // some flips land in values and keep the header valid
}

TEST_CASE("BuildChallenge writes the exact challenge text", "[sip][digest]") {
  CHECK(*BuildChallenge(Algorithm::kSha256, {.realm = "demo.sip.localhost", .nonce = "N1"}) ==
        "Digest realm=\"demo.sip.localhost\", nonce=\"N1\", algorithm=SHA-256, qop=\"auth\"");
  CHECK(*BuildChallenge(Algorithm::kMd5,
                        {.realm = "demo.sip.localhost", .nonce = "N1", .opaque = "o-1"}) ==
        "Digest realm=\"demo.sip.localhost\", nonce=\"N1\", opaque=\"o-1\", algorithm=MD5, "
        "qop=\"auth\"");
  CHECK(*BuildChallenge(Algorithm::kSha256,
                        {.realm = "r", .nonce = "N1", .opaque = "o", .stale = true}) ==
        "Digest realm=\"r\", nonce=\"N1\", opaque=\"o\", algorithm=SHA-256, qop=\"auth\", "
        "stale=true");
  // '"' and '\' are escaped.
  CHECK(*BuildChallenge(Algorithm::kMd5, {.realm = "a\"b\\c", .nonce = "N"}) ==
        "Digest realm=\"a\\\"b\\\\c\", nonce=\"N\", algorithm=MD5, qop=\"auth\"");

  const absl::StatusOr<std::vector<std::string>> both =
      BuildChallenges({.realm = "demo.sip.localhost", .nonce = "N2", .stale = true});
  REQUIRE(both.ok());
  CHECK(*both == std::vector<std::string>{
                     "Digest realm=\"demo.sip.localhost\", nonce=\"N2\", algorithm=SHA-256, "
                     "qop=\"auth\", stale=true",
                     "Digest realm=\"demo.sip.localhost\", nonce=\"N2\", algorithm=MD5, "
                     "qop=\"auth\", stale=true"});
}

TEST_CASE("BuildChallenge refuses values it cannot write", "[sip][digest]") {
  auto error = [](const ChallengeParams& p) {
    const absl::StatusOr<std::string> c = BuildChallenge(Algorithm::kSha256, p);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(c.status().message());
  };
  CHECK_THAT(error({.realm = "", .nonce = "n"}), Contains("realm is empty"));
  CHECK_THAT(error({.realm = "r", .nonce = ""}), Contains("nonce is empty"));
  CHECK_THAT(error({.realm = "r\r\nX-Injected: 1", .nonce = "n"}),
             Contains("realm contains a control character"));
  CHECK_THAT(error({.realm = "r", .nonce = "n", .opaque = "o\n"}),
             Contains("opaque contains a control character"));
  const std::string long_realm(kMaxParamBytes + 1, 'r');
  CHECK_THAT(error({.realm = long_realm, .nonce = "n"}), Contains("realm is longer than 256"));
  CHECK_FALSE(BuildChallenges({.realm = "", .nonce = "n"}).ok());
}

TEST_CASE("NonceMinter nonces are URL-safe unique and valid until max age", "[sip][digest]") {
  const NonceMinter minter;
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  const absl::Duration max_age = absl::Minutes(5);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string nonce = minter.Mint(t0);
    CHECK(nonce.size() == 48);
    CHECK(nonce.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    CHECK(seen.insert(nonce).second);
  }
  const std::string nonce = minter.Mint(t0);
  CHECK(minter.Check(nonce, t0, max_age) == NonceState::kValid);
  CHECK(minter.Check(nonce, t0 + max_age, max_age) == NonceState::kValid);
  CHECK(minter.Check(nonce, t0 + max_age + absl::Seconds(1), max_age) == NonceState::kStale);
  CHECK(minter.Check(nonce, t0 + absl::Hours(24 * 365), max_age) == NonceState::kStale);
  // Issued by a node whose clock runs ahead: fresh within the allowed skew, stale beyond.
  CHECK(minter.Check(nonce, t0 - NonceMinter::kMaxClockSkew, max_age) == NonceState::kValid);
  CHECK(minter.Check(nonce, t0 - NonceMinter::kMaxClockSkew - absl::Seconds(1), max_age) ==
        NonceState::kStale);
  // The nonce is a valid quoted-string value and challenge.
  CHECK(BuildChallenge(Algorithm::kSha256, {.realm = "r", .nonce = nonce}).ok());
}

TEST_CASE("NonceMinter rejects forged garbled and truncated nonces", "[sip][digest]") {
  const std::string secret = "0123456789abcdef0123456789abcdef";
  const absl::StatusOr<NonceMinter> a = NonceMinter::WithSecret(secret);
  const absl::StatusOr<NonceMinter> b = NonceMinter::WithSecret(secret);
  const absl::StatusOr<NonceMinter> other = NonceMinter::WithSecret("another secret, 16+ bytes");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(other.ok());
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  const absl::Duration max_age = absl::Minutes(5);
  const std::string nonce = a->Mint(now);

  // Nodes sharing the secret accept each other's nonces; others do not.
  CHECK(b->Check(nonce, now, max_age) == NonceState::kValid);
  CHECK(other->Check(nonce, now, max_age) == NonceState::kInvalid);
  CHECK(NonceMinter().Check(nonce, now, max_age) == NonceState::kInvalid);

  // Every single-character change is caught: the time, the random part and the MAC.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < nonce.size(); ++i) {
    std::string changed = nonce;
    changed[i] = alphabet[(alphabet.find(nonce[i]) + 1) % alphabet.size()];
    CHECK(a->Check(changed, now, max_age) == NonceState::kInvalid);
  }
  // An old nonce with a forged MAC is invalid, not stale.
  CHECK(a->Check(nonce.substr(0, 47) + (nonce[47] == 'A' ? "B" : "A"), now + absl::Hours(1),
                 max_age) == NonceState::kInvalid);
  CHECK(a->Check(nonce.substr(0, 47), now, max_age) == NonceState::kInvalid);
  CHECK(a->Check(nonce + "A", now, max_age) == NonceState::kInvalid);
  CHECK(a->Check("", now, max_age) == NonceState::kInvalid);
  CHECK(a->Check(std::string(48, '='), now, max_age) == NonceState::kInvalid);
  CHECK(a->Check(nonce.substr(0, 44) + "+/+/", now, max_age) == NonceState::kInvalid);
  CHECK(a->Check(std::string(48, 'A'), now, max_age) == NonceState::kInvalid);

  const absl::StatusOr<NonceMinter> short_secret = NonceMinter::WithSecret("15 bytes secret");
  REQUIRE_FALSE(short_secret.ok());
  CHECK(short_secret.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(short_secret.status().message()), Contains("at least 16 bytes"));
}

// Decodes unpadded base64url (the nonce alphabet); test helper, no error handling.
std::string FromBase64Url(std::string_view s) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    acc = (acc << 6) | static_cast<uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

TEST_CASE("NonceMinter nonces carry time random and HMAC-SHA256 as documented", "[sip][digest]") {
  // Other implementations (or a future version of this one) must be able to read our nonces: the
  // layout in digest.h is checked here against OpenSSL's own HMAC(), for a secret shorter and one
  // longer than SHA-256's 64-byte block.
  for (const std::string& secret : {std::string("0123456789abcdef"), std::string(100, 'k')}) {
    const absl::StatusOr<NonceMinter> minter = NonceMinter::WithSecret(secret);
    REQUIRE(minter.ok());
    const absl::Time now = absl::FromUnixSeconds(1'700'000'123);
    const std::string raw = FromBase64Url(minter->Mint(now));
    REQUIRE(raw.size() == 36);
    uint64_t seconds = 0;
    for (int i = 0; i < 8; ++i) seconds = (seconds << 8) | static_cast<unsigned char>(raw[i]);
    CHECK(seconds == 1'700'000'123u);
    const std::string input = "sb-sip-nonce-v1" + raw.substr(0, 20);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                 &len) != nullptr);
    CHECK(raw.substr(20) == std::string(reinterpret_cast<const char*>(mac), 16));
  }
}

TEST_CASE("NonceCounter accepts only increasing counts per nonce", "[sip][digest]") {
  NonceCounter counter;
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  CHECK_FALSE(counter.Accept("n1", 0, now));
  CHECK(counter.Accept("n1", 5, now));        // first use: any count >= 1
  CHECK_FALSE(counter.Accept("n1", 5, now));  // replay
  CHECK_FALSE(counter.Accept("n1", 4, now));
  CHECK(counter.Accept("n1", 6, now));
  CHECK(counter.Accept("n1", 9, now));  // gaps are fine (requests lost or reordered)
  CHECK_FALSE(counter.Accept("n1", 7, now));
  CHECK(counter.Accept("n1", 0xffffffffu, now));
  CHECK_FALSE(counter.Accept("n1", 0xffffffffu, now));

  CHECK(counter.Accept("n2", 1, now));  // nonces are independent
  CHECK_FALSE(counter.Accept("n2", 1, now));
  CHECK(counter.size() == 2);
}

TEST_CASE("NonceCounter forgets the oldest nonces past capacity or max age", "[sip][digest]") {
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  SECTION("capacity") {
    NonceCounter counter({.capacity = 3, .max_age = absl::Minutes(5), .shards = 1});
    CHECK(counter.Accept("a", 1, t0));
    CHECK(counter.Accept("b", 1, t0 + absl::Seconds(1)));
    CHECK(counter.Accept("c", 1, t0 + absl::Seconds(2)));
    CHECK(counter.Accept("a", 2, t0 + absl::Seconds(3)));  // a use does not make it younger
    CHECK(counter.size() == 3);
    CHECK(counter.Accept("d", 1, t0 + absl::Seconds(4)));  // evicts a, the oldest
    CHECK(counter.size() == 3);
    CHECK_FALSE(counter.Accept("b", 1, t0 + absl::Seconds(5)));
    CHECK_FALSE(counter.Accept("c", 1, t0 + absl::Seconds(5)));
    CHECK(counter.Accept("a", 1, t0 + absl::Seconds(5)));  // forgotten: accepted once again
    CHECK(counter.size() == 3);                            // and b went
    CHECK(counter.Accept("b", 1, t0 + absl::Seconds(5)));
  }
  SECTION("max age") {
    NonceCounter counter({.capacity = 100, .max_age = absl::Minutes(5), .shards = 4});
    CHECK(counter.Accept("a", 3, t0));
    CHECK(counter.Accept("b", 3, t0 + absl::Minutes(1)));
    CHECK_FALSE(counter.Accept("a", 3, t0 + absl::Minutes(5) - absl::Seconds(1)));
    CHECK(counter.Accept("a", 1, t0 + absl::Minutes(5)));  // expired and forgotten
    CHECK_FALSE(counter.Accept("b", 3, t0 + absl::Minutes(5)));
    CHECK(counter.Accept("b", 3, t0 + absl::Minutes(6)));
  }
  SECTION("default capacity is spread over shards") {
    NonceCounter counter({.capacity = 1000, .max_age = absl::Minutes(5), .shards = 16});
    for (int i = 0; i < 5000; ++i) REQUIRE(counter.Accept("nonce-" + std::to_string(i), 1, t0));
    CHECK(counter.size() <= 1008);  // each shard holds ceil(1000 / 16) = 63
    CHECK(counter.size() > 900);
    CHECK_FALSE(counter.Accept("nonce-4999", 1, t0));  // the newest is still tracked
  }
}

TEST_CASE("NonceCounter accepts each count once across threads", "[sip][digest]") {
  NonceCounter counter;
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  constexpr int kThreads = 4;
  constexpr uint32_t kCounts = 2000;
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (uint32_t nc = 1; nc <= kCounts; ++nc) {
        for (const char* nonce : {"shared-1", "shared-2", "shared-3"}) {
          if (counter.Accept(nonce, nc, now)) accepted.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  // Each (nonce, nc) is accepted at most once, and the last count always by someone.
  CHECK(accepted.load() <= 3 * static_cast<int>(kCounts));
  CHECK(accepted.load() >= 3);
  for (const char* nonce : {"shared-1", "shared-2", "shared-3"}) {
    CHECK_FALSE(counter.Accept(nonce, kCounts, now));
    CHECK(counter.Accept(nonce, kCounts + 1, now));
  }
}

}  // namespace
}  // namespace sb::sip::digest
