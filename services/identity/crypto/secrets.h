#pragma once

// Random secrets and digests for the identity service: tokens, one-time digits, generated
// passwords, recovery codes, SHA-256/HMAC-SHA256 hex digests, constant-time comparison and the HA1
// values that SIP/HTTP digest authentication stores instead of a password.
//
//   std::string token = RandomUrlToken(32);          // 43 characters, URL-safe
//   std::vector<std::string> codes = GenerateRecoveryCodes();
//   bool ok = ConstantTimeEquals(Sha256Hex(NormalizeRecoveryCode(input)), stored_hash);
//
// Randomness comes from OpenSSL's CSPRNG (RAND_bytes). A CSPRNG that fails is a broken machine,
// not an error a caller can handle: these functions abort through SB_CHECK then, and otherwise
// cannot fail, so none returns a status.
//
// Thread-safety: every function is safe to call from any number of threads at once.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sb::identity {

// `n` bytes from the CSPRNG (raw binary, not text).
std::string RandomBytes(size_t n);

// `bytes` random bytes as unpadded base64url (RFC 4648 section 5): ceil(bytes * 4 / 3) characters
// of [A-Za-z0-9_-]. 32 bytes give a 256-bit token of 43 characters.
std::string RandomUrlToken(size_t bytes);

// `n` uniformly random decimal digits (rejection sampling, so no modulo bias); "" when n <= 0.
std::string RandomDigits(int n);

// A random password of `length` characters drawn from upper- and lowercase letters, digits and the
// symbols !#%+-.=@_ (on every keyboard layout), with at least one of each of the four classes. It
// always passes CheckPassword(min_length = 10) with an empty context. `length` is clamped to [10,
// 128].
std::string GeneratePassword(int length = 16);

// `count` distinct one-time recovery codes of the form "xxxx-xxxx-xx" (10 characters, about 49.5
// bits) from a lowercase alphabet without the look-alikes 0, o, 1, l and i. Store only a hash of
// NormalizeRecoveryCode(code). `count` <= 0 gives an empty vector.
std::vector<std::string> GenerateRecoveryCodes(int count = 10);

// What a user typed as a recovery code, in the form to hash and compare: ASCII-lowercased, with
// spaces, tabs and dashes removed ("ABCD-efgh 23" -> "abcdefgh23").
std::string NormalizeRecoveryCode(std::string_view code);

// Lowercase hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// Lowercase hex HMAC-SHA256 of `data` under `key` (64 characters).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// True when `a` and `b` are byte-for-byte equal. The time taken depends only on the lengths, not on
// the content or on where the first difference is (CRYPTO_memcmp); strings of different lengths
// compare unequal.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// HA1 for digest authentication: lowercase hex of H(user ":" realm ":" password), with H = MD5
// (RFC 2617, algorithm=MD5, 32 characters) or SHA-256 (RFC 7616, algorithm=SHA-256, 64
// characters). The inputs are used as given (no normalisation; RFC 7616's username hashing is the
// caller's business). Both are sip::digest::ComputeHa1 (libs/sip/digest.h), the one HA1
// implementation that the registrar checks responses against.
std::string DigestHa1Md5(std::string_view user, std::string_view realm, std::string_view password);
std::string DigestHa1Sha256(std::string_view user, std::string_view realm,
                            std::string_view password);

}  // namespace sb::identity
