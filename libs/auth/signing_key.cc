#include "libs/auth/signing_key.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <climits>

namespace sb::auth {

struct Ed25519Key::State {
  State(EVP_PKEY* pkey, bool has_private) : pkey(pkey, &EVP_PKEY_free), has_private(has_private) {}

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey;
  bool has_private;
  std::string public_bytes;  // raw 32 bytes
  std::string public_pem;
};

namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

// OpenSSL leaves the reasons for a failure on a per-thread queue; we report our own status and
// must not leave them behind for the next, unrelated OpenSSL caller on this thread to misread.
absl::Status OpenSslError(std::string_view what) {
  ERR_clear_error();
  return absl::InternalError(std::string(what) + " failed in OpenSSL");
}

// Refuses a passphrase: without this OpenSSL would prompt on the terminal for an encrypted key.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<Bio> ReadOnlyBio(std::string_view text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("PEM text is too large");
  }
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
  if (bio == nullptr) return OpenSslError("BIO_new_mem_buf");
  return bio;
}

absl::StatusOr<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  if (size < 0 || (size > 0 && data == nullptr)) return OpenSslError("BIO_get_mem_data");
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

absl::StatusOr<Ed25519Key> Ed25519Key::Adopt(EVP_PKEY* pkey, bool has_private) {
  if (pkey == nullptr) return OpenSslError("loading the key");
  auto state = std::make_shared<State>(pkey, has_private);
  if (EVP_PKEY_is_a(pkey, "ED25519") != 1) {
    return absl::InvalidArgumentError("not an Ed25519 key");
  }
  size_t size = kPublicKeyBytes;
  state->public_bytes.resize(size);
  if (EVP_PKEY_get_raw_public_key(
          pkey, reinterpret_cast<unsigned char*>(state->public_bytes.data()), &size) != 1 ||
      size != kPublicKeyBytes) {
    return OpenSslError("EVP_PKEY_get_raw_public_key");
  }
  Bio out(BIO_new(BIO_s_mem()), &BIO_free);
  if (out == nullptr || PEM_write_bio_PUBKEY(out.get(), pkey) != 1) {
    return OpenSslError("PEM_write_bio_PUBKEY");
  }
  auto pem = BioContents(out.get());
  if (!pem.ok()) return pem.status();
  state->public_pem = *std::move(pem);
  return Ed25519Key(std::move(state));
}

absl::StatusOr<Ed25519Key> Ed25519Key::Generate() {
  return Adopt(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), /*has_private=*/true);
}

absl::StatusOr<Ed25519Key> Ed25519Key::FromPrivatePem(std::string_view pem) {
  auto bio = ReadOnlyBio(pem);
  if (!bio.ok()) return bio.status();
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio->get(), nullptr, &NoPassphrase, nullptr);
  if (pkey == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not an unencrypted PKCS#8 private key PEM");
  }
  return Adopt(pkey, /*has_private=*/true);
}

absl::StatusOr<Ed25519Key> Ed25519Key::FromPublicPem(std::string_view pem) {
  auto bio = ReadOnlyBio(pem);
  if (!bio.ok()) return bio.status();
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio->get(), nullptr, &NoPassphrase, nullptr);
  if (pkey == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a SubjectPublicKeyInfo public key PEM");
  }
  return Adopt(pkey, /*has_private=*/false);
}

absl::StatusOr<Ed25519Key> Ed25519Key::FromPublicBytes(std::string_view raw) {
  if (raw.size() != kPublicKeyBytes) {
    return absl::InvalidArgumentError("an Ed25519 public key is 32 bytes");
  }
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (pkey == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not an Ed25519 public key");
  }
  return Adopt(pkey, /*has_private=*/false);
}

bool Ed25519Key::has_private() const { return state_->has_private; }

absl::StatusOr<std::string> Ed25519Key::PrivatePem() const {
  if (!state_->has_private) return absl::FailedPreconditionError("key has no private half");
  Bio out(BIO_new(BIO_s_mem()), &BIO_free);
  if (out == nullptr || PEM_write_bio_PrivateKey(out.get(), state_->pkey.get(), nullptr, nullptr, 0,
                                                 nullptr, nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  return BioContents(out.get());
}

const std::string& Ed25519Key::PublicPem() const { return state_->public_pem; }

const std::string& Ed25519Key::PublicBytes() const { return state_->public_bytes; }

absl::StatusOr<std::string> Ed25519Key::Sign(std::string_view data) const {
  if (!state_->has_private) return absl::FailedPreconditionError("key has no private half");
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  // Ed25519 hashes internally (PureEdDSA): no digest, and only the one-shot EVP_DigestSign.
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, state_->pkey.get()) != 1) {
    return OpenSslError("EVP_DigestSignInit");
  }
  std::string signature(kSignatureBytes, '\0');
  size_t size = signature.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      size != kSignatureBytes) {
    return OpenSslError("EVP_DigestSign");
  }
  return signature;
}

bool Ed25519Key::Verify(std::string_view data, std::string_view signature) const {
  if (signature.size() != kSignatureBytes) return false;
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, state_->pkey.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  const int result = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(data.data()), data.size());
  if (result != 1) ERR_clear_error();
  return result == 1;
}

Ed25519Key Ed25519Key::PublicOnly() const {
  if (!state_->has_private) return *this;
  // A copy of the public half alone, so that the private key is not reachable through the copy
  // at all (not merely hidden behind has_private()).
  auto key = FromPublicBytes(state_->public_bytes);
  if (key.ok()) return *std::move(key);
  // Re-wrapping 32 bytes we took from a valid key cannot fail short of OpenSSL running out of
  // memory; share the pair, still answering has_private() == false.
  auto state = std::make_shared<State>(nullptr, false);
  EVP_PKEY_up_ref(state_->pkey.get());
  state->pkey.reset(state_->pkey.get());
  state->public_bytes = state_->public_bytes;
  state->public_pem = state_->public_pem;
  return Ed25519Key(std::move(state));
}

}  // namespace sb::auth
