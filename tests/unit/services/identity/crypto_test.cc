#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/identity/crypto/password_hasher.h"
#include "services/identity/crypto/password_policy.h"
#include "services/identity/crypto/qr_code.h"
#include "services/identity/crypto/sealer.h"
#include "services/identity/crypto/secrets.h"
#include "services/identity/crypto/totp.h"

namespace sb::identity {
namespace {

using Catch::Matchers::StartsWith;

constexpr std::string_view kRfcSecret = "12345678901234567890";

absl::Time Unix(int64_t seconds) { return absl::FromUnixSeconds(seconds); }

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// ---------------------------------------------------------------------------------------------
// TOTP and base32

TEST_CASE("TotpCode matches the RFC 6238 appendix B SHA-1 vectors", "[identity][totp]") {
  CHECK(TotpCode(kRfcSecret, Unix(59)) == "287082");
  CHECK(TotpCode(kRfcSecret, Unix(1111111109)) == "081804");
  CHECK(TotpCode(kRfcSecret, Unix(1111111111)) == "050471");
  CHECK(TotpCode(kRfcSecret, Unix(1234567890)) == "005924");
  CHECK(TotpCode(kRfcSecret, Unix(2000000000)) == "279037");
  // The code changes at step boundaries only.
  CHECK(TotpCode(kRfcSecret, Unix(30)) == "287082");
  CHECK(TotpCode(kRfcSecret, Unix(60)) != "287082");
}

TEST_CASE("TotpStep is floor(unix / 30)", "[identity][totp]") {
  CHECK(TotpStep(Unix(0)) == 0);
  CHECK(TotpStep(Unix(29)) == 0);
  CHECK(TotpStep(Unix(30)) == 1);
  CHECK(TotpStep(Unix(1111111111)) == 37037037);
  CHECK(TotpStep(Unix(-100)) == 0);
}

TEST_CASE("VerifyTotp accepts the neighbouring steps and returns their counters",
          "[identity][totp]") {
  const absl::Time now = Unix(1111111111);
  const int64_t step = 37037037;
  CHECK(VerifyTotp(kRfcSecret, TotpCode(kRfcSecret, now), now) == step);
  CHECK(VerifyTotp(kRfcSecret, TotpCode(kRfcSecret, now - absl::Seconds(30)), now) == step - 1);
  CHECK(VerifyTotp(kRfcSecret, TotpCode(kRfcSecret, now + absl::Seconds(30)), now) == step + 1);
  CHECK(VerifyTotp(kRfcSecret, "050 471", now) == step);
  CHECK(VerifyTotp(kRfcSecret, " 050471 ", now) == step);
}

TEST_CASE("VerifyTotp rejects codes two steps away unless the window allows them",
          "[identity][totp]") {
  const absl::Time now = Unix(1111111111);
  const std::string before = TotpCode(kRfcSecret, now - absl::Seconds(60));
  const std::string after = TotpCode(kRfcSecret, now + absl::Seconds(60));
  CHECK_FALSE(VerifyTotp(kRfcSecret, before, now).has_value());
  CHECK_FALSE(VerifyTotp(kRfcSecret, after, now).has_value());
  CHECK(VerifyTotp(kRfcSecret, after, now, 2) == 37037039);
  CHECK_FALSE(VerifyTotp(kRfcSecret, TotpCode(kRfcSecret, now - absl::Seconds(30)), now, 0));
}

TEST_CASE("VerifyTotp rejects codes that are not exactly six digits", "[identity][totp]") {
  const absl::Time now = Unix(59);
  REQUIRE(VerifyTotp(kRfcSecret, "287082", now) == 1);
  CHECK_FALSE(VerifyTotp(kRfcSecret, "12345", now));
  CHECK_FALSE(VerifyTotp(kRfcSecret, "1234567", now));
  CHECK_FALSE(VerifyTotp(kRfcSecret, "abcdef", now));
  CHECK_FALSE(VerifyTotp(kRfcSecret, "2870820", now));
  CHECK_FALSE(VerifyTotp(kRfcSecret, "28708", now));
  CHECK_FALSE(VerifyTotp(kRfcSecret, "28708a", now));
  CHECK_FALSE(VerifyTotp(kRfcSecret, "", now));
  CHECK_FALSE(VerifyTotp("another secret 12345", "287082", now));
}

TEST_CASE("GenerateTotpSecret makes 20 random bytes", "[identity][totp]") {
  const std::string a = GenerateTotpSecret();
  const std::string b = GenerateTotpSecret();
  CHECK(a.size() == 20);
  CHECK(a != b);
}

TEST_CASE("Base32Encode matches RFC 4648 without padding", "[identity][base32]") {
  CHECK(Base32Encode("") == "");
  CHECK(Base32Encode("f") == "MY");
  CHECK(Base32Encode("fo") == "MZXQ");
  CHECK(Base32Encode("foo") == "MZXW6");
  CHECK(Base32Encode("foob") == "MZXW6YQ");
  CHECK(Base32Encode("fooba") == "MZXW6YTB");
  CHECK(Base32Encode("foobar") == "MZXW6YTBOI");
  CHECK(Base32Encode(kRfcSecret) == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

TEST_CASE("Base32Decode accepts lowercase, spaces and padding", "[identity][base32]") {
  CHECK(Base32Decode("MZXW6YTBOI").value() == "foobar");
  CHECK(Base32Decode("mzxw6ytboi").value() == "foobar");
  CHECK(Base32Decode("mzxw 6ytb oi").value() == "foobar");
  CHECK(Base32Decode("MZXW6YTBOI======").value() == "foobar");
  CHECK(Base32Decode("MZXW6YQ=").value() == "foob");
  CHECK(Base32Decode("MY======").value() == "f");
  CHECK(Base32Decode("").value() == "");
  const std::string raw = GenerateTotpSecret();
  CHECK(Base32Decode(Base32Encode(raw)).value() == raw);
}

TEST_CASE("Base32Decode rejects what no encoder writes", "[identity][base32]") {
  for (std::string_view bad : {"MZXW1", "MZXW6YTBO!", "MY=A", "M", "MZX", "MZXW6Y", "MY==="}) {
    INFO(bad);
    const absl::StatusOr<std::string> decoded = Base32Decode(bad);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(decoded.status()), StartsWith("base32: "));
  }
}

TEST_CASE("OtpauthUri percent-encodes issuer and account", "[identity][totp]") {
  CHECK(OtpauthUri("Switchboard", "jane doe@example.com", kRfcSecret) ==
        "otpauth://totp/Switchboard:jane%20doe%40example.com"
        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Switchboard"
        "&algorithm=SHA1&digits=6&period=30");
  CHECK(OtpauthUri("Acme Call:Center", "a.b-c_d~e", "foobar") ==
        "otpauth://totp/Acme%20Call%3ACenter:a.b-c_d~e?secret=MZXW6YTBOI&issuer="
        "Acme%20Call%3ACenter&algorithm=SHA1&digits=6&period=30");
}

// ---------------------------------------------------------------------------------------------
// PasswordHasher

TEST_CASE("PasswordHasher writes argon2id PHC strings with a fresh salt", "[identity][hasher]") {
  const PasswordHasher hasher;
  const absl::StatusOr<std::string> a = hasher.Hash("correct horse battery staple");
  const absl::StatusOr<std::string> b = hasher.Hash("correct horse battery staple");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK_THAT(*a, StartsWith("$argon2id$v=19$m=19456,t=2,p=1$"));
  // 16-byte salt -> 22 base64 characters, 32-byte hash -> 43.
  CHECK(a->size() == std::string_view("$argon2id$v=19$m=19456,t=2,p=1$").size() + 22 + 1 + 43);
  CHECK(*a != *b);
  CHECK(hasher.Verify("correct horse battery staple", *a));
  CHECK(hasher.Verify("correct horse battery staple", *b));
  CHECK_FALSE(hasher.Verify("correct horse battery stapl", *a));
  CHECK_FALSE(hasher.Verify("Correct horse battery staple", *a));
  CHECK_FALSE(hasher.Verify("", *a));
}

TEST_CASE("PasswordHasher handles empty passwords and NUL bytes", "[identity][hasher]") {
  const PasswordHasher hasher({.memory_kib = 1024, .iterations = 1, .parallelism = 1});
  const absl::StatusOr<std::string> empty = hasher.Hash("");
  REQUIRE(empty.ok());
  CHECK(hasher.Verify("", *empty));
  CHECK_FALSE(hasher.Verify("x", *empty));
  const std::string with_nul("ab\0cd", 5);
  const absl::StatusOr<std::string> nul = hasher.Hash(with_nul);
  REQUIRE(nul.ok());
  CHECK(hasher.Verify(with_nul, *nul));
  CHECK_FALSE(hasher.Verify("ab", *nul));
}

TEST_CASE("PasswordHasher rejects passwords over 1024 bytes", "[identity][hasher]") {
  const PasswordHasher hasher({.memory_kib = 1024, .iterations = 1, .parallelism = 1});
  const absl::StatusOr<std::string> too_long = hasher.Hash(std::string(1025, 'x'));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Message(too_long.status()), StartsWith("password: "));
  const absl::StatusOr<std::string> longest = hasher.Hash(std::string(1024, 'x'));
  REQUIRE(longest.ok());
  CHECK(hasher.Verify(std::string(1024, 'x'), *longest));
  CHECK_FALSE(hasher.Verify(std::string(1025, 'x'), *longest));
}

TEST_CASE("PasswordHasher::Verify returns false for malformed encodings", "[identity][hasher]") {
  const PasswordHasher hasher;
  const std::string good = hasher.Hash("hunter2-but-longer").value();
  REQUIRE(hasher.Verify("hunter2-but-longer", good));
  const std::string tail = good.substr(good.find("$", 20));  // "$<salt>$<hash>"

  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  std::string with_nul = good;
  with_nul.insert(with_nul.size() - 5, 1, '\0');

  const std::vector<std::string> malformed = {
      "",
      "garbage",
      "$argon2id$",
      good.substr(0, good.size() - 10),
      good + "$",
      good + "x!",
      flipped,
      with_nul,
      "$argon2i" + good.substr(9),
      "$argon2d" + good.substr(9),
      "$argon2id$v=16$m=19456,t=2,p=1" + tail,
      "$argon2id$m=19456,t=2,p=1" + tail,
      "$argon2id$v=19$m=019456,t=2,p=1" + tail,
      "$argon2id$v=19$m=-1,t=2,p=1" + tail,
      "$argon2id$v=19$t=2,m=19456,p=1" + tail,
      // Would make libargon2 try to allocate 4 TiB, or run for hours.
      "$argon2id$v=19$m=4294967295,t=2,p=1" + tail,
      "$argon2id$v=19$m=99999999999,t=2,p=1" + tail,
      "$argon2id$v=19$m=19456,t=4294967295,p=1" + tail,
      "$argon2id$v=19$m=19456,t=2,p=255" + tail,
      "$argon2id$v=19$m=19456,t=0,p=1" + tail,
      "$argon2id$v=19$m=19456,t=2,p=1$$" + good.substr(good.rfind('$') + 1),
      "$argon2id$v=19$m=19456,t=2,p=1" + tail.substr(0, tail.rfind('$')) + "$",
      "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA=",
  };
  for (const std::string& encoded : malformed) {
    INFO(encoded);
    CHECK_FALSE(hasher.Verify("hunter2-but-longer", encoded));
  }
}

TEST_CASE("PasswordHasher verifies hashes made with other params", "[identity][hasher]") {
  const PasswordHasher weak({.memory_kib = 4096, .iterations = 1, .parallelism = 1});
  const PasswordHasher current;
  const std::string old_hash = weak.Hash("an older password").value();
  CHECK_THAT(old_hash, StartsWith("$argon2id$v=19$m=4096,t=1,p=1$"));
  CHECK(current.Verify("an older password", old_hash));
  CHECK_FALSE(current.Verify("a different password", old_hash));
}

TEST_CASE("PasswordHasher::NeedsRehash flags weaker params", "[identity][hasher]") {
  const PasswordHasher current;
  const std::string fresh = current.Hash("a password").value();
  const std::string tail = fresh.substr(fresh.find("$", 20));
  CHECK_FALSE(current.NeedsRehash(fresh));
  CHECK(current.NeedsRehash("$argon2id$v=19$m=4096,t=2,p=1" + tail));
  CHECK(current.NeedsRehash("$argon2id$v=19$m=19456,t=1,p=1" + tail));
  CHECK_FALSE(current.NeedsRehash("$argon2id$v=19$m=65536,t=3,p=1" + tail));
  CHECK(current.NeedsRehash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ" +
                            tail.substr(tail.rfind('$'))));  // 8-byte salt
  CHECK(current.NeedsRehash("not a hash"));
  CHECK(current.NeedsRehash("$argon2i" + fresh.substr(9)));
  const PasswordHasher stronger({.memory_kib = 65536, .iterations = 3, .parallelism = 1});
  CHECK(stronger.NeedsRehash(fresh));
}

TEST_CASE("PasswordHasher::ValidateParams bounds the cost", "[identity][hasher]") {
  CHECK(PasswordHasher::ValidateParams({}).ok());
  CHECK_THAT(
      Message(PasswordHasher::ValidateParams({.memory_kib = 4, .iterations = 2, .parallelism = 1})),
      StartsWith("memory_kib: "));
  CHECK_THAT(Message(PasswordHasher::ValidateParams(
                 {.memory_kib = 19456, .iterations = 0, .parallelism = 1})),
             StartsWith("iterations: "));
  CHECK_THAT(Message(PasswordHasher::ValidateParams(
                 {.memory_kib = 19456, .iterations = 2, .parallelism = 0})),
             StartsWith("parallelism: "));
  const PasswordHasher broken({.memory_kib = 4, .iterations = 2, .parallelism = 1});
  const absl::StatusOr<std::string> hash = broken.Hash("whatever-password");
  REQUIRE_FALSE(hash.ok());
  CHECK(hash.status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("PasswordHasher can be used from several threads at once", "[identity][hasher]") {
  const PasswordHasher hasher({.memory_kib = 2048, .iterations = 1, .parallelism = 1});
  const std::string stored = hasher.Hash("shared password").value();
  std::atomic<int> matches{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        if (hasher.Verify("shared password", stored)) ++matches;
        const std::string own = hasher.Hash("own password").value();
        if (hasher.Verify("own password", own)) ++matches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(matches == 40);
}

// ---------------------------------------------------------------------------------------------
// Password policy

void CheckRejected(std::string_view password, int min_length, const PasswordContext& ctx,
                   std::string_view expected_message) {
  INFO("password '" << password << "'");
  const absl::Status status = CheckPassword(password, min_length, ctx);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(status) == std::string(expected_message));
}

TEST_CASE("CheckPassword accepts strong passwords", "[identity][policy]") {
  const PasswordContext ctx{"jsmith", "jane.smith@example.com", "Jane", "Smith"};
  CHECK(CheckPassword("correct horse battery staple", 10, ctx).ok());
  CHECK(CheckPassword("Tr0ub4dor&3-xyz", 10, ctx).ok());
  CHECK(CheckPassword("ñandú café 42", 10, ctx).ok());
  CHECK(CheckPassword("ab-correct-horse", 10, {"ab", "ab@x.org", "Al", "Li"}).ok());
  CHECK(CheckPassword("Tomato-garden-77", 10, {"", "", "Tom", ""}).ok());
}

TEST_CASE("CheckPassword enforces the minimum length in code points", "[identity][policy]") {
  CheckRejected("short", 10, {}, "password: must be at least 10 characters");
  CheckRejected("123456789", 10, {}, "password: must be at least 10 characters");
  // 9 code points, 18 bytes: too short although the byte count is over 10.
  CheckRejected("ééééééééé", 10, {}, "password: must be at least 10 characters");
  CheckRejected("日本語のパスワ", 10, {}, "password: must be at least 10 characters");
  CHECK(CheckPassword("日本語のパスワードです", 10, {}).ok());
  CheckRejected("", 0, {}, "password: must not be empty");
}

TEST_CASE("CheckPassword names the field it was given", "[identity][policy]") {
  const absl::Status status = CheckPassword("short", 10, {}, "new_password");
  CHECK(status.message() == "new_password: must be at least 10 characters");
}

TEST_CASE("CheckPassword rejects oversized, invalid and control-character input",
          "[identity][policy]") {
  CheckRejected(std::string(257, 'x'), 10, {}, "password: must be at most 256 bytes long");
  CHECK(CheckPassword(std::string(250, 'x') + "yz1234", 10, {}).ok());
  CheckRejected("abc\xff\xfe-defghijk", 10, {}, "password: must be valid UTF-8 text");
  CheckRejected(
      "abc\xc0\xaf"
      "defghijk",
      10, {}, "password: must be valid UTF-8 text");  // overlong
  CheckRejected(
      "abc\xed\xa0\x80"
      "defghijk",
      10, {},
      "password: must be valid UTF-8 text");  // surrogate
  CheckRejected("good-pass\tword", 10, {}, "password: must not contain control characters");
  CheckRejected(std::string("good-pass\0word", 14), 10, {},
                "password: must not contain control characters");
  CheckRejected("good-pass\x7fword", 10, {}, "password: must not contain control characters");
  CheckRejected("good-pass\xc2\x85word", 10, {}, "password: must not contain control characters");
}

TEST_CASE("CheckPassword rejects the most common passwords, ignoring case", "[identity][policy]") {
  constexpr std::string_view kCommon = "password: is one of the most common passwords";
  CheckRejected("qwertyuiop", 10, {}, kCommon);
  CheckRejected("QwertyUIOP", 10, {}, kCommon);
  CheckRejected("welcome123", 10, {}, kCommon);
  CheckRejected("Password1", 8, {}, kCommon);
  CheckRejected("PASSWORD", 8, {}, kCommon);
  CheckRejected("letmein", 6, {}, kCommon);
  CheckRejected("iloveyou", 8, {}, kCommon);
  CheckRejected("p@ssw0rd", 8, {}, kCommon);
  CHECK(CheckPassword("qwertyuiop-plus-more", 10, {}).ok());
}

TEST_CASE("CheckPassword rejects one repeated character", "[identity][policy]") {
  CheckRejected("aaaaaaaaaaaa", 10, {}, "password: must not be one character repeated");
  CheckRejected("1111111111", 10, {}, "password: must not be one character repeated");
  CheckRejected("éééééééééé", 10, {}, "password: must not be one character repeated");
  CHECK(CheckPassword("aaaaaaaaaaab", 10, {}).ok());
}

TEST_CASE("CheckPassword rejects plain ascending or descending runs", "[identity][policy]") {
  constexpr std::string_view kRun =
      "password: must not be a simple sequence such as abcdef or 987654";
  CheckRejected("abcdefghij", 10, {}, kRun);
  CheckRejected("ABCDEFGHIJKL", 10, {}, kRun);
  CheckRejected("9876543210", 10, {}, kRun);
  CheckRejected("1234567890", 10, {}, kRun);
  CheckRejected("zyxwvutsrq", 10, {}, kRun);
  CheckRejected("123456789", 8, {}, kRun);
  CHECK(CheckPassword("abcdefghik", 10, {}).ok());
  CHECK(CheckPassword("abcde54321", 10, {}).ok());
}

TEST_CASE("CheckPassword rejects passwords built from the user's own names", "[identity][policy]") {
  const PasswordContext ctx{"JSmith", "jane.doe+work@example.com", "Alexander", "Smith"};
  CheckRejected("jsmith", 6, ctx, "password: must not contain your login name");
  CheckRejected("my-jsmith-2024", 10, ctx, "password: must not contain your login name");
  CheckRejected("MY-JSMITH-2024", 10, ctx, "password: must not contain your login name");
  CheckRejected("Jane.Doe+Work!77", 10, ctx, "password: must not contain your email address");
  CheckRejected("alexander-the-great", 10, ctx, "password: must not contain your name");
  CheckRejected("ms-smith-of-oz-7", 10, ctx, "password: must not contain your name");
  // The domain of the email is not personal.
  CHECK(CheckPassword("example.com-is-fine", 10, ctx).ok());
}

TEST_CASE("CheckPasswordConfirmation", "[identity][policy]") {
  CHECK(CheckPasswordConfirmation("a good password", "").ok());
  CHECK(CheckPasswordConfirmation("a good password", "a good password").ok());
  const absl::Status status = CheckPasswordConfirmation("a good password", "a good passw0rd");
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(status.message() == "password_confirmation: does not match the password");
  CHECK(CheckPasswordConfirmation("x", "y", "confirm").message() ==
        "confirm: does not match the password");
}

// ---------------------------------------------------------------------------------------------
// Secrets and digests

TEST_CASE("Sha256Hex and HmacSha256Hex match published vectors", "[identity][secrets]") {
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test case 2.
  CHECK(HmacSha256Hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Empty key: HMAC-SHA256("", "") is a published value too.
  CHECK(HmacSha256Hex("", "") ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("Digest HA1 matches RFC 2617 and RFC 7616", "[identity][secrets]") {
  CHECK(DigestHa1Md5("Mufasa", "testrealm@host.com", "Circle Of Life") ==
        "939e7578ed9e3c518a452acee763bce9");
  CHECK(DigestHa1Sha256("Mufasa", "http-auth@example.org", "Circle of Life") ==
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232");
}

TEST_CASE("RandomBytes and RandomUrlToken", "[identity][secrets]") {
  CHECK(RandomBytes(0).empty());
  CHECK(RandomBytes(33).size() == 33);
  CHECK(RandomBytes(16) != RandomBytes(16));
  const std::string token = RandomUrlToken(32);
  CHECK(token.size() == 43);
  CHECK(
      token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
      std::string::npos);
  CHECK(RandomUrlToken(1).size() == 2);
  CHECK(RandomUrlToken(3).size() == 4);
}

TEST_CASE("RandomDigits gives uniform decimal digits", "[identity][secrets]") {
  CHECK(RandomDigits(0).empty());
  CHECK(RandomDigits(-3).empty());
  const std::string six = RandomDigits(6);
  CHECK(six.size() == 6);
  CHECK(six.find_first_not_of("0123456789") == std::string::npos);
  // 20000 digits: each count is 2000 +- 42 (one sigma); 1700..2300 fails with p < 1e-11.
  const std::string many = RandomDigits(20000);
  REQUIRE(many.size() == 20000);
  for (char d = '0'; d <= '9'; ++d) {
    INFO("digit " << d);
    const auto n = std::count(many.begin(), many.end(), d);
    CHECK(n > 1700);
    CHECK(n < 2300);
  }
}

TEST_CASE("GeneratePassword passes the policy and mixes every class", "[identity][secrets]") {
  for (int i = 0; i < 50; ++i) {
    const std::string password = GeneratePassword();
    INFO(password);
    CHECK(password.size() == 16);
    CHECK(CheckPassword(password, 10, {}).ok());
    CHECK(password.find_first_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos);
    CHECK(password.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos);
    CHECK(password.find_first_of("0123456789") != std::string::npos);
    CHECK(password.find_first_of("!#%+-.=@_") != std::string::npos);
  }
  CHECK(GeneratePassword(4).size() == 10);
  CHECK(GeneratePassword(40).size() == 40);
  CHECK(GeneratePassword() != GeneratePassword());
}

TEST_CASE("GenerateRecoveryCodes writes distinct unambiguous codes", "[identity][secrets]") {
  const std::vector<std::string> codes = GenerateRecoveryCodes();
  REQUIRE(codes.size() == 10);
  for (const std::string& code : codes) {
    INFO(code);
    REQUIRE(code.size() == 12);
    CHECK(code[4] == '-');
    CHECK(code[9] == '-');
    std::string chars = code;
    chars.erase(std::remove(chars.begin(), chars.end(), '-'), chars.end());
    CHECK(chars.size() == 10);
    CHECK(chars.find_first_not_of("abcdefghjkmnpqrstuvwxyz23456789") == std::string::npos);
    CHECK(NormalizeRecoveryCode(code) == chars);
  }
  std::vector<std::string> sorted = codes;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  CHECK(GenerateRecoveryCodes(0).empty());
  CHECK(GenerateRecoveryCodes(3).size() == 3);
}

TEST_CASE("NormalizeRecoveryCode lowercases and drops spaces and dashes", "[identity][secrets]") {
  CHECK(NormalizeRecoveryCode("ABCD-efgh-23") == "abcdefgh23");
  CHECK(NormalizeRecoveryCode(" abcd efgh 23 ") == "abcdefgh23");
  CHECK(NormalizeRecoveryCode("abcd--EFGH\t23") == "abcdefgh23");
  CHECK(NormalizeRecoveryCode("") == "");
}

TEST_CASE("ConstantTimeEquals", "[identity][secrets]") {
  CHECK(ConstantTimeEquals("", ""));
  CHECK(ConstantTimeEquals("abc", "abc"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abd"));
  CHECK_FALSE(ConstantTimeEquals("abc", "xbc"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abcd"));
  CHECK_FALSE(ConstantTimeEquals("abcd", "abc"));
  CHECK_FALSE(ConstantTimeEquals("", "a"));
  CHECK(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

// ---------------------------------------------------------------------------------------------
// QR codes

uint32_t ReadBigEndian32(const std::string& s, size_t offset) {
  return (uint32_t{static_cast<unsigned char>(s[offset])} << 24) |
         (uint32_t{static_cast<unsigned char>(s[offset + 1])} << 16) |
         (uint32_t{static_cast<unsigned char>(s[offset + 2])} << 8) |
         uint32_t{static_cast<unsigned char>(s[offset + 3])};
}

// The side of an SVG's square viewBox "0 0 N N".
int SvgSide(const std::string& svg) {
  const std::string marker = "viewBox=\"0 0 ";
  const size_t at = svg.find(marker);
  if (at == std::string::npos) return -1;
  return std::stoi(svg.substr(at + marker.size()));
}

TEST_CASE("QrPng writes a PNG of (modules + 8) * module_px pixels", "[identity][qr]") {
  // 11 bytes fit version 1 (21 modules) at level M.
  const absl::StatusOr<std::string> png = QrPng("hello world");
  REQUIRE(png.ok());
  REQUIRE(png->size() > 33);
  CHECK(png->substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(ReadBigEndian32(*png, 8) == 13);
  CHECK(png->substr(12, 4) == "IHDR");
  CHECK(ReadBigEndian32(*png, 16) == (21 + 8) * 6);
  CHECK(ReadBigEndian32(*png, 20) == (21 + 8) * 6);
  CHECK(static_cast<unsigned char>((*png)[24]) == 1);  // bit depth
  CHECK(static_cast<unsigned char>((*png)[25]) == 0);  // grayscale
  CHECK(png->substr(png->size() - 12) == std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12));

  const absl::StatusOr<std::string> small = QrPng("hello world", 1);
  REQUIRE(small.ok());
  CHECK(ReadBigEndian32(*small, 16) == 29);
}

TEST_CASE("QrPng and QrSvg agree on the symbol size for a TOTP URI", "[identity][qr]") {
  const std::string uri = OtpauthUri("Switchboard", "jane doe@example.com", kRfcSecret);
  const absl::StatusOr<std::string> png = QrPng(uri, 5);
  const absl::StatusOr<std::string> svg = QrSvg(uri);
  REQUIRE(png.ok());
  REQUIRE(svg.ok());
  const int side = SvgSide(*svg);
  const int modules = side - 8;
  INFO("side " << side);
  CHECK(modules > 21);             // more than version 1 holds
  CHECK((modules - 17) % 4 == 0);  // a QR version: 17 + 4v modules
  CHECK(ReadBigEndian32(*png, 16) == static_cast<uint32_t>(side * 5));
  CHECK(ReadBigEndian32(*png, 20) == static_cast<uint32_t>(side * 5));
}

TEST_CASE("QrSvg draws the dark modules as one path", "[identity][qr]") {
  const absl::StatusOr<std::string> svg = QrSvg("hello world");
  REQUIRE(svg.ok());
  CHECK_THAT(*svg, StartsWith("<svg"));
  CHECK(svg->find("viewBox=\"0 0 29 29\"") != std::string::npos);
  CHECK(svg->find("shape-rendering=\"crispEdges\"") != std::string::npos);
  const size_t path = svg->find("<path");
  REQUIRE(path != std::string::npos);
  CHECK(svg->find("<path", path + 1) == std::string::npos);
  // The top-left finder pattern starts after the 4-module quiet zone with a run of 7 dark modules.
  CHECK(svg->find("d=\"M4,4h7v1h-7z") != std::string::npos);
  CHECK(svg->substr(svg->size() - 6) == "</svg>");
}

TEST_CASE("QR codes reject empty and oversized text and bad module sizes", "[identity][qr]") {
  const std::string too_long(1001, 'a');
  for (const absl::StatusOr<std::string>& result :
       {QrPng(too_long), QrSvg(too_long), QrPng(""), QrSvg("")}) {
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(result.status()), StartsWith("text: "));
  }
  CHECK(QrPng(std::string(1000, 'a')).ok());
  for (int px : {0, -1, 33}) {
    const absl::StatusOr<std::string> result = QrPng("hello", px);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(Message(result.status()), StartsWith("module_px: "));
  }
}

}  // namespace

TEST_CASE("Sealer seals with AES-256-GCM, refuses tampering and passes legacy values through",
          "[identity][sealer]") {
  REQUIRE(absl::IsInvalidArgument(Sealer::FromBase64Key("c2hvcnQ=").status()));
  REQUIRE(absl::IsInvalidArgument(Sealer::FromBase64Key("***").status()));
  const Sealer sealer = *Sealer::FromBase64Key("c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXRzLWtleS0zMmI=");
  const std::string secret("totp\0secret bytes", 18);
  const std::string sealed = sealer.Seal(secret);
  CHECK(sealed.rfind("sb1:", 0) == 0);
  CHECK(sealed.find("secret") == std::string::npos);
  CHECK(sealer.Seal(secret) != sealed);  // a fresh nonce each time
  CHECK(*sealer.Open(sealed) == secret);
  CHECK(*sealer.Open("legacy plain value") == "legacy plain value");
  std::string tampered = sealed;
  // A character inside the ciphertext (the last ones may carry only padding bits).
  tampered[20] = tampered[20] == 'A' ? 'B' : 'A';
  CHECK(absl::IsDataLoss(sealer.Open(tampered).status()));
  const Sealer other = *Sealer::FromBase64Key("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=");
  CHECK(absl::IsDataLoss(other.Open(sealed).status()));
  const Sealer none;
  CHECK_FALSE(none.enabled());
  CHECK(none.Seal(secret) == secret);
  CHECK(absl::IsFailedPrecondition(none.Open(sealed).status()));
  CHECK(absl::IsDataLoss(sealer.Open("sb1:AAAA").status()));
}

}  // namespace sb::identity
