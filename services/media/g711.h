#pragma once

// G.711 (ITU-T, 1972): mu-law (PCMU, RTP payload type 0) and A-law (PCMA, type 8) to and from
// 16-bit linear PCM. Decoding is a table lookup; encoding the segment search of the
// recommendation.

#include <cstdint>

namespace sb::media::g711 {

int16_t UlawToLinear(uint8_t code);
int16_t AlawToLinear(uint8_t code);
uint8_t LinearToUlaw(int16_t sample);
uint8_t LinearToAlaw(int16_t sample);

}  // namespace sb::media::g711
