#include "libs/sip/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/check.h"

namespace sb::sip::digest {
namespace {

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("digest credentials: ", Absl(what)));
}

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// RFC 3261 §25.1 token characters.
bool IsTokenChar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsControl(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

// ---- Hashing ----------------------------------------------------------------------------------

// Fetched once: EVP_md5()/EVP_sha256() would make OpenSSL 3 look the implementation up again on
// every EVP_DigestInit_ex. Never freed (they live as long as the process).
const EVP_MD* MessageDigest(Algorithm algorithm) {
  static const EVP_MD* const kMd5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  static const EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  const EVP_MD* md = algorithm == Algorithm::kMd5 ? kMd5 : kSha256;
  // Only a broken OpenSSL installation (or a FIPS-only provider refusing MD5) gets here.
  SB_CHECK(md != nullptr) << "OpenSSL has no " << AlgorithmName(algorithm);
  return md;
}

constexpr char kHexDigits[] = "0123456789abcdef";

// One digest computation fed piece by piece, so that "a:b:c" is never joined into a string.
class Hasher {
 public:
  explicit Hasher(Algorithm algorithm) : md_(MessageDigest(algorithm)), ctx_(EVP_MD_CTX_new()) {
    SB_CHECK(ctx_ != nullptr);
    Reset();
  }
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Reset() { SB_CHECK(EVP_DigestInit_ex(ctx_, md_, nullptr) == 1); }

  Hasher& Add(std::string_view data) {
    SB_CHECK(EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1);
    return *this;
  }

  // Adds `data` with ASCII letters lowercased.
  Hasher& AddLowercase(std::string_view data) {
    char buf[64];
    while (!data.empty()) {
      const size_t n = std::min(data.size(), sizeof(buf));
      for (size_t i = 0; i < n; ++i) buf[i] = AsciiLower(data[i]);
      Add(std::string_view(buf, n));
      data.remove_prefix(n);
    }
    return *this;
  }

  // The digest as lowercase hex; the hasher can be Reset and used again.
  std::string FinishHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    SB_CHECK(EVP_DigestFinal_ex(ctx_, digest, &len) == 1);
    std::string out(2 * len, '\0');
    for (unsigned int i = 0; i < len; ++i) {
      out[2 * i] = kHexDigits[digest[i] >> 4];
      out[2 * i + 1] = kHexDigits[digest[i] & 0xf];
    }
    return out;
  }

 private:
  const EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

size_t HexLength(Algorithm algorithm) { return algorithm == Algorithm::kMd5 ? 32 : 64; }

// ---- Credentials parser -----------------------------------------------------------------------

enum Param {
  kUsername,
  kRealm,
  kNonce,
  kUri,
  kResponse,
  kAlgorithm,
  kCnonce,
  kOpaque,
  kQop,
  kNc,
  kUserhash,
  kParamCount
};

constexpr std::array<std::string_view, kParamCount> kParamNames = {
    "username", "realm",  "nonce", "uri", "response", "algorithm",
    "cnonce",   "opaque", "qop",   "nc",  "userhash"};

// Unknown parameters are skipped, but remembered (lowercased) to refuse duplicates; more than
// this many is not a client we want to talk to.
constexpr size_t kMaxUnknownParams = 16;

// A header value that passed the control-character scan: CR and LF appear only as CRLF followed
// by SP or HTAB (a folded line), so every CR and LF outside quotes is whitespace.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek() const { return s_[i_]; }  // only when !AtEnd()
  void Advance() { ++i_; }
  size_t offset() const { return i_; }

  void SkipWhitespace() {
    while (!AtEnd() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool AtWhitespace() const {
    return !AtEnd() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r');
  }

  std::string_view Token() {
    const size_t start = i_;
    while (!AtEnd() && IsTokenChar(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

absl::Status CheckControlCharacters(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\r' && i + 2 < s.size() && s[i + 1] == '\n' &&
        (s[i + 2] == ' ' || s[i + 2] == '\t')) {
      i += 2;  // folded line: whitespace
      continue;
    }
    if (IsControl(c)) return Invalid(absl::StrCat("control character at byte ", i));
  }
  return absl::OkStatus();
}

// Reads a quoted-string (the scanner is at its opening quote) into `out`, undoing \-escapes.
absl::Status ReadQuoted(Scanner& scanner, std::string_view name, std::string& out) {
  scanner.Advance();
  for (;;) {
    if (scanner.AtEnd()) return Invalid(absl::StrCat("unterminated quoted value of ", Absl(name)));
    char c = scanner.Peek();
    scanner.Advance();
    if (c == '"') return absl::OkStatus();
    if (c == '\\') {
      if (scanner.AtEnd()) {
        return Invalid(absl::StrCat("unterminated quoted value of ", Absl(name)));
      }
      c = scanner.Peek();
      scanner.Advance();
    }
    if (c == '\r' || c == '\n') {
      return Invalid(absl::StrCat("line break inside the quoted value of ", Absl(name)));
    }
    if (out.size() >= kMaxParamBytes) {
      return Invalid(absl::StrCat(Absl(name), " is longer than ", kMaxParamBytes, " bytes"));
    }
    out.push_back(c);
  }
}

absl::StatusOr<Algorithm> ReadAlgorithm(std::string_view value) {
  if (EqualsIgnoreCase(value, "MD5")) return Algorithm::kMd5;
  if (EqualsIgnoreCase(value, "SHA-256")) return Algorithm::kSha256;
  for (std::string_view unsupported :
       {"MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"}) {
    if (EqualsIgnoreCase(value, unsupported)) {
      return Invalid(absl::StrCat("algorithm ", Absl(unsupported),
                                  " is not supported (only MD5 and SHA-256)"));
    }
  }
  return Invalid("unknown algorithm (only MD5 and SHA-256 are supported)");
}

}  // namespace

std::string_view AlgorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::kMd5 ? "MD5" : "SHA-256";
}

absl::StatusOr<Credentials> ParseCredentials(std::string_view header_value) {
  if (header_value.size() > kMaxCredentialsBytes) {
    return Invalid(absl::StrCat("longer than ", kMaxCredentialsBytes, " bytes"));
  }
  if (absl::Status status = CheckControlCharacters(header_value); !status.ok()) return status;

  Scanner scanner(header_value);
  scanner.SkipWhitespace();
  if (!EqualsIgnoreCase(scanner.Token(), "Digest")) return Invalid("the scheme is not Digest");
  if (!scanner.AtWhitespace()) return Invalid("expected parameters after Digest");

  std::array<std::string, kParamCount> values;
  std::array<bool, kParamCount> seen{};
  std::vector<std::string> unknown;
  for (;;) {
    scanner.SkipWhitespace();
    if (scanner.AtEnd()) break;
    if (scanner.Peek() == ',') {  // an empty list element
      scanner.Advance();
      continue;
    }
    const size_t name_offset = scanner.offset();
    const std::string_view raw_name = scanner.Token();
    if (raw_name.empty()) {
      return Invalid(absl::StrCat("expected a parameter name at byte ", name_offset));
    }
    if (raw_name.size() > kMaxParamBytes) {
      return Invalid(absl::StrCat("parameter name longer than ", kMaxParamBytes, " bytes"));
    }
    int param = kParamCount;
    for (int p = 0; p < kParamCount; ++p) {
      if (EqualsIgnoreCase(raw_name, kParamNames[p])) param = p;
    }
    if (EqualsIgnoreCase(raw_name, "username*")) {
      return Invalid("username* (RFC 7616 extended username) is not supported");
    }
    // Messages name known parameters only: the rest is the sender's text.
    const std::string_view name = param < kParamCount ? kParamNames[param] : "a parameter";

    scanner.SkipWhitespace();
    if (scanner.AtEnd() || scanner.Peek() != '=') {
      return Invalid(absl::StrCat("expected '=' after ", Absl(name)));
    }
    scanner.Advance();
    scanner.SkipWhitespace();
    std::string value;
    if (!scanner.AtEnd() && scanner.Peek() == '"') {
      if (absl::Status status = ReadQuoted(scanner, name, value); !status.ok()) return status;
    } else {
      const std::string_view token = scanner.Token();
      if (token.empty()) return Invalid(absl::StrCat(Absl(name), " has no value"));
      if (token.size() > kMaxParamBytes) {
        return Invalid(absl::StrCat(Absl(name), " is longer than ", kMaxParamBytes, " bytes"));
      }
      value = std::string(token);
    }

    if (param < kParamCount) {
      if (seen[param]) return Invalid(absl::StrCat("duplicate parameter ", Absl(name)));
      seen[param] = true;
      values[param] = std::move(value);
    } else {
      std::string lower(raw_name);
      for (char& c : lower) c = AsciiLower(c);
      if (std::find(unknown.begin(), unknown.end(), lower) != unknown.end()) {
        return Invalid("duplicate parameter (an unknown one)");
      }
      if (unknown.size() == kMaxUnknownParams) {
        return Invalid(absl::StrCat("more than ", kMaxUnknownParams, " unknown parameters"));
      }
      unknown.push_back(std::move(lower));
    }

    scanner.SkipWhitespace();
    if (scanner.AtEnd()) break;
    if (scanner.Peek() != ',') return Invalid(absl::StrCat("expected ',' after ", Absl(name)));
    scanner.Advance();
  }

  for (Param required : {kUsername, kRealm, kNonce, kUri, kResponse}) {
    const std::string_view name = kParamNames[required];
    if (!seen[required]) return Invalid(absl::StrCat("missing ", Absl(name)));
    if (values[required].empty()) return Invalid(absl::StrCat(Absl(name), " is empty"));
  }

  Credentials out;
  if (seen[kAlgorithm]) {
    absl::StatusOr<Algorithm> algorithm = ReadAlgorithm(values[kAlgorithm]);
    if (!algorithm.ok()) return algorithm.status();
    out.algorithm = *algorithm;
  }

  if (seen[kUserhash]) {
    if (EqualsIgnoreCase(values[kUserhash], "true")) {
      return Invalid("userhash=true (RFC 7616 §3.4.4) is not supported");
    }
    if (!EqualsIgnoreCase(values[kUserhash], "false")) {
      return Invalid("userhash must be true or false");
    }
  }

  if (seen[kQop]) {
    const std::string& qop = values[kQop];
    if (EqualsIgnoreCase(qop, "auth-int")) return Invalid("qop auth-int is not supported");
    if (!EqualsIgnoreCase(qop, "auth")) return Invalid("qop must be auth");
    if (!seen[kCnonce]) return Invalid("missing cnonce (required with qop)");
    if (values[kCnonce].empty()) return Invalid("cnonce is empty");
    if (!seen[kNc]) return Invalid("missing nc (required with qop)");
    const std::string& nc = values[kNc];
    if (nc.size() != 8 || !std::all_of(nc.begin(), nc.end(), IsHexDigit)) {
      return Invalid("nc must be exactly 8 hex digits");
    }
    uint32_t count = 0;
    for (char c : nc) count = (count << 4) | static_cast<uint32_t>(HexValue(c));
    if (count == 0) return Invalid("nc must be at least 00000001");
    out.nonce_count = count;
  } else if (seen[kCnonce] || seen[kNc]) {
    return Invalid("cnonce and nc are only allowed with qop");
  }

  std::string& response = values[kResponse];
  if (response.size() != HexLength(out.algorithm) ||
      !std::all_of(response.begin(), response.end(), IsHexDigit)) {
    return Invalid(absl::StrCat("response must be ", HexLength(out.algorithm), " hex digits for ",
                                Absl(AlgorithmName(out.algorithm))));
  }
  for (char& c : response) c = AsciiLower(c);

  out.username = std::move(values[kUsername]);
  out.realm = std::move(values[kRealm]);
  out.nonce = std::move(values[kNonce]);
  out.uri = std::move(values[kUri]);
  out.response = std::move(response);
  out.qop = std::move(values[kQop]);
  out.cnonce = std::move(values[kCnonce]);
  out.nc = std::move(values[kNc]);
  out.opaque = std::move(values[kOpaque]);
  return out;
}

// ---- Challenges -------------------------------------------------------------------------------

namespace {

absl::Status CheckChallengeValue(std::string_view name, std::string_view value, bool required) {
  if (required && value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("digest challenge: ", Absl(name), " is empty"));
  }
  if (value.size() > kMaxParamBytes) {
    return absl::InvalidArgumentError(absl::StrCat("digest challenge: ", Absl(name),
                                                   " is longer than ", kMaxParamBytes, " bytes"));
  }
  if (std::any_of(value.begin(), value.end(), IsControl)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest challenge: ", Absl(name), " contains a control character"));
  }
  return absl::OkStatus();
}

void AppendQuoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

absl::StatusOr<std::string> BuildChallenge(Algorithm algorithm, const ChallengeParams& params) {
  for (const auto& [name, value, required] :
       {std::tuple<std::string_view, std::string_view, bool>{"realm", params.realm, true},
        {"nonce", params.nonce, true},
        {"opaque", params.opaque, false}}) {
    if (absl::Status status = CheckChallengeValue(name, value, required); !status.ok()) {
      return status;
    }
  }
  std::string out = "Digest realm=";
  AppendQuoted(out, params.realm);
  out.append(", nonce=");
  AppendQuoted(out, params.nonce);
  if (!params.opaque.empty()) {
    out.append(", opaque=");
    AppendQuoted(out, params.opaque);
  }
  out.append(", algorithm=").append(AlgorithmName(algorithm)).append(", qop=\"auth\"");
  if (params.stale) out.append(", stale=true");
  return out;
}

absl::StatusOr<std::vector<std::string>> BuildChallenges(const ChallengeParams& params) {
  std::vector<std::string> out;
  for (Algorithm algorithm : {Algorithm::kSha256, Algorithm::kMd5}) {
    absl::StatusOr<std::string> challenge = BuildChallenge(algorithm, params);
    if (!challenge.ok()) return challenge.status();
    out.push_back(*std::move(challenge));
  }
  return out;
}

// ---- Nonces -----------------------------------------------------------------------------------

namespace {

constexpr std::string_view kNonceLabel = "sb-sip-nonce-v1";
constexpr size_t kTimeBytes = 8;
constexpr size_t kRandomBytes = 12;
constexpr size_t kMacBytes = 16;
constexpr size_t kNonceBytes = kTimeBytes + kRandomBytes + kMacBytes;  // 36: no base64 padding
constexpr size_t kNonceChars = kNonceBytes / 3 * 4;                    // 48
static_assert(kNonceBytes % 3 == 0);

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Base64UrlValue(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

void RandomFill(unsigned char* out, size_t n) {
  SB_CHECK(RAND_bytes(out, static_cast<int>(n)) == 1)
      << "RAND_bytes failed: the CSPRNG is unusable";
}

}  // namespace

// HMAC-SHA256 (RFC 2104) under a fixed key, with the two key blocks hashed once: a MAC then costs
// two context copies and the hashing of the message. (HMAC() would look the algorithms up and set
// the key up again on every call: three times the cost of a nonce check.) Copying from the const
// contexts only reads them, so one Mac serves any number of threads.
class NonceMinter::Mac {
 public:
  explicit Mac(std::string_view key)
      : md_(MessageDigest(Algorithm::kSha256)), inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
    SB_CHECK(inner_ != nullptr && outer_ != nullptr);
    unsigned char block[kBlockBytes] = {};
    if (key.size() > kBlockBytes) {
      unsigned int len = 0;
      SB_CHECK(EVP_Digest(key.data(), key.size(), block, &len, md_, nullptr) == 1);
    } else {
      std::copy(key.begin(), key.end(), block);
    }
    unsigned char pad[kBlockBytes];
    for (size_t i = 0; i < kBlockBytes; ++i) pad[i] = block[i] ^ 0x36;
    SB_CHECK(EVP_DigestInit_ex(inner_, md_, nullptr) == 1 &&
             EVP_DigestUpdate(inner_, pad, kBlockBytes) == 1);
    for (size_t i = 0; i < kBlockBytes; ++i) pad[i] = block[i] ^ 0x5c;
    SB_CHECK(EVP_DigestInit_ex(outer_, md_, nullptr) == 1 &&
             EVP_DigestUpdate(outer_, pad, kBlockBytes) == 1);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
  }
  ~Mac() {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
  }
  Mac(const Mac&) = delete;
  Mac& operator=(const Mac&) = delete;

  // The first kMacBytes of HMAC-SHA256(key, kNonceLabel || body), body being the time and random
  // part of a nonce.
  void NonceMac(const unsigned char* body, unsigned char* mac) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    SB_CHECK(ctx != nullptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    SB_CHECK(EVP_MD_CTX_copy_ex(ctx, inner_) == 1 &&
             EVP_DigestUpdate(ctx, kNonceLabel.data(), kNonceLabel.size()) == 1 &&
             EVP_DigestUpdate(ctx, body, kTimeBytes + kRandomBytes) == 1 &&
             EVP_DigestFinal_ex(ctx, digest, &len) == 1);
    SB_CHECK(EVP_MD_CTX_copy_ex(ctx, outer_) == 1 && EVP_DigestUpdate(ctx, digest, len) == 1 &&
             EVP_DigestFinal_ex(ctx, digest, &len) == 1);
    EVP_MD_CTX_free(ctx);
    std::copy(digest, digest + kMacBytes, mac);
  }

 private:
  static constexpr size_t kBlockBytes = 64;  // SHA-256's block

  const EVP_MD* md_;
  EVP_MD_CTX* inner_;  // after hashing key ^ ipad
  EVP_MD_CTX* outer_;  // after hashing key ^ opad
};

NonceMinter::NonceMinter() {
  unsigned char secret[32];
  RandomFill(secret, sizeof(secret));
  mac_ = std::make_shared<const Mac>(
      std::string_view(reinterpret_cast<const char*>(secret), sizeof(secret)));
  OPENSSL_cleanse(secret, sizeof(secret));
}

NonceMinter::NonceMinter(std::string_view secret) : mac_(std::make_shared<const Mac>(secret)) {}

absl::StatusOr<NonceMinter> NonceMinter::WithSecret(std::string_view secret) {
  if (secret.size() < kMinSecretBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("nonce secret: at least ", kMinSecretBytes, " bytes are needed"));
  }
  return NonceMinter(secret);
}

std::string NonceMinter::Mint(absl::Time now) const {
  unsigned char raw[kNonceBytes];
  const auto seconds = static_cast<uint64_t>(absl::ToUnixSeconds(now));
  for (size_t i = 0; i < kTimeBytes; ++i) {
    raw[i] = static_cast<unsigned char>(seconds >> (8 * (kTimeBytes - 1 - i)));
  }
  RandomFill(raw + kTimeBytes, kRandomBytes);
  mac_->NonceMac(raw, raw + kTimeBytes + kRandomBytes);

  std::string out;
  out.reserve(kNonceChars);
  for (size_t i = 0; i < kNonceBytes; i += 3) {
    const uint32_t group = (uint32_t{raw[i]} << 16) | (uint32_t{raw[i + 1]} << 8) | raw[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Url[(group >> shift) & 0x3f]);
  }
  return out;
}

NonceState NonceMinter::Check(std::string_view nonce, absl::Time now,
                              absl::Duration max_age) const {
  if (nonce.size() != kNonceChars) return NonceState::kInvalid;
  unsigned char raw[kNonceBytes];
  for (size_t i = 0, o = 0; i < kNonceChars; i += 4, o += 3) {
    uint32_t group = 0;
    for (size_t j = 0; j < 4; ++j) {
      const int v = Base64UrlValue(nonce[i + j]);
      if (v < 0) return NonceState::kInvalid;
      group = (group << 6) | static_cast<uint32_t>(v);
    }
    raw[o] = static_cast<unsigned char>(group >> 16);
    raw[o + 1] = static_cast<unsigned char>(group >> 8);
    raw[o + 2] = static_cast<unsigned char>(group);
  }
  unsigned char mac[kMacBytes];
  mac_->NonceMac(raw, mac);
  if (CRYPTO_memcmp(mac, raw + kTimeBytes + kRandomBytes, kMacBytes) != 0) {
    return NonceState::kInvalid;
  }
  uint64_t seconds = 0;
  for (size_t i = 0; i < kTimeBytes; ++i) seconds = (seconds << 8) | raw[i];
  const absl::Time issued = absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  const absl::Duration age = now - issued;
  if (age > max_age || age < -kMaxClockSkew) return NonceState::kStale;
  return NonceState::kValid;
}

// ---- Nonce counts -----------------------------------------------------------------------------

struct NonceCounter::Shard {
  absl::Mutex mu;
  // Nonce hash -> highest nc accepted.
  absl::flat_hash_map<uint64_t, uint32_t> last_nc ABSL_GUARDED_BY(mu);
  // The same keys by first use, oldest first, with the time each is forgotten. Callers' clocks
  // are read before the lock, so this is in time order up to their differences (microseconds);
  // expiry reads only the front, and an entry behind a later one waits for it.
  std::deque<std::pair<uint64_t, absl::Time>> order ABSL_GUARDED_BY(mu);

  void PopOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    last_nc.erase(order.front().first);
    order.pop_front();
  }
};

NonceCounter::NonceCounter(NonceCounterOptions options)
    : options_(options), shards_(new Shard[std::max<size_t>(options.shards, 1)]) {
  options_.shards = std::max<size_t>(options_.shards, 1);
}

NonceCounter::~NonceCounter() = default;

bool NonceCounter::Accept(std::string_view nonce, uint32_t nc, absl::Time now) {
  if (nc == 0) return false;
  const uint64_t key = absl::Hash<std::string_view>{}(nonce);
  Shard& shard = shards_[key % options_.shards];
  // Each shard holds its share of the capacity (at least one entry).
  const size_t shard_capacity =
      std::max<size_t>(1, (options_.capacity + options_.shards - 1) / options_.shards);

  absl::MutexLock lock(&shard.mu);
  while (!shard.order.empty() && shard.order.front().second <= now) shard.PopOldest();
  if (auto it = shard.last_nc.find(key); it != shard.last_nc.end()) {
    if (nc <= it->second) return false;
    it->second = nc;
    return true;
  }
  while (shard.order.size() >= shard_capacity) shard.PopOldest();
  shard.last_nc.emplace(key, nc);
  shard.order.emplace_back(key, now + options_.max_age);
  return true;
}

size_t NonceCounter::size() const {
  size_t total = 0;
  for (size_t i = 0; i < options_.shards; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    total += shards_[i].last_nc.size();
  }
  return total;
}

// ---- Responses --------------------------------------------------------------------------------

std::string ComputeHa1(Algorithm algorithm, std::string_view username, std::string_view realm,
                       std::string_view password) {
  Hasher hasher(algorithm);
  hasher.Add(username).Add(":").Add(realm).Add(":").Add(password);
  return hasher.FinishHex();
}

std::string ComputeResponse(Algorithm algorithm, std::string_view ha1_hex, std::string_view method,
                            std::string_view digest_uri, std::string_view nonce,
                            std::string_view nc_hex, std::string_view cnonce,
                            std::string_view qop) {
  Hasher hasher(algorithm);
  hasher.Add(method).Add(":").Add(digest_uri);
  const std::string ha2 = hasher.FinishHex();
  hasher.Reset();
  hasher.AddLowercase(ha1_hex).Add(":").Add(nonce).Add(":");
  if (!qop.empty()) hasher.Add(nc_hex).Add(":").Add(cnonce).Add(":").Add(qop).Add(":");
  hasher.Add(ha2);
  return hasher.FinishHex();
}

bool Verify(const Credentials& credentials, std::string_view method, std::string_view ha1_hex) {
  const std::string expected =
      ComputeResponse(credentials.algorithm, ha1_hex, method, credentials.uri, credentials.nonce,
                      credentials.nc, credentials.cnonce, credentials.qop);
  if (credentials.response.size() != expected.size()) return false;
  std::string given = credentials.response;
  for (char& c : given) c = AsciiLower(c);
  return CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

}  // namespace sb::sip::digest
