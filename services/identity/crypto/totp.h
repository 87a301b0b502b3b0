#pragma once

// Time-based one-time passwords (RFC 6238, computed with liboath) as authenticator apps expect
// them: HMAC-SHA1, 6 digits, 30-second steps counted from the Unix epoch; plus the RFC 4648 base32
// these apps use for secrets and the otpauth:// URI that a QR code carries to them.
//
//   std::string secret = GenerateTotpSecret();        // store encrypted, raw bytes
//   std::string uri = OtpauthUri("Switchboard", user.email, secret);
//   std::optional<int64_t> step = VerifyTotp(secret, request.code(), clock.Now());
//   if (!step || *step <= user.last_totp_step) -> reject (wrong code or replay)
//   user.last_totp_step = *step;
//
// Status codes: only Base32Decode returns one (InvalidArgument for text that is not base32).
// Thread-safety: all functions are safe to call from any number of threads at once.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sb::identity {

inline constexpr int kTotpDigits = 6;
inline constexpr int kTotpPeriodSeconds = 30;

// A new TOTP secret: 20 random bytes (160 bits, the HMAC-SHA1 block RFC 4226 recommends), raw.
std::string GenerateTotpSecret();

// RFC 4648 base32 of `raw`: uppercase A-Z2-7, without '=' padding ("foobar" -> "MZXW6YTBOI").
std::string Base32Encode(std::string_view raw);

// Decodes base32 as people and apps write it: case-insensitive, ignoring spaces and tabs, with or
// without trailing '=' padding. InvalidArgument "base32: ..." for any other character, for
// padding followed by data, or for a length no encoding produces.
absl::StatusOr<std::string> Base32Decode(std::string_view text);

// The time step that `t` falls in: floor(unix seconds / 30). Times before the epoch count as step
// 0.
int64_t TotpStep(absl::Time t);

// The 6-digit code for raw `secret` at time `t` (zero-padded: "005924").
std::string TotpCode(std::string_view secret, absl::Time t);

// Checks a code a user typed against the steps around `now` (from TotpStep(now) - window_steps to
// TotpStep(now) + window_steps, to allow for clock drift and typing time; `window_steps` is clamped
// to [0, 10]). `code` must be exactly
// 6 ASCII digits once spaces are removed. Returns the matched step (the caller must reject a step
// <= the last one it accepted for this user, or a code could be replayed within its window), or
// nullopt. Every candidate is compared, in constant time, whatever matched first; if two steps
// happen to share the code the later one is returned.
std::optional<int64_t> VerifyTotp(std::string_view secret, std::string_view code, absl::Time now,
                                  int window_steps = 1);

// The Key URI that authenticator apps read from a QR code:
//   otpauth://totp/<issuer>:<account>?secret=<BASE32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30
// `issuer` and `account` are percent-encoded (everything but A-Z a-z 0-9 - . _ ~, so ':' '@' and
// ' ' become %3A %40 %20); `secret_raw` is the raw secret, base32-encoded here.
std::string OtpauthUri(std::string_view issuer, std::string_view account,
                       std::string_view secret_raw);

}  // namespace sb::identity
