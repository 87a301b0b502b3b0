#include "services/identity/crypto/password_hasher.h"

#include <argon2.h>

#include <cstring>
#include <optional>

#include "services/identity/crypto/secrets.h"

namespace sb::identity {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr uint32_t kMaxIterations = 64;
constexpr uint32_t kMaxParallelism = 16;
constexpr uint32_t kMaxMemoryKib = 1024 * 1024;
// Bounds on what Verify accepts from a stored string (libargon2's own minimums are 8 and 4).
constexpr size_t kMinSaltBytes = 8;
constexpr size_t kMaxSaltBytes = 64;
constexpr size_t kMinHashBytes = 4;
constexpr size_t kMaxHashBytes = 64;

constexpr std::string_view kPrefix = "$argon2id$v=19$";

// Unpadded standard base64, as the PHC string format and libargon2 write it.
std::string Base64NoPad(std::string_view raw) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
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

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// The byte count that `n` unpadded base64 characters encode, or nullopt for an impossible n.
std::optional<size_t> Base64DecodedSize(size_t n) {
  if (n % 4 == 1) return std::nullopt;
  return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

struct PhcParts {
  PasswordHasher::Params params;
  size_t salt_bytes = 0;
  size_t hash_bytes = 0;
};

// Consumes a decimal uint32 from the front of `s`; no sign, no leading zeros.
std::optional<uint32_t> ConsumeUint32(std::string_view& s) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    value = value * 10 + static_cast<uint64_t>(s[i] - '0');
    if (value > UINT32_MAX) return std::nullopt;
    ++i;
  }
  if (i == 0 || (i > 1 && s[0] == '0')) return std::nullopt;
  s.remove_prefix(i);
  return static_cast<uint32_t>(value);
}

bool ConsumeLiteral(std::string_view& s, std::string_view literal) {
  if (s.substr(0, literal.size()) != literal) return false;
  s.remove_prefix(literal.size());
  return true;
}

// Consumes base64 characters up to the end of `s` or the next '$'; returns the bytes they encode.
std::optional<size_t> ConsumeBase64(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && s[i] != '$') {
    if (!IsBase64Char(s[i])) return std::nullopt;
    ++i;
  }
  s.remove_prefix(i);
  return Base64DecodedSize(i);
}

// Parses "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" strictly. libargon2 parses it again when
// verifying; this pass exists to bound the parameters before any memory is allocated for them.
std::optional<PhcParts> ParsePhc(std::string_view s) {
  PhcParts parts;
  std::optional<uint32_t> m, t, p;
  std::optional<size_t> salt, hash;
  if (!ConsumeLiteral(s, kPrefix) || !ConsumeLiteral(s, "m=") || !(m = ConsumeUint32(s)) ||
      !ConsumeLiteral(s, ",t=") || !(t = ConsumeUint32(s)) || !ConsumeLiteral(s, ",p=") ||
      !(p = ConsumeUint32(s)) || !ConsumeLiteral(s, "$") || !(salt = ConsumeBase64(s)) ||
      !ConsumeLiteral(s, "$") || !(hash = ConsumeBase64(s)) || !s.empty()) {
    return std::nullopt;
  }
  parts.params = {*m, *t, *p};
  parts.salt_bytes = *salt;
  parts.hash_bytes = *hash;
  return parts;
}

const char* PasswordPtr(std::string_view password) {
  return password.empty() ? "" : password.data();
}

}  // namespace

absl::Status PasswordHasher::ValidateParams(const Params& params) {
  if (params.iterations < 1 || params.iterations > kMaxIterations) {
    return absl::InvalidArgumentError("iterations: must be between 1 and " +
                                      std::to_string(kMaxIterations));
  }
  if (params.parallelism < 1 || params.parallelism > kMaxParallelism) {
    return absl::InvalidArgumentError("parallelism: must be between 1 and " +
                                      std::to_string(kMaxParallelism));
  }
  if (params.memory_kib < 8 * params.parallelism || params.memory_kib > kMaxMemoryKib) {
    return absl::InvalidArgumentError("memory_kib: must be between 8 * parallelism and " +
                                      std::to_string(kMaxMemoryKib));
  }
  return absl::OkStatus();
}

PasswordHasher::PasswordHasher() : PasswordHasher(Params{}) {}

PasswordHasher::PasswordHasher(Params params)
    : params_(params),
      dummy_encoded_(
          std::string(kPrefix) + "m=" + std::to_string(params.memory_kib) +
          ",t=" + std::to_string(params.iterations) + ",p=" + std::to_string(params.parallelism) +
          "$" + Base64NoPad(RandomBytes(kSaltBytes)) + "$" + Base64NoPad(RandomBytes(kHashBytes))) {
}

absl::StatusOr<std::string> PasswordHasher::Hash(std::string_view password) const {
  if (password.size() > kMaxHashedPasswordBytes) {
    return absl::InvalidArgumentError("password: must be at most " +
                                      std::to_string(kMaxHashedPasswordBytes) + " bytes");
  }
  if (absl::Status valid = ValidateParams(params_); !valid.ok()) {
    return absl::FailedPreconditionError("password hasher params: " + std::string(valid.message()));
  }
  const std::string salt = RandomBytes(kSaltBytes);
  // argon2_encodedlen counts the terminating NUL.
  std::string encoded(argon2_encodedlen(params_.iterations, params_.memory_kib, params_.parallelism,
                                        kSaltBytes, kHashBytes, Argon2_id),
                      '\0');
  const int rc = argon2id_hash_encoded(params_.iterations, params_.memory_kib, params_.parallelism,
                                       PasswordPtr(password), password.size(), salt.data(),
                                       salt.size(), kHashBytes, encoded.data(), encoded.size());
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) {
    return absl::ResourceExhaustedError("password hash: cannot allocate " +
                                        std::to_string(params_.memory_kib) + " KiB");
  }
  if (rc != ARGON2_OK) {
    return absl::InternalError(std::string("password hash: ") + argon2_error_message(rc));
  }
  encoded.resize(std::strlen(encoded.c_str()));
  return encoded;
}

bool PasswordHasher::Verify(std::string_view password, std::string_view encoded) const {
  if (password.size() > kMaxHashedPasswordBytes) return false;
  const std::optional<PhcParts> parts = ParsePhc(encoded);  // rejects NULs too
  if (!parts.has_value() || !ValidateParams(parts->params).ok() ||
      parts->salt_bytes < kMinSaltBytes || parts->salt_bytes > kMaxSaltBytes ||
      parts->hash_bytes < kMinHashBytes || parts->hash_bytes > kMaxHashBytes) {
    return false;
  }
  const std::string terminated(encoded);
  // argon2id_verify recomputes the hash and compares it in constant time.
  return argon2id_verify(terminated.c_str(), PasswordPtr(password), password.size()) == ARGON2_OK;
}

void PasswordHasher::VerifyDummy(std::string_view password) const {
  // Same early return as Verify, so that both paths take the same time for oversized input too.
  if (password.size() > kMaxHashedPasswordBytes) return;
  (void)argon2id_verify(dummy_encoded_.c_str(), PasswordPtr(password), password.size());
}

bool PasswordHasher::NeedsRehash(std::string_view encoded) const {
  const std::optional<PhcParts> parts = ParsePhc(encoded);
  if (!parts.has_value()) return true;
  return parts->params.memory_kib < params_.memory_kib ||
         parts->params.iterations < params_.iterations ||
         parts->params.parallelism < params_.parallelism || parts->salt_bytes < kSaltBytes ||
         parts->hash_bytes < kHashBytes;
}

}  // namespace sb::identity
