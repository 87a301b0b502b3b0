#pragma once

// Ed25519Key: an Ed25519 key pair, or only its public half, for signing and verifying access
// tokens. OpenSSL stays behind this header.
//
//   SB_ASSIGN_OR_RETURN(Ed25519Key key, Ed25519Key::FromPrivatePem(pem));
//   SB_ASSIGN_OR_RETURN(std::string signature, key.Sign(data));
//   bool ok = key.PublicOnly().Verify(data, signature);
//
// A key is immutable and shares its parsed OpenSSL key between copies, so copying is cheap and
// every method may be called from any number of threads at once.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace sb::auth {

class Ed25519Key {
 public:
  // Size of a raw Ed25519 public key and of a signature, in bytes.
  static constexpr size_t kPublicKeyBytes = 32;
  static constexpr size_t kSignatureBytes = 64;

  // A fresh key pair from the system's CSPRNG. Internal if OpenSSL fails.
  static absl::StatusOr<Ed25519Key> Generate();
  // Parses an unencrypted PKCS#8 PEM block ("BEGIN PRIVATE KEY"). InvalidArgument when the text
  // is not such a block (an encrypted key is refused, never prompted for) or holds a key of
  // another type.
  static absl::StatusOr<Ed25519Key> FromPrivatePem(std::string_view pem);
  // Parses a SubjectPublicKeyInfo PEM block ("BEGIN PUBLIC KEY"). InvalidArgument as above.
  static absl::StatusOr<Ed25519Key> FromPublicPem(std::string_view pem);
  // Wraps a raw 32-byte public key (the "x" of an OKP JWK). InvalidArgument on a wrong size.
  static absl::StatusOr<Ed25519Key> FromPublicBytes(std::string_view raw);

  bool has_private() const;
  // The private key as PKCS#8 PEM. FailedPrecondition when this key has only the public half.
  absl::StatusOr<std::string> PrivatePem() const;
  // The public key as SubjectPublicKeyInfo PEM.
  const std::string& PublicPem() const;
  // The raw 32-byte public key.
  const std::string& PublicBytes() const;

  // The 64-byte Ed25519 signature of `data`. FailedPrecondition without the private half,
  // Internal if OpenSSL fails.
  absl::StatusOr<std::string> Sign(std::string_view data) const;
  // True when `signature` is a valid signature of `data` by this key. False for a signature of
  // any size other than 64 bytes.
  bool Verify(std::string_view data, std::string_view signature) const;

  // A copy holding only the public half.
  Ed25519Key PublicOnly() const;

 private:
  struct State;
  explicit Ed25519Key(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  // Takes ownership of `pkey`, which may be null (an OpenSSL failure: Internal) or a key of any
  // type (InvalidArgument unless Ed25519).
  static absl::StatusOr<Ed25519Key> Adopt(evp_pkey_st* pkey, bool has_private);

  std::shared_ptr<const State> state_;  // never null
};

}  // namespace sb::auth
