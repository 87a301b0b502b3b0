#pragma once

// CallStateWriter: the live state of this node's calls in Redis and their events on the call
// events stream, written in order by one thread that batches whatever has queued up into two
// pipelines (sequence numbers, then state + events), so that a burst of calls costs a few round
// trips rather than one per change.
//
// Keys (prefix "sb:"):
//   call:{call_id}            string  the ActiveCall (binary proto); kept `ended_ttl` after the end
//   call:{call_id}:seq        string  the call's event counter (Event.call_sequence); shared by
//                                     every producer of the call's events
//   calls:tenant:{tenant}     zset    call ids in progress, scored by start time (Unix ms)
//   calls:node:{node}         set     call ids this node owns, for closing out a dead node
//
// When Redis is down the writer keeps its batch and retries (nothing is dropped while the queue
// has room); the queue is bounded, and backlog() lets overload control refuse new calls before it
// fills.

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"
#include "switchboard/common/v1/events.pb.h"
#include "switchboard/sip/v1/sip_service.pb.h"

namespace sb::sip {

namespace v1 = ::switchboard::sip::v1;
namespace cv1 = ::switchboard::common::v1;

class CallStateWriter {
 public:
  struct Options {
    std::string node_id;
    std::string prefix = "sb:";
    std::string stream;  // empty: events::kStreamKey
    size_t capacity = 200'000;
    absl::Duration ended_ttl = absl::Seconds(60);
    absl::Duration live_ttl = absl::Hours(24);
  };
  CallStateWriter(redis::Client& redis, Options options);
  // Writes what is queued (for up to a few seconds), then stops.
  ~CallStateWriter();

  // Queues the call's new state and the events it produced (call_sequence is filled in here).
  // False when the queue is full (the change is lost; overload control should have refused the
  // call before).
  bool Write(const v1::ActiveCall& call, std::vector<cv1::Event> events, bool ended);

  size_t backlog() const;
  uint64_t dropped() const;
  // Blocks until everything queued before the call is written (tests, shutdown).
  void Flush();

  std::string CallKey(const std::string& call_id) const {
    return options_.prefix + "call:" + call_id;
  }
  std::string TenantIndexKey(const std::string& tenant) const {
    return options_.prefix + "calls:tenant:" + tenant;
  }
  std::string NodeIndexKey(const std::string& node) const {
    return options_.prefix + "calls:node:" + node;
  }

 private:
  struct Item {
    v1::ActiveCall call;
    std::vector<cv1::Event> events;
    bool ended = false;
  };
  void Run();
  absl::Status WriteBatch(std::vector<Item>& batch);

  redis::Client& redis_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace sb::sip
