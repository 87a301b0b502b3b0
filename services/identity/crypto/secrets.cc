#include "services/identity/crypto/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "libs/common/check.h"
#include "libs/sip/digest.h"
#include "services/identity/crypto/password_policy.h"

namespace sb::identity {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string ToHex(const unsigned char* data, size_t n) {
  std::string out(n * 2, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[data[i] >> 4];
    out[2 * i + 1] = kHexDigits[data[i] & 0xf];
  }
  return out;
}

std::string DigestHex(const EVP_MD* md, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  SB_CHECK(EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr) == 1)
      << "EVP_Digest(" << EVP_MD_get0_name(md) << ") failed";
  return ToHex(digest, len);
}

// `n` characters drawn uniformly from `alphabet` (at most 256 characters): each random byte at or
// above the largest multiple of the alphabet size is rejected, so that there is no modulo bias.
std::string RandomFromAlphabet(std::string_view alphabet, size_t n) {
  SB_CHECK(!alphabet.empty() && alphabet.size() <= 256);
  const unsigned limit = 256 - 256 % alphabet.size();
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    for (char c : RandomBytes(n - out.size() + 8)) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < limit && out.size() < n) out.push_back(alphabet[byte % alphabet.size()]);
    }
  }
  return out;
}

constexpr std::string_view kLower = "abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kDigits = "0123456789";
constexpr std::string_view kSymbols = "!#%+-.=@_";
// Lowercase letters and digits without 0, o, 1, l and i: 31 characters.
constexpr std::string_view kRecoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789";

}  // namespace

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t done = 0;
  while (done < n) {
    // RAND_bytes takes an int length.
    const size_t chunk = std::min<size_t>(n - done, INT_MAX);
    SB_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + done),
                        static_cast<int>(chunk)) == 1)
        << "RAND_bytes failed: the CSPRNG is unusable";
    done += chunk;
  }
  return out;
}

std::string RandomUrlToken(size_t bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const std::string raw = RandomBytes(bytes);
  std::string out;
  out.reserve((bytes * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : raw) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::string RandomDigits(int n) {
  if (n <= 0) return "";
  return RandomFromAlphabet(kDigits, static_cast<size_t>(n));
}

std::string GeneratePassword(int length) {
  const size_t n = static_cast<size_t>(std::clamp(length, 10, 128));
  std::string alphabet;
  alphabet.append(kLower).append(kUpper).append(kDigits).append(kSymbols);
  const auto has_any_of = [](const std::string& s, std::string_view set) {
    return s.find_first_of(set) != std::string::npos;
  };
  // Draw whole passwords until one has every class and passes the policy, rather than forcing a
  // character of each class into fixed positions: that keeps every accepted password equally
  // likely. At 16 characters about 3 in 4 draws are accepted.
  for (;;) {
    std::string candidate = RandomFromAlphabet(alphabet, n);
    if (has_any_of(candidate, kLower) && has_any_of(candidate, kUpper) &&
        has_any_of(candidate, kDigits) && has_any_of(candidate, kSymbols) &&
        CheckPassword(candidate, 10, PasswordContext{}).ok()) {
      return candidate;
    }
  }
}

std::vector<std::string> GenerateRecoveryCodes(int count) {
  std::vector<std::string> codes;
  if (count <= 0) return codes;
  codes.reserve(static_cast<size_t>(count));
  while (codes.size() < static_cast<size_t>(count)) {
    const std::string raw = RandomFromAlphabet(kRecoveryAlphabet, 10);
    std::string code = raw.substr(0, 4) + "-" + raw.substr(4, 4) + "-" + raw.substr(8);
    // A user holds the set: a duplicate would be one code printed twice.
    if (std::find(codes.begin(), codes.end(), code) == codes.end()) codes.push_back(code);
  }
  return codes;
}

std::string NormalizeRecoveryCode(std::string_view code) {
  std::string out;
  out.reserve(code.size());
  for (char c : code) {
    if (c == ' ' || c == '\t' || c == '-') continue;
    out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string Sha256Hex(std::string_view data) { return DigestHex(EVP_sha256(), data); }

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC() needs a non-null key pointer even for an empty key.
  static constexpr unsigned char kEmpty = 0;
  const void* key_ptr = key.empty() ? &kEmpty : static_cast<const void*>(key.data());
  SB_CHECK(key.size() <= INT_MAX);
  SB_CHECK(HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
                &len) != nullptr)
      << "HMAC-SHA256 failed";
  return ToHex(mac, len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    // Still touch every byte of `a`, so that the time depends on lengths only.
    (void)CRYPTO_memcmp(a.data(), a.data(), a.size());
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string DigestHa1Md5(std::string_view user, std::string_view realm, std::string_view password) {
  return sip::digest::ComputeHa1(sip::digest::Algorithm::kMd5, user, realm, password);
}

std::string DigestHa1Sha256(std::string_view user, std::string_view realm,
                            std::string_view password) {
  return sip::digest::ComputeHa1(sip::digest::Algorithm::kSha256, user, realm, password);
}

}  // namespace sb::identity
