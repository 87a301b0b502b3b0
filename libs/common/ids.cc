#include "libs/common/ids.h"

#include <unistd.h>

#include <cstdint>
#include <random>

#include "absl/strings/ascii.h"

namespace sb {

std::string HostNameOr(std::string fallback) {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return fallback;
  return host;
}

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? text[i] != '-'
                      : !absl::ascii_isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

namespace {

uint64_t RandomWord() {
  // Seeded with 256 bits from the kernel per thread: a 32-bit seed would make ids collide across
  // processes at scale.
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return rng();
}

std::string FormatUuid(uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  auto put = [&](uint64_t word, int nibbles_from, int nibbles_to) {
    for (int n = nibbles_from; n < nibbles_to; ++n)
      out.push_back(kHex[(word >> (60 - 4 * n)) & 0xF]);
  };
  put(hi, 0, 8);
  out.push_back('-');
  put(hi, 8, 12);
  out.push_back('-');
  put(hi, 12, 16);
  out.push_back('-');
  put(lo, 0, 4);
  out.push_back('-');
  put(lo, 4, 16);
  return out;
}

uint64_t Rfc4122Variant(uint64_t lo) {
  return (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);
}

}  // namespace

std::string NewUuid() {
  uint64_t hi = RandomWord();
  hi = (hi & ~uint64_t{0xF000}) | uint64_t{0x4000};  // version 4
  return FormatUuid(hi, Rfc4122Variant(RandomWord()));
}

std::string NewUuidV7(absl::Time now) {
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(now)) & ((uint64_t{1} << 48) - 1);
  const uint64_t hi = (ms << 16) | uint64_t{0x7000} | (RandomWord() & 0x0FFF);  // version 7
  return FormatUuid(hi, Rfc4122Variant(RandomWord()));
}

}  // namespace sb
