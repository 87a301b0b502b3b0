#include "services/media/recorder.h"

#include <openssl/evp.h>
#include <sndfile.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "services/media/g711.h"

namespace sb::media {
namespace {

constexpr int64_t kWindowFrames = kRecordingRate;  // one second
constexpr size_t kSlotBytes = 492;
// A timestamp further than this from where its packet arrived is a jump: the stream re-anchors.
constexpr int64_t kJumpFrames = kRecordingRate / 2;
constexpr int kPayloadPcmu = 0;
constexpr int kPayloadPcma = 8;
constexpr int kPayloadComfortNoise = 13;

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
  return out;
}

}  // namespace

absl::StatusOr<RecordingFile> InspectRecording(const std::string& path) {
  RecordingFile out;
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (f == nullptr) {
    return absl::DataLossError(absl::StrCat(path, ": not a readable WAV: ", sf_strerror(nullptr)));
  }
  out.frames = info.frames;
  sf_close(f);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be opened"));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    EVP_DigestUpdate(ctx, buffer.data(), static_cast<size_t>(n));
    out.size_bytes += n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  out.sha256 = Hex(digest, length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recording

struct Recording::Slot {
  int64_t arrival_ns;
  uint16_t size;
  uint8_t side;
  uint8_t data[kSlotBytes];
};

Recording::Recording(std::string path, int left_side, int64_t start_ns, absl::Duration allowance,
                     size_t slots)
    : path_(std::move(path)),
      left_side_(left_side),
      start_ns_(start_ns),
      allowance_frames_(absl::ToInt64Milliseconds(allowance) * kRecordingRate / 1000),
      slots_(new Slot[slots]),
      capacity_(slots),
      window_(static_cast<size_t>(kWindowFrames) * 2, 0) {}

Recording::~Recording() {
  absl::MutexLock lock(&mu_);
  if (file_ != nullptr) sf_close(file_);
}

void Recording::OnRtp(int side, const uint8_t* packet, size_t size, int64_t arrival_ns) {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  if (size > kSlotBytes || head - tail_.load(std::memory_order_acquire) >= capacity_) {
    dropped_full_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Slot& slot = slots_[head % capacity_];
  slot.arrival_ns = arrival_ns;
  slot.size = static_cast<uint16_t>(size);
  slot.side = static_cast<uint8_t>(side);
  std::memcpy(slot.data, packet, size);
  head_.store(head + 1, std::memory_order_release);
}

int64_t Recording::packets_late() const {
  absl::MutexLock lock(&mu_);
  return late_;
}

int64_t Recording::packets_undecodable() const {
  absl::MutexLock lock(&mu_);
  return undecodable_;
}

int64_t Recording::FrameAt(int64_t ns) const {
  return (ns - start_ns_) * kRecordingRate / 1'000'000'000;
}

bool Recording::Paused(int64_t frame) const {
  for (const auto& [from, to] : paused_) {
    if (frame >= from && frame < to) return true;
  }
  return false;
}

void Recording::Drain() {
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  for (; tail < head; ++tail) {
    const Slot& slot = slots_[tail % capacity_];
    if (!finished_) {
      Place(slot.side == left_side_ ? 0 : 1, slot.data, slot.size, slot.arrival_ns);
    }
  }
  tail_.store(tail, std::memory_order_release);
}

void Recording::Place(int channel, const uint8_t* packet, size_t size, int64_t arrival_ns) {
  if (size < 12) return;
  const int csrcs = packet[0] & 0x0f;
  size_t begin = 12 + 4 * static_cast<size_t>(csrcs);
  if ((packet[0] & 0x10) != 0) {  // header extension: 4 bytes, then its length in words
    if (begin + 4 > size) return;
    begin += 4 + 4 * ((size_t{packet[begin + 2]} << 8) | packet[begin + 3]);
  }
  size_t end = size;
  if ((packet[0] & 0x20) != 0) {  // padding: its count in the last byte
    const size_t padding = packet[size - 1];
    if (padding > size) return;
    end = size - padding;
  }
  if (begin >= end) return;
  const int payload_type = packet[1] & 0x7f;
  if (payload_type == kPayloadComfortNoise || payload_type >= 96) {
    // Comfort noise, or a dynamic type (telephone-event, or a codec we cannot decode): not
    // audio for the file. Dynamic audio codecs leave silence; they are counted.
    if (payload_type >= 96 && payload_type != 101) ++undecodable_;
    return;
  }
  const bool ulaw = payload_type == kPayloadPcmu;
  if (!ulaw && payload_type != kPayloadPcma) {
    ++undecodable_;
    return;
  }
  const uint32_t ssrc = Be32(packet + 8);
  const uint32_t timestamp = Be32(packet + 4);
  const int64_t arrived = FrameAt(arrival_ns);
  Channel& c = channels_[channel];
  int64_t position = 0;
  if (c.anchored && c.ssrc == ssrc) {
    position = c.position + static_cast<int32_t>(timestamp - c.timestamp);
    if (position > arrived) {
      // This packet came sooner after the anchor than its timestamp says: it was less delayed.
      c.position -= position - arrived;
      position = arrived;
    }
    if (arrived - position > kJumpFrames) c.anchored = false;
  }
  if (!c.anchored || c.ssrc != ssrc) {
    c = {.anchored = true, .ssrc = ssrc, .timestamp = timestamp, .position = arrived};
    position = arrived;
  }
  const int64_t samples = static_cast<int64_t>(end - begin);
  if (position + samples <= flushed_) {
    ++late_;
    return;
  }
  for (int64_t i = 0; i < samples; ++i) {
    const int64_t frame = position + i;
    if (frame < flushed_ || frame >= flushed_ + kWindowFrames || frame < 0) continue;
    const uint8_t code = packet[begin + static_cast<size_t>(i)];
    window_[static_cast<size_t>(frame % kWindowFrames) * 2 + static_cast<size_t>(channel)] =
        ulaw ? g711::UlawToLinear(code) : g711::AlawToLinear(code);
  }
}

absl::Status Recording::Flush(int64_t until) {
  if (file_ == nullptr) return error_;
  while (flushed_ < until) {
    const int64_t offset = flushed_ % kWindowFrames;
    const int64_t count = std::min(until - flushed_, kWindowFrames - offset);
    int16_t* frames = &window_[static_cast<size_t>(offset) * 2];
    for (int64_t i = 0; i < count; ++i) {
      if (Paused(flushed_ + i)) frames[i * 2] = frames[i * 2 + 1] = 0;
    }
    const sf_count_t written = sf_writef_short(file_, frames, count);
    std::fill(frames, frames + count * 2, int16_t{0});
    if (written != count) {
      error_ = absl::DataLossError(
          absl::StrCat(path_, ": writing the recording failed: ", sf_strerror(file_)));
      sf_close(file_);
      file_ = nullptr;
      return error_;
    }
    flushed_ += count;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Recorder

Recorder::Recorder(Options options) : options_(options) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "media-recorder");
    Run();
  });
}

Recorder::~Recorder() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  std::vector<std::shared_ptr<Recording>> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(recordings_);
  }
  for (auto& r : left) (void)Stop(r, MonotonicNanos());
}

absl::StatusOr<std::shared_ptr<Recording>> Recorder::Start(const std::string& path, int left_side,
                                                           int64_t start_ns) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("recording directory for ", path, ": ", ec.message()));
  }
  SF_INFO info{};
  info.samplerate = kRecordingRate;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the recording ", path, ": ", sf_strerror(nullptr)));
  }
  // A valid header after every write: a crash leaves a readable file of what was written.
  sf_command(file, SFC_SET_UPDATE_HEADER_AUTO, nullptr, SF_TRUE);
  auto recording = std::shared_ptr<Recording>(
      new Recording(path, left_side, start_ns, options_.jitter_allowance, options_.slots));
  {
    absl::MutexLock lock(&recording->mu_);
    recording->file_ = file;
  }
  absl::MutexLock lock(&mu_);
  recordings_.push_back(recording);
  return recording;
}

void Recorder::Pause(Recording& r, int64_t at_ns) {
  absl::MutexLock lock(&r.mu_);
  if (!r.paused_.empty() && r.paused_.back().second == std::numeric_limits<int64_t>::max()) return;
  r.paused_.emplace_back(std::max(r.FrameAt(at_ns), int64_t{0}),
                         std::numeric_limits<int64_t>::max());
}

void Recorder::Resume(Recording& r, int64_t at_ns) {
  absl::MutexLock lock(&r.mu_);
  if (r.paused_.empty() || r.paused_.back().second != std::numeric_limits<int64_t>::max()) return;
  r.paused_.back().second = std::max(r.FrameAt(at_ns), r.paused_.back().first);
}

absl::StatusOr<RecordingFile> Recorder::Stop(const std::shared_ptr<Recording>& r, int64_t at_ns) {
  {
    absl::MutexLock lock(&mu_);
    std::erase(recordings_, r);
  }
  RecordingFile out;
  {
    absl::MutexLock lock(&r->mu_);
    if (!r->finished_) {
      r->Drain();
      r->finished_ = true;
      const int64_t end = std::max(r->FrameAt(at_ns), r->flushed_);
      (void)r->Flush(end);
      if (r->file_ != nullptr) {
        sf_close(r->file_);
        r->file_ = nullptr;
      }
    }
    for (const auto& [from, to] : r->paused_) {
      out.paused_frames += std::max<int64_t>(0, std::min(to, r->flushed_) - from);
    }
    if (!r->error_.ok()) return r->error_;
  }
  absl::StatusOr<RecordingFile> file = InspectRecording(r->path());
  if (!file.ok()) return file.status();
  file->paused_frames = out.paused_frames;
  return file;
}

size_t Recorder::active() const {
  absl::MutexLock lock(&mu_);
  return recordings_.size();
}

void Recorder::Run() {
  for (;;) {
    std::vector<std::shared_ptr<Recording>> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick);
      if (stopping_) return;
      batch = recordings_;
    }
    const int64_t now = MonotonicNanos();
    for (const auto& r : batch) {
      absl::MutexLock lock(&r->mu_);
      if (r->finished_) continue;
      r->Drain();
      // Written in steps of 100 ms or more, each frame once it is past the allowance.
      const int64_t due = r->FrameAt(now) - r->allowance_frames_;
      if (due - r->flushed_ >= kRecordingRate / 10) {
        if (absl::Status s = r->Flush(due); !s.ok()) {
          spdlog::error("media: {}", std::string(s.message()));
        }
      }
    }
  }
}

}  // namespace sb::media
