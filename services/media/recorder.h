#pragma once

// Recorder: writes calls as stereo WAV files (8 kHz, 16-bit PCM; the left channel one party, the
// right the other) from the RTP the relay taps.
//
// A Recording is the relay's PacketTap for one call: the relay worker copies each packet into
// the recording's ring of fixed slots (no lock, no allocation; a full ring drops the packet and
// counts it). The recorder's thread drains the rings every `tick`, decodes G.711 (PCMU, PCMA;
// other payloads are not audio it can decode: telephone-event and comfort noise are skipped,
// anything else becomes silence and is counted) and places the samples on the recording's
// timeline by RTP timestamp:
//
// - A channel's stream is anchored to the wall clock by its packets' arrival: the first packet of
//   an SSRC is placed where it arrived; the next ones at their timestamp's distance from it. A
//   packet that arrives earlier than its timestamp says moves the anchor back to it (the
//   least-delayed packet wins), and a timestamp more than half a second from its arrival (a jump)
//   re-anchors. Lost packets leave silence; jitter does not move anything; a new SSRC (a new
//   party after a transfer) is placed by its own arrival. So the two channels stay aligned to
//   each other and to the call's time.
// - Frames older than `jitter_allowance` are final and written; a packet later than that is
//   dropped (counted). Paused spans are written as silence, to the sample.
// - The WAV header is rewritten after every write (libsndfile's automatic header update), so a
//   file whose process died mid-call is a valid WAV of everything written until then.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/media/rtp_relay.h"

typedef struct sf_private_tag SNDFILE;

namespace sb::media {

inline constexpr int kRecordingRate = 8000;

// What a finished (or interrupted) recording file holds.
struct RecordingFile {
  int64_t frames = 0;
  int64_t paused_frames = 0;
  int64_t size_bytes = 0;
  std::string sha256;  // hex
};

// The size, frames and SHA-256 of a WAV on disk (what is readable of one left by a crash).
absl::StatusOr<RecordingFile> InspectRecording(const std::string& path);

class Recorder;

class Recording final : public PacketTap {
 public:
  ~Recording() override;
  // The relay worker's side.
  void OnRtp(int side, const uint8_t* packet, size_t size, int64_t arrival_ns) override;

  const std::string& path() const { return path_; }
  // Counters, for tests and metrics.
  int64_t packets_dropped_full() const { return dropped_full_.load(); }
  int64_t packets_late() const;
  int64_t packets_undecodable() const;

 private:
  friend class Recorder;
  struct Slot;
  struct Channel {
    bool anchored = false;
    uint32_t ssrc = 0;
    uint32_t timestamp = 0;  // of the anchor packet
    int64_t position = 0;    // the anchor's frame
  };

  Recording(std::string path, int left_side, int64_t start_ns, absl::Duration allowance,
            size_t slots);
  // Recorder thread (or a control call), with mu_ held.
  void Drain() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Place(int channel, const uint8_t* packet, size_t size, int64_t arrival_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the frames before `until` (silence where nothing came, and in paused spans).
  absl::Status Flush(int64_t until) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t FrameAt(int64_t ns) const;
  bool Paused(int64_t frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const int left_side_;
  const int64_t start_ns_;
  const int64_t allowance_frames_;

  // The packet ring: written by the relay worker, read by the recorder.
  std::unique_ptr<Slot[]> slots_;
  const size_t capacity_;
  std::atomic<uint64_t> head_{0};
  std::atomic<uint64_t> tail_{0};
  std::atomic<int64_t> dropped_full_{0};

  mutable absl::Mutex mu_;
  SNDFILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  Channel channels_[2] ABSL_GUARDED_BY(mu_);
  // Stereo frames from `flushed_` on, one second's worth, as a ring.
  std::vector<int16_t> window_ ABSL_GUARDED_BY(mu_);
  int64_t flushed_ ABSL_GUARDED_BY(mu_) = 0;
  // Paused spans in frames, [from, to); the last one open (to = INT64_MAX) while paused.
  std::vector<std::pair<int64_t, int64_t>> paused_ ABSL_GUARDED_BY(mu_);
  int64_t late_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t undecodable_ ABSL_GUARDED_BY(mu_) = 0;
};

class Recorder {
 public:
  struct Options {
    // How long a frame waits for late packets before it is written.
    absl::Duration jitter_allowance = absl::Milliseconds(300);
    // How often the rings are drained.
    absl::Duration tick = absl::Milliseconds(20);
    // Packet slots per recording (a second and more of both parties' 20 ms packets).
    size_t slots = 128;
  };
  explicit Recorder(Options options);
  Recorder() : Recorder(Options{}) {}
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Creates `path` (and its directories) and starts recording at `start_ns` (MonotonicNanos):
  // the relay's side `left_side` is the left channel. The caller sets it as the pair's tap.
  absl::StatusOr<std::shared_ptr<Recording>> Start(const std::string& path, int left_side,
                                                   int64_t start_ns);
  // Silence from `at_ns` until Resume.
  void Pause(Recording& recording, int64_t at_ns);
  void Resume(Recording& recording, int64_t at_ns);
  // Writes everything up to `at_ns`, closes the file and reports it. Idempotent.
  absl::StatusOr<RecordingFile> Stop(const std::shared_ptr<Recording>& recording, int64_t at_ns);

  size_t active() const;

 private:
  void Run();

  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Recording>> recordings_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sb::media
