#include "services/media/g711.h"

#include <array>
#include <cstdlib>

namespace sb::media::g711 {
namespace {

constexpr int kUlawBias = 0x84;
constexpr int kUlawClip = 32635;

constexpr int16_t DecodeUlaw(uint8_t code) {
  const int u = static_cast<uint8_t>(~code);
  const int exponent = (u >> 4) & 0x07;
  const int mantissa = u & 0x0f;
  const int magnitude = (((mantissa << 3) + kUlawBias) << exponent) - kUlawBias;
  return static_cast<int16_t>((u & 0x80) != 0 ? -magnitude : magnitude);
}

constexpr int16_t DecodeAlaw(uint8_t code) {
  const int a = code ^ 0x55;
  const int exponent = (a >> 4) & 0x07;
  const int mantissa = a & 0x0f;
  const int magnitude =
      exponent == 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  // In A-law the sign bit set means positive.
  return static_cast<int16_t>((a & 0x80) != 0 ? magnitude : -magnitude);
}

template <int16_t (*Decode)(uint8_t)>
constexpr std::array<int16_t, 256> Table() {
  std::array<int16_t, 256> t{};
  for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = Decode(static_cast<uint8_t>(i));
  return t;
}

constexpr std::array<int16_t, 256> kUlaw = Table<DecodeUlaw>();
constexpr std::array<int16_t, 256> kAlaw = Table<DecodeAlaw>();

}  // namespace

int16_t UlawToLinear(uint8_t code) { return kUlaw[code]; }
int16_t AlawToLinear(uint8_t code) { return kAlaw[code]; }

uint8_t LinearToUlaw(int16_t sample) {
  const int sign = sample < 0 ? 0x80 : 0;
  int magnitude = std::abs(static_cast<int>(sample));
  if (magnitude > kUlawClip) magnitude = kUlawClip;
  magnitude += kUlawBias;
  int exponent = 7;
  for (int mask = 0x4000; (magnitude & mask) == 0 && exponent > 0; mask >>= 1) --exponent;
  const int mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return static_cast<uint8_t>(~(sign | (exponent << 4) | mantissa));
}

uint8_t LinearToAlaw(int16_t sample) {
  // On the 13-bit magnitude, with the sign folded as the recommendation does (-1 - x).
  int value = sample >> 3;
  int mask = 0xd5;  // positive: sign bit set, then the even bits inverted
  if (value < 0) {
    mask = 0x55;
    value = -value - 1;
  }
  int segment = 0;
  while (segment < 8 && value > (0x20 << segment) - 1) ++segment;
  if (segment >= 8) return static_cast<uint8_t>(0x7f ^ mask);
  int code = segment << 4;
  code |= segment < 2 ? (value >> 1) & 0x0f : (value >> segment) & 0x0f;
  return static_cast<uint8_t>(code ^ mask);
}

}  // namespace sb::media::g711
