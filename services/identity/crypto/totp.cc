#include "services/identity/crypto/totp.h"

#include <liboath/oath.h>

#include <algorithm>
#include <array>
#include <mutex>

#include "libs/common/check.h"
#include "services/identity/crypto/secrets.h"

namespace sb::identity {
namespace {

constexpr char kBase32Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr int kMaxWindowSteps = 10;

void EnsureOathInitialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int rc = oath_init();
    SB_CHECK(rc == OATH_OK) << "oath_init: " << oath_strerror(rc);
  });
}

// HOTP(secret, step) is TOTP's definition (RFC 6238 section 4.2). Going through the HOTP call with
// the counter, rather than oath_totp_generate with a time_t, keeps steps near the end of time from
// overflowing step * 30.
std::string CodeAtStep(std::string_view secret, uint64_t step) {
  EnsureOathInitialized();
  std::array<char, kTotpDigits + 1> otp{};
  const int rc = oath_hotp_generate(secret.empty() ? "" : secret.data(), secret.size(), step,
                                    kTotpDigits, false, OATH_HOTP_DYNAMIC_TRUNCATION, otp.data());
  // Fails only for an unsupported digit count (ours is a constant) or when HMAC cannot run.
  SB_CHECK(rc == OATH_OK) << "oath_hotp_generate: " << oath_strerror(rc);
  return std::string(otp.data(), kTotpDigits);
}

int Base32Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace

std::string GenerateTotpSecret() { return RandomBytes(20); }

std::string Base32Encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() * 8 + 4) / 5);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : raw) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kBase32Alphabet[(acc >> bits) & 0x1f]);
    }
  }
  if (bits > 0) out.push_back(kBase32Alphabet[(acc << (5 - bits)) & 0x1f]);
  return out;
}

absl::StatusOr<std::string> Base32Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 5 / 8);
  uint32_t acc = 0;
  int bits = 0;
  size_t data_chars = 0;
  size_t pad_chars = 0;
  for (char c : text) {
    if (c == ' ' || c == '\t') continue;
    if (c == '=') {
      ++pad_chars;
      continue;
    }
    if (pad_chars > 0) return absl::InvalidArgumentError("base32: data after '=' padding");
    const int value = Base32Value(c);
    if (value < 0) return absl::InvalidArgumentError("base32: invalid character");
    ++data_chars;
    acc = (acc << 5) | static_cast<uint32_t>(value);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // 8 characters carry 5 bytes; a final group of 1, 3 or 6 characters encodes no whole byte count.
  const size_t tail = data_chars % 8;
  if (tail == 1 || tail == 3 || tail == 6) return absl::InvalidArgumentError("base32: bad length");
  if (pad_chars > 0 && (data_chars + pad_chars) % 8 != 0) {
    return absl::InvalidArgumentError("base32: bad padding");
  }
  return out;
}

int64_t TotpStep(absl::Time t) {
  const int64_t unix_seconds = absl::ToUnixSeconds(t);  // floors; saturates at infinity
  return unix_seconds < 0 ? 0 : unix_seconds / kTotpPeriodSeconds;
}

std::string TotpCode(std::string_view secret, absl::Time t) {
  return CodeAtStep(secret, static_cast<uint64_t>(TotpStep(t)));
}

std::optional<int64_t> VerifyTotp(std::string_view secret, std::string_view code, absl::Time now,
                                  int window_steps) {
  std::string digits;
  digits.reserve(kTotpDigits);
  for (char c : code) {
    if (c == ' ') continue;
    if (c < '0' || c > '9' || digits.size() == static_cast<size_t>(kTotpDigits))
      return std::nullopt;
    digits.push_back(c);
  }
  if (digits.size() != static_cast<size_t>(kTotpDigits)) return std::nullopt;

  const int64_t window = std::clamp(window_steps, 0, kMaxWindowSteps);
  const int64_t current = TotpStep(now);
  std::optional<int64_t> matched;
  // No early exit: the time taken must not say which step (if any) matched.
  for (int64_t step = std::max<int64_t>(0, current - window); step <= current + window; ++step) {
    if (ConstantTimeEquals(CodeAtStep(secret, static_cast<uint64_t>(step)), digits)) {
      matched = step;
    }
  }
  return matched;
}

std::string OtpauthUri(std::string_view issuer, std::string_view account,
                       std::string_view secret_raw) {
  const std::string encoded_issuer = PercentEncode(issuer);
  std::string uri = "otpauth://totp/";
  uri.append(encoded_issuer)
      .append(":")
      .append(PercentEncode(account))
      .append("?secret=")
      .append(Base32Encode(secret_raw))
      .append("&issuer=")
      .append(encoded_issuer)
      .append("&algorithm=SHA1&digits=6&period=30");
  return uri;
}

}  // namespace sb::identity
