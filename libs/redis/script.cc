#include "libs/redis/script.h"

#include <openssl/evp.h>

#include <utility>

#include "libs/common/check.h"

namespace sb::redis {

Script::Script(std::string source) : source_(std::move(source)) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // Only fails when OpenSSL cannot allocate or has no SHA1 at all: not something to recover from.
  SB_CHECK(EVP_Digest(source_.data(), source_.size(), digest, &length, EVP_sha1(), nullptr) == 1)
      << "EVP_Digest(SHA1) failed";
  static constexpr char kHex[] = "0123456789abcdef";
  sha1_.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    sha1_ += kHex[digest[i] >> 4];
    sha1_ += kHex[digest[i] & 0x0f];
  }
}

}  // namespace sb::redis
