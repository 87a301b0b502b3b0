#include "services/media/recorder.h"

#include <sndfile.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "libs/testing/child_process.h"
#include "libs/testing/eventually.h"
#include "services/media/g711.h"

namespace sb::media {
namespace {

constexpr int64_t kMs = 1'000'000;  // ns

TEST_CASE("G.711: mu-law and A-law decode and re-encode to the same values", "[media][g711]") {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<uint8_t>(c);
    const int16_t u = g711::UlawToLinear(code);
    CHECK(g711::UlawToLinear(g711::LinearToUlaw(u)) == u);
    const int16_t a = g711::AlawToLinear(code);
    CHECK(g711::AlawToLinear(g711::LinearToAlaw(a)) == a);
  }
  // The recommendation's end points.
  CHECK(g711::LinearToUlaw(0) == 0xff);
  CHECK(g711::UlawToLinear(0x00) == -32124);
  CHECK(g711::UlawToLinear(0x80) == 32124);
  CHECK(g711::LinearToAlaw(0) == 0xd5);
  CHECK(g711::AlawToLinear(0xd5) == 8);
  CHECK(g711::AlawToLinear(0x2a) == -32256);
  // Encoding is monotonic and within one step of the input over the whole range.
  for (int x = -32000; x <= 32000; x += 37) {
    const auto s = static_cast<int16_t>(x);
    CHECK(std::abs(g711::UlawToLinear(g711::LinearToUlaw(s)) - x) <= std::max(8, std::abs(x) / 16));
    CHECK(std::abs(g711::AlawToLinear(g711::LinearToAlaw(s)) - x) <=
          std::max(16, std::abs(x) / 16));
  }
}

// A party's 20 ms PCMU packets of a `hz` tone: payload bytes and the RTP packet.
struct Stream {
  uint32_t ssrc;
  uint32_t first_timestamp;
  uint16_t first_seq;
  double hz;

  std::string Payload(int i) const {
    std::string p;
    for (int n = 0; n < 160; ++n) {
      const double t = (i * 160 + n) / 8000.0;
      p.push_back(static_cast<char>(
          g711::LinearToUlaw(static_cast<int16_t>(10000 * std::sin(2 * M_PI * hz * t)))));
    }
    return p;
  }
  std::string Packet(int i, int payload_type = 0) const {
    std::string p(12, '\0');
    const auto seq = static_cast<uint16_t>(first_seq + i);
    const uint32_t ts = first_timestamp + static_cast<uint32_t>(i) * 160;
    p[0] = static_cast<char>(0x80);
    p[1] = static_cast<char>(payload_type);
    p[2] = static_cast<char>(seq >> 8);
    p[3] = static_cast<char>(seq & 0xff);
    for (int b = 0; b < 4; ++b) {
      p[4 + b] = static_cast<char>((ts >> (24 - 8 * b)) & 0xff);
      p[8 + b] = static_cast<char>((ssrc >> (24 - 8 * b)) & 0xff);
    }
    return p + Payload(i);
  }
};

void Feed(Recording& r, int side, const std::string& packet, int64_t arrival_ns) {
  r.OnRtp(side, reinterpret_cast<const uint8_t*>(packet.data()), packet.size(), arrival_ns);
}

// The WAV's frames: [frame][channel].
std::vector<std::array<int16_t, 2>> ReadWav(const std::string& path, int* rate = nullptr) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  REQUIRE(f != nullptr);
  REQUIRE(info.channels == 2);
  if (rate != nullptr) *rate = info.samplerate;
  std::vector<std::array<int16_t, 2>> frames(static_cast<size_t>(info.frames));
  REQUIRE(sf_readf_short(f, frames[0].data(), info.frames) == info.frames);
  sf_close(f);
  return frames;
}

// Whether channel `c` holds `stream`'s packets [from, to) at frame `at` + 160 per packet.
bool Holds(const std::vector<std::array<int16_t, 2>>& wav, int c, const Stream& stream, int from,
           int to, int64_t at) {
  for (int i = from; i < to; ++i) {
    const std::string payload = stream.Payload(i);
    for (int n = 0; n < 160; ++n) {
      const size_t frame = static_cast<size_t>(at + (i - from) * 160 + n);
      if (frame >= wav.size()) return false;
      if (wav[frame][static_cast<size_t>(c)] !=
          g711::UlawToLinear(static_cast<uint8_t>(payload[static_cast<size_t>(n)]))) {
        return false;
      }
    }
  }
  return true;
}

bool Silent(const std::vector<std::array<int16_t, 2>>& wav, int c, int64_t from, int64_t to) {
  for (int64_t f = from; f < to; ++f) {
    if (wav[static_cast<size_t>(f)][static_cast<size_t>(c)] != 0) return false;
  }
  return true;
}

TEST_CASE("a recording places each party's audio by timestamp: jitter and loss do not shift it",
          "[media][recorder]") {
  testing::TempDir dir;
  Recorder recorder;
  // Arrivals are in the near future of the monotonic clock, so the recorder's own ticks write
  // nothing before Stop: the test decides every arrival time.
  const int64_t start = MonotonicNanos() + 50 * kMs;
  const std::string path = dir.path() + "/t/call.wav";
  auto r = recorder.Start(path, /*left_side=*/1, start);
  REQUIRE(r.ok());
  const Stream customer{0x1111, 90000, 7, 440};
  const Stream agent{0x2222, 4000000000u, 65500, 1000};  // wraps its sequence and timestamp
  std::mt19937 random(42);
  std::uniform_int_distribution<int> jitter_ms(0, 40);
  for (int i = 0; i < 50; ++i) {
    // The customer (side 1, left) loses packets 20..24; the agent's packets (side 0, right) come
    // up to 40 ms late, the first on time, in order of arrival.
    if (i < 20 || i >= 25) Feed(**r, 1, customer.Packet(i), start + i * 20 * kMs);
    Feed(**r, 0, agent.Packet(i), start + i * 20 * kMs + (i == 0 ? 0 : jitter_ms(random) * kMs));
    // A telephone-event and a comfort-noise packet are no audio.
    if (i == 30) Feed(**r, 0, agent.Packet(i, 101), start + i * 20 * kMs);
  }
  auto file = recorder.Stop(*r, start + 1000 * kMs);
  REQUIRE(file.ok());
  CHECK(file->frames == 8000);
  CHECK(file->paused_frames == 0);
  CHECK(file->size_bytes == 44 + 8000 * 4);
  CHECK(file->sha256.size() == 64);
  int rate = 0;
  const auto wav = ReadWav(path, &rate);
  CHECK(rate == 8000);
  REQUIRE(wav.size() == 8000);
  CHECK(Holds(wav, 0, customer, 0, 20, 0));
  CHECK(Silent(wav, 0, 20 * 160, 25 * 160));
  CHECK(Holds(wav, 0, customer, 25, 50, 25 * 160));
  CHECK(Holds(wav, 1, agent, 0, 50, 0));
  CHECK((*r)->packets_late() == 0);
  CHECK((*r)->packets_undecodable() == 0);
  // Stop is idempotent.
  CHECK(recorder.Stop(*r, start + 2000 * kMs).ok());
  CHECK(ReadWav(path).size() == 8000);
}

TEST_CASE("a paused recording writes silence of the paused length; a new SSRC is placed anew",
          "[media][recorder]") {
  testing::TempDir dir;
  Recorder recorder;
  const int64_t start = MonotonicNanos() + 50 * kMs;
  const std::string path = dir.path() + "/paused.wav";
  auto r = recorder.Start(path, 0, start);
  REQUIRE(r.ok());
  const Stream caller{1, 0, 0, 500};
  const Stream first_agent{2, 1000, 0, 700};
  // After a transfer: a new party, its own SSRC and timestamps, from 600 ms.
  const Stream second_agent{3, 123456789, 900, 900};
  for (int i = 0; i < 50; ++i) {
    Feed(**r, 0, caller.Packet(i), start + i * 20 * kMs);
    if (i < 30) {
      Feed(**r, 1, first_agent.Packet(i), start + i * 20 * kMs);
    } else {
      Feed(**r, 1, second_agent.Packet(i - 30), start + i * 20 * kMs);
    }
  }
  recorder.Pause(**r, start + 200 * kMs);
  recorder.Pause(**r, start + 250 * kMs);  // already paused: no effect
  recorder.Resume(**r, start + 400 * kMs);
  auto file = recorder.Stop(*r, start + 1000 * kMs);
  REQUIRE(file.ok());
  CHECK(file->frames == 8000);
  CHECK(file->paused_frames == 1600);
  const auto wav = ReadWav(path);
  REQUIRE(wav.size() == 8000);
  CHECK(Holds(wav, 0, caller, 0, 10, 0));
  CHECK(Silent(wav, 0, 1600, 3200));
  CHECK(Silent(wav, 1, 1600, 3200));
  CHECK(Holds(wav, 0, caller, 20, 50, 3200));
  CHECK(Holds(wav, 1, first_agent, 20, 30, 3200));
  CHECK(Holds(wav, 1, second_agent, 0, 20, 30 * 160));
}

TEST_CASE("a recording's file is a valid WAV while it is written (a crash leaves it readable)",
          "[media][recorder]") {
  testing::TempDir dir;
  Recorder recorder(Recorder::Options{.jitter_allowance = absl::Milliseconds(100)});
  // Started two seconds ago: the recorder's ticks write what is due.
  const int64_t start = MonotonicNanos() - 2000 * kMs;
  const std::string path = dir.path() + "/live.wav";
  auto r = recorder.Start(path, 0, start);
  REQUIRE(r.ok());
  const Stream caller{1, 0, 0, 500};
  for (int i = 0; i < 50; ++i) Feed(**r, 0, caller.Packet(i), start + i * 20 * kMs);
  // Without Stop, another reader sees a WAV whose header covers what was written so far.
  REQUIRE(testing::Eventually([&] {
    auto seen = InspectRecording(path);
    return seen.ok() && seen->frames >= 12000;
  }));
  const auto wav = ReadWav(path);
  CHECK(Holds(wav, 0, caller, 0, 50, 0));
  // A packet for a time already written (1 s), 0.4 s after it: late, dropped and counted. (Half
  // a second or more after its time it would be a jump, placed where it arrived.)
  Feed(**r, 0, caller.Packet(50), start + 1400 * kMs);
  auto file = recorder.Stop(*r, MonotonicNanos());
  REQUIRE(file.ok());
  CHECK((*r)->packets_late() == 1);
  CHECK(file->frames >= 16000);
}

}  // namespace
}  // namespace sb::media
