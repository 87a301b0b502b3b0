#include "services/identity/crypto/sealer.h"

#include <openssl/evp.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "libs/common/check.h"
#include "services/identity/crypto/secrets.h"

namespace sb::identity {
namespace {

constexpr char kPrefix[] = "sb1:";
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

}  // namespace

absl::StatusOr<Sealer> Sealer::FromBase64Key(std::string_view key_base64) {
  if (key_base64.empty()) return Sealer();
  std::string key;
  const absl::string_view text(key_base64.data(), key_base64.size());
  if (!absl::Base64Unescape(text, &key) && !absl::WebSafeBase64Unescape(text, &key)) {
    return absl::InvalidArgumentError("secrets_key: not base64");
  }
  if (key.size() != 32) {
    return absl::InvalidArgumentError(
        "secrets_key: must be 32 bytes (e.g. `openssl rand -base64 32`)");
  }
  return Sealer(std::move(key));
}

std::string Sealer::Seal(std::string_view plaintext) const {
  if (!enabled()) return std::string(plaintext);
  const std::string nonce = RandomBytes(kNonceBytes);
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  out.replace(0, kNonceBytes, nonce);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(key_.data());
  auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + kNonceBytes);
  // Failures here are failures of the library on fixed-size inputs: broken invariants.
  SB_CHECK(ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, iv) == 1);
  SB_CHECK(EVP_EncryptUpdate(ctx.get(), dst, &len,
                             reinterpret_cast<const unsigned char*>(plaintext.data()),
                             static_cast<int>(plaintext.size())) == 1);
  int final_len = 0;
  SB_CHECK(EVP_EncryptFinal_ex(ctx.get(), dst + len, &final_len) == 1);
  SB_CHECK(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                               out.data() + kNonceBytes + plaintext.size()) == 1);
  return kPrefix + absl::Base64Escape(out);
}

absl::StatusOr<std::string> Sealer::Open(std::string_view sealed) const {
  const absl::string_view text(sealed.data(), sealed.size());
  if (!absl::StartsWith(text, kPrefix)) return std::string(sealed);
  if (!enabled()) {
    return absl::FailedPreconditionError(
        "a sealed secret was read but no --secrets_key is configured");
  }
  std::string raw;
  if (!absl::Base64Unescape(text.substr(sizeof(kPrefix) - 1), &raw) ||
      raw.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError("sealed secret is malformed");
  }
  const size_t body = raw.size() - kNonceBytes - kTagBytes;
  std::string out(body, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  int final_len = 0;
  const bool ok =
      ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()),
                         reinterpret_cast<const unsigned char*>(raw.data())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        reinterpret_cast<const unsigned char*>(raw.data() + kNonceBytes),
                        static_cast<int>(body)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          raw.data() + kNonceBytes + body) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len,
                          &final_len) == 1;
  if (!ok) return absl::DataLossError("sealed secret does not authenticate (wrong secrets_key?)");
  return out;
}

}  // namespace sb::identity
